"""What both twins of an architecture must agree on, stated once: the Lightning modules (lightning_impl.models)
and the Keras twins (keras_ref.models) read these, so neither can drift from the other."""

from __future__ import annotations

from typing import Literal

Padding = Literal["same", "valid"]

# The improved CNN's BatchNorm: PyTorch's defaults, written out because the Keras twin must copy them (Keras'
# running average weights the *old* value, so its momentum 0.9 is torch's 0.1, and its default epsilon is 1e-3).
IMPROVED_BN_MOMENTUM = 0.1
IMPROVED_BN_EPS = 1e-5

# The whitened CIFAR-10 net's BatchNorm (airbench's): running statistics that follow the last batches closely
# (torch momentum 0.4 = Keras 0.6), and an epsilon as small as can be: with a frozen scale of 1 the
# normalisation must not damp small activations.
WHITENED_BN_MOMENTUM = 0.4
WHITENED_BN_EPS = 1e-12


def conv_output_size(size: int, kernel_size: int, padding: Padding) -> int:
    return size if padding == "same" else size - kernel_size + 1


def pooling_conv(pool_after: str, convs_per_stage: int) -> int:
    """The convolution (1-based, within each stage) after which the stage pools."""
    if pool_after not in ("last", "first"):
        raise ValueError(f"pool_after is 'last' or 'first', got {pool_after!r}")
    return 1 if pool_after == "first" else convs_per_stage
