"""Keras 3 twins of the lightning_impl models, on the torch (default), JAX or TensorFlow backend.

The backend is fixed here, before the first ``import keras`` anywhere in the process: ``--backend NAME`` on the
command line of a ``python -m`` entry point, else ``KERAS_BACKEND``, else torch (keras_ref.backend).
"""

from keras_ref.backend import choose as _choose

BACKEND = _choose()
