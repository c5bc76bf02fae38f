"""Keras twin of lightning_impl.models.improved_cnn.ImprovedCNN: the same layers, names and order.

BatchNorm convention: PyTorch's (momentum 0.1 for the *new* batch, eps 1e-5) everywhere. Keras' momentum
weights the *old* running value, so torch 0.1 is Keras 0.9; its default epsilon (1e-3) is overridden.
"""

from __future__ import annotations

from typing import Sequence

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
from keras import layers

from keras_ref.batch_norm import FusedBatchNormalization

from core.architectures import IMPROVED_BN_EPS as BN_EPS, IMPROVED_BN_MOMENTUM as BN_MOMENTUM, conv_output_size, pooling_conv

KERAS_BN = {"momentum": 1.0 - BN_MOMENTUM, "epsilon": BN_EPS}


def improved_cnn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    widths: Sequence[int] = (32, 16),
    kernel_sizes: Sequence[int] = (3, 5),
    paddings: Sequence[str] = ("same", "valid"),
    convs_per_stage: int = 1,
    hidden: Sequence[int] = (100, 50),
    batch_norm: bool = False,
    dropout: float = 0.0,
    conv_dropout: float = 0.0,
    global_pool: bool = False,
    pool_after: str = "last",
) -> keras.Sequential:
    """Twin of lightning_impl.models.improved_cnn.ImprovedCNN: the same layers, names and order; outputs logits."""
    if not len(widths) == len(kernel_sizes) == len(paddings):
        raise ValueError("widths, kernel_sizes and paddings need one entry per stage")
    pool_at = pooling_conv(pool_after, convs_per_stage)
    stack: list = [keras.Input(input_shape)]
    size = input_shape[0]
    for s, (width, k, padding) in enumerate(zip(widths, kernel_sizes, paddings), start=1):
        for j in range(1, convs_per_stage + 1):
            stack.append(layers.Conv2D(width, k, padding=padding, use_bias=not batch_norm, name=f"conv{s}_{j}"))
            if batch_norm:
                stack.append(FusedBatchNormalization(name=f"bn{s}_{j}", **KERAS_BN))
            stack.append(layers.ReLU(name=f"relu{s}_{j}"))
            size = conv_output_size(size, k, padding)
            if j == pool_at:
                stack.append(layers.MaxPooling2D(2, name=f"pool{s}"))
                size //= 2
        if conv_dropout:
            stack.append(layers.Dropout(conv_dropout, name=f"drop{s}"))
        if size < 1:
            raise ValueError(f"stage {s} shrinks the input to nothing")
    stack.append(layers.GlobalAveragePooling2D(name="gap") if global_pool else layers.Flatten(name="flatten"))
    for k, units in enumerate(hidden, start=1):
        stack.append(layers.Dense(units, name=f"fc{k}"))  # no BatchNorm in the head, as in ImprovedCNN
        stack.append(layers.ReLU(name=f"relu_fc{k}"))
        if dropout:
            stack.append(layers.Dropout(dropout, name=f"drop_fc{k}"))
    stack.append(layers.Dense(num_classes, name="logits"))
    return keras.Sequential(stack, name="ImprovedCNN")
