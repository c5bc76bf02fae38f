"""Keras 3 twins of the lightning_impl models, on the torch backend (no TensorFlow)."""

import os

# Must happen before the first `import keras` anywhere in the process.
os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ["KERAS_BACKEND"] != "torch":
    raise RuntimeError(f"keras_ref needs KERAS_BACKEND=torch, found {os.environ['KERAS_BACKEND']!r}")
