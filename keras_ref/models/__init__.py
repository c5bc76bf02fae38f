"""Keras twins of lightning_impl.models: the same layers under the same names, NHWC instead of NCHW.

TWINS maps each Lightning architecture's class name to the function that builds its twin (the same
constructor arguments, with the input shape instead of ``in_channels``); recipes and parity look them up here.
It is read from the one registry of architectures, core.architectures.ARCHITECTURES.
"""

import keras_ref  # noqa: F401  (sets the Keras backend before keras is imported)

from core.architectures import ARCHITECTURES, resolve
from keras_ref.models.denoising import denoising_ae, unet_dae
from keras_ref.models.improved_cnn import improved_cnn
from keras_ref.models.specified_cnn import specified_cnn
from keras_ref.models.whitened_cnn import whitened_cnn

TWINS = {name: resolve(a.keras) for name, a in ARCHITECTURES.items()}

__all__ = ["TWINS", "denoising_ae", "improved_cnn", "specified_cnn", "unet_dae", "whitened_cnn"]
