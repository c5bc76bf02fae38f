"""Keras twin of lightning_impl.models.whitened_cnn.WhitenedCNN: the same layers, names and order.

Frozen weights are frozen variables here too (the stem's kernel, every BatchNorm's scale), so that both frameworks
count and train the same parameters. ``init_whitening`` sets the stem from training images as the torch net's
method of that name does (core.whitening: one computation for both); keras_ref.train calls it before the first step.
"""

from __future__ import annotations

from typing import Sequence

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from keras import layers

from keras_ref.batch_norm import FusedBatchNormalization

from core.architectures import WHITENED_BN_EPS as BN_EPS, WHITENED_BN_MOMENTUM as BN_MOMENTUM
from core.whitening import stem_filters


@keras.saving.register_keras_serializable(package="keras_ref")
class PartialDirac(keras.initializers.Initializer):
    """torch's initialisation of the twin: Conv2d's default U(±1/√fan_in) (keras_ref.torch_like.torch_init skips a
    layer with an initialiser of its own, so this one draws it), except that output filter ``o < in_channels`` passes
    input channel ``o`` through unchanged (torch: ``nn.init.dirac_(weight[:in_channels])``)."""

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        bound = 1.0 / (kh * kw * c_in) ** 0.5
        kernel = keras.initializers.RandomUniform(-bound, bound)(shape, dtype=dtype)
        n = min(c_in, c_out)
        identity = keras.ops.zeros((kh, kw, c_in, n), dtype=dtype)
        eye = keras.ops.eye(c_in, n, dtype=dtype)
        identity = keras.ops.slice_update(identity, (kh // 2, kw // 2, 0, 0), keras.ops.reshape(eye, (1, 1, c_in, n)))
        return keras.ops.concatenate([identity, kernel[..., n:]], axis=-1)


def whitened_cnn(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    widths: Sequence[int] = (64, 128, 128),
    whiten_size: int = 2,
    bn_momentum: float = BN_MOMENTUM,
    logit_scale: float = 1 / 9,
) -> keras.Sequential:
    """Twin of WhitenedCNN (``bn_momentum`` in torch's convention, as there); outputs logits."""
    if not widths or min(widths) < 1:
        raise ValueError(f"need at least one stage of positive width, got widths={list(widths)}")
    stack: list = [keras.Input(input_shape),
                   layers.Conv2D(2 * input_shape[-1] * whiten_size**2, whiten_size, padding="valid", name="whiten"),
                   layers.Activation("gelu", name="act0")]
    norms = []
    for s, width in enumerate(widths, start=1):
        for j in (1, 2):
            stack.append(layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=PartialDirac(),
                                       name=f"conv{s}_{j}"))
            if j == 1:
                stack.append(layers.MaxPooling2D(2, name=f"pool{s}"))
            norms.append(FusedBatchNormalization(momentum=1.0 - bn_momentum, epsilon=BN_EPS, name=f"bn{s}_{j}"))
            stack += [norms[-1], layers.Activation("gelu", name=f"act{s}_{j}")]
    stack += [layers.GlobalMaxPooling2D(name="pool"), layers.Dense(num_classes, use_bias=False, name="logits"),
              layers.Rescaling(logit_scale, name="scale")]
    model = keras.Sequential(stack, name="WhitenedCNN")
    model.get_layer("whiten").kernel.trainable = False
    for bn in norms:
        bn.gamma.trainable = False
    return model


def init_whitening(model: keras.Model, images: np.ndarray) -> None:
    """Set the twin's stem (its layer ``whiten``) from normalised NHWC training images: the filters torch's
    WhitenedCNN.init_whitening sets from the same images, as a Keras kernel."""
    try:
        layer = model.get_layer("whiten")
    except ValueError:
        raise ValueError(f"{model.name} has no layer 'whiten': not a WhitenedCNN twin") from None
    nchw = torch.from_numpy(np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2)))
    filters = stem_filters(nchw, int(layer.kernel_size[0]))  # (out, in, kh, kw) -> Keras (kh, kw, in, out)
    layer.kernel.assign(filters.permute(2, 3, 1, 0).numpy().astype(layer.kernel.dtype))

