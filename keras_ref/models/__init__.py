"""Keras twins of lightning_impl.models: the same layers under the same names, NHWC instead of NCHW.

TWINS maps each Lightning architecture's class name to the function that builds its twin (the same
constructor arguments, with the input shape instead of ``in_channels``); recipes and parity look them up here.
"""

import keras_ref  # noqa: F401  (sets the Keras backend before keras is imported)

from keras_ref.models.denoising import denoising_ae, unet_dae
from keras_ref.models.improved_cnn import improved_cnn
from keras_ref.models.specified_cnn import specified_cnn
from keras_ref.models.whitened_cnn import whitened_cnn

TWINS = {
    "SpecifiedCNN": specified_cnn,
    "ImprovedCNN": improved_cnn,
    "DenoisingAE": denoising_ae,
    "UNetDAE": unet_dae,
    "WhitenedCNN": whitened_cnn,
}

__all__ = ["TWINS", "denoising_ae", "improved_cnn", "specified_cnn", "unet_dae", "whitened_cnn"]
