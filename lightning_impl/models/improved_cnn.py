"""The improved CNN family: one configurable architecture, so that every ablation step is a config.

With its defaults, ``ImprovedCNN()`` is the exercise's specified CNN, layer for layer and parameter for
parameter (58,796); the ablation ladder then changes one argument at a time:

    batch_norm=True                          Conv -> BatchNorm -> ReLU in the trunk (the conv bias becomes redundant)
    dropout=..., conv_dropout=...            Dropout after each hidden dense layer / each pooled stage
    widths, kernel_sizes, paddings, convs_per_stage
                                             depth and width of the convolutional trunk
    pool_after="first"                       pool after each stage's first convolution, so the others run at
                                             half resolution (the layout of the fast CIFAR-10 nets, e.g. airbench)

Layer names are shared with the Keras twin (keras_ref.models.improved_cnn), in the same order:
stage ``s`` holds ``conv{s}_{j}``, ``bn{s}_{j}``, ``relu{s}_{j}`` for its ``j``-th convolution, then
``pool{s}`` and ``drop{s}``; the head is ``flatten`` (or ``gap``), ``fc{k}``,
``relu_fc{k}``, ``drop_fc{k}`` per hidden layer and ``logits``. Layers that a config switches off are
absent, not identities, so that summaries list only what computes.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from core.architectures import IMPROVED_BN_EPS as BN_EPS, IMPROVED_BN_MOMENTUM as BN_MOMENTUM
from core.architectures import Padding, conv_output_size, pooling_conv


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): one leaf layer, like Keras' GlobalAveragePooling2D."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ImprovedCNN(nn.Sequential):
    """VGG-style stages of [Conv (-> BatchNorm) -> ReLU] x convs_per_stage -> MaxPool 2 (-> Dropout), then a dense head.

    Args:
        in_channels: 1 for digits, 3 for CIFAR-10.
        num_classes: outputs (logits).
        input_size: height = width of the input images; fixes the size of the flattened features.
        widths: output channels of every convolution of each stage (one entry per stage).
        kernel_sizes: square kernel size per stage.
        paddings: ``same`` or ``valid`` per stage.
        convs_per_stage: convolutions before each pooling (depth).
        hidden: sizes of the hidden dense layers of the head.
        batch_norm: BatchNorm after every convolution (before the ReLU); the dense head has none.
        dropout: Dropout rate after every hidden dense layer's ReLU (0 = no layer).
        conv_dropout: Dropout rate after every stage's pooling (0 = no layer).
        global_pool: average the last feature map over space instead of flattening it.
        pool_after: ``last`` (VGG: pool after a stage's last convolution) or ``first`` (after its first; the
            stage's other convolutions then cost a quarter as much -- the layout of the fast CIFAR-10 nets).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int = 28,
        widths: Sequence[int] = (32, 16),
        kernel_sizes: Sequence[int] = (3, 5),
        paddings: Sequence[Padding] = ("same", "valid"),
        convs_per_stage: int = 1,
        hidden: Sequence[int] = (100, 50),
        batch_norm: bool = False,
        dropout: float = 0.0,
        conv_dropout: float = 0.0,
        global_pool: bool = False,
        pool_after: Literal["last", "first"] = "last",
    ) -> None:
        super().__init__()
        if not len(widths) == len(kernel_sizes) == len(paddings):
            raise ValueError(
                f"widths, kernel_sizes and paddings need one entry per stage, got {len(widths)}, "
                f"{len(kernel_sizes)} and {len(paddings)}"
            )
        if convs_per_stage < 1 or not widths:
            raise ValueError("need at least one stage and one convolution per stage")
        if not (0.0 <= dropout < 1.0 and 0.0 <= conv_dropout < 1.0):
            raise ValueError(f"dropout rates must lie in [0, 1), got {dropout} and {conv_dropout}")
        pool_at = pooling_conv(pool_after, convs_per_stage)
        channels, size = in_channels, input_size
        for s, (width, k, padding) in enumerate(zip(widths, kernel_sizes, paddings), start=1):
            for j in range(1, convs_per_stage + 1):
                # A bias before BatchNorm is subtracted out again by the normalisation: drop it.
                self.add_module(f"conv{s}_{j}", nn.Conv2d(channels, width, k, padding=padding, bias=not batch_norm))
                if batch_norm:
                    self.add_module(f"bn{s}_{j}", nn.BatchNorm2d(width, eps=BN_EPS, momentum=BN_MOMENTUM))
                self.add_module(f"relu{s}_{j}", nn.ReLU())
                channels, size = width, conv_output_size(size, k, padding)
                if j == pool_at:
                    self.add_module(f"pool{s}", nn.MaxPool2d(2))
                    size //= 2
            if conv_dropout:
                self.add_module(f"drop{s}", nn.Dropout(conv_dropout))
            if size < 1:
                raise ValueError(f"stage {s} shrinks a {input_size}x{input_size} input to nothing")
        if global_pool:
            self.add_module("gap", GlobalAvgPool())
            features = channels
        else:
            self.add_module("flatten", nn.Flatten())  # (C, H, W) order; Keras flattens (H, W, C)
            features = channels * size * size
        for k, units in enumerate(hidden, start=1):
            # No BatchNorm in the dense head: the trunk's BatchNorm conditions the features and Dropout
            # regularises the head; the ladder in docs/improved.md was measured this way.
            self.add_module(f"fc{k}", nn.Linear(features, units))
            self.add_module(f"relu_fc{k}", nn.ReLU())
            if dropout:
                self.add_module(f"drop_fc{k}", nn.Dropout(dropout))
            features = units
        self.add_module("logits", nn.Linear(features, num_classes))
