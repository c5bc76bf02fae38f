"""Checks that the Lightning and Keras implementations are the same models. Nothing imports this package."""
