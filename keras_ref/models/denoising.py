"""Keras twins of lightning_impl.models.denoising: same layers, same names, NHWC instead of NCHW.

Keras' Conv2DTranspose(3, strides=2, padding="same") crops the full transposed convolution 0 pixels
before and 1 after; torch's padding=1, output_padding=1 crops 1 before -- a one-pixel shift. The torch
side therefore uses SameConvTranspose2d, which crops the way Keras does (see its docstring).
"""

from __future__ import annotations

import keras_ref  # noqa: F401  (sets the Keras backend before keras is imported)
import keras
from keras import layers

from keras_ref.batch_norm import FusedBatchNormalization

# torch BatchNorm2d defaults, in Keras terms (Keras momentum = 1 - torch momentum).
BN_ARGS = {"momentum": 0.9, "epsilon": 1e-5}


def denoising_ae(input_shape: tuple[int, int, int] = (28, 28, 1), filters: int = 32) -> keras.Sequential:
    """Twin of lightning_impl.models.denoising.DenoisingAE (28,353 parameters); outputs images in (0, 1)."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(filters, 3, padding="same", name="conv1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(filters, 3, padding="same", name="conv2"),
            layers.ReLU(name="relu2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name="deconv1"),
            layers.ReLU(name="relu3"),
            layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name="deconv2"),
            layers.ReLU(name="relu4"),
            layers.Conv2D(input_shape[-1], 3, padding="same", name="conv3"),
            layers.Activation("sigmoid", name="sigmoid"),
        ],
        name="DenoisingAE",
    )


def unet_dae(
    input_shape: tuple[int, int, int] = (28, 28, 1), widths: tuple[int, int, int] = (32, 64, 128), decoder_convs: int = 2
) -> keras.Model:
    """Twin of lightning_impl.models.denoising.UNetDAE. The torch leaf modules appear here under the
    same names and in the same order; the concatenations and the residual sum are extra Keras layers
    (torch does them in ``forward``). Outputs are not clipped (see UNetDAE)."""
    c1, c2, c3 = widths

    def block(name: str, x, channels: int):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = FusedBatchNormalization(**BN_ARGS, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = keras.Input(input_shape)
    e1 = block("enc1b", block("enc1a", inputs, c1), c1)
    e2 = block("enc2b", block("enc2a", layers.MaxPooling2D(2, name="pool1")(e1), c2), c2)
    m = block("midb", block("mida", layers.MaxPooling2D(2, name="pool2")(e2), c3), c3)
    up2 = layers.Conv2DTranspose(c2, 3, strides=2, padding="same", name="up2")(m)
    d2 = layers.Concatenate(name="cat2")([up2, e2])
    for i in range(decoder_convs):
        d2 = block(f"dec2{chr(ord('a') + i)}", d2, c2)
    up1 = layers.Conv2DTranspose(c1, 3, strides=2, padding="same", name="up1")(d2)
    d1 = layers.Concatenate(name="cat1")([up1, e1])
    for i in range(decoder_convs):
        d1 = block(f"dec1{chr(ord('a') + i)}", d1, c1)
    correction = layers.Conv2D(input_shape[-1], 1, kernel_initializer="zeros", name="head")(d1)
    outputs = layers.Add(name="residual")([inputs, correction])
    return keras.Model(inputs, outputs, name="UNetDAE")
