"""Drivers that run both frameworks: the layer above lightning_impl and keras_ref (and beside parity)."""
