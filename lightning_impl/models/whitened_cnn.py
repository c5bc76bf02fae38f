"""A CIFAR-10 net that learns fast on a CPU: the airbench layout (Keller Jordan's cifar10-airbench, "94 % on
CIFAR-10 in 3.29 seconds on a single GPU", 2024) at its 93 % size, written out for this project.

What makes it learn in few epochs, each the paper's finding rather than a measurement of ours:

* ``whiten``: a frozen 2x2 convolution whose filters are the eigenvectors of the training images' 2x2-patch
  covariance, scaled to unit variance (and their negatives, so that the GELU after it loses nothing). The first
  layer starts where a trained one would end, decorrelated inputs; :meth:`WhitenedCNN.init_whitening` sets it from
  training images before the first step (ImageClassifier calls it in ``on_fit_start``).
* Identity ("dirac") initialisation of each convolution's first ``in_channels`` filters: every stage starts as a
  near-identity map, an implicit residual connection without the extra code of a ResNet.
* BatchNorm with a frozen scale (only the shift learns) and GELU; the logits scaled by 1/9, a temperature that
  lets label smoothing and a large learning rate work together.

Layout: ``whiten`` (3 -> 24, 2x2 valid) -> GELU, then per stage ``conv{s}_1`` -> ``pool{s}`` -> ``bn{s}_1`` ->
``act{s}_1`` -> ``conv{s}_2`` -> ``bn{s}_2`` -> ``act{s}_2``: the first convolution runs at the stage's input
resolution, the second at half of it. Then a max-pool over what is left (3x3), the logits without bias, the scale.
The Keras twin is keras_ref.models.whitened_cnn (same names), and keras_ref.train trains the same recipe: both set the
stem with core.whitening from the same training images.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


from core.architectures import WHITENED_BN_EPS as BN_EPS, WHITENED_BN_MOMENTUM as BN_MOMENTUM
from core.whitening import patch_whitening, stem_filters

__all__ = ["GlobalMaxPool", "Scale", "WhitenedCNN", "patch_whitening"]


class GlobalMaxPool(nn.Module):
    """(N, C, H, W) -> (N, C): one leaf layer, like Keras' GlobalMaxPooling2D."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


class Scale(nn.Module):
    """Multiply by a constant (the logits' temperature)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class WhitenedCNN(nn.Sequential):
    """Whitening stem, three two-convolution stages with identity initialisation, max-pooled scaled logits.

    Args:
        in_channels: 3 for CIFAR-10.
        num_classes: outputs (logits).
        widths: output channels of each stage's two convolutions.
        whiten_size: kernel size of the whitening convolution (its width is 2 * in_channels * whiten_size**2).
        bn_momentum: torch's BatchNorm momentum (the weight of the *new* batch statistics).
        logit_scale: the logits' multiplier.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: Sequence[int] = (64, 128, 128),
        whiten_size: int = 2,
        bn_momentum: float = BN_MOMENTUM,
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"need at least one stage of positive width, got widths={list(widths)}")
        stem = 2 * in_channels * whiten_size**2
        self.add_module("whiten", nn.Conv2d(in_channels, stem, whiten_size, padding=0, bias=True))
        self.whiten.weight.requires_grad_(False)  # set from data (init_whitening), never trained
        self.add_module("act0", nn.GELU())
        channels = stem
        for s, width in enumerate(widths, start=1):
            for j in (1, 2):
                self.add_module(f"conv{s}_{j}", nn.Conv2d(channels, width, 3, padding="same", bias=False))
                if j == 1:
                    self.add_module(f"pool{s}", nn.MaxPool2d(2))
                bn = nn.BatchNorm2d(width, eps=BN_EPS, momentum=bn_momentum)
                bn.weight.requires_grad_(False)
                self.add_module(f"bn{s}_{j}", bn)
                self.add_module(f"act{s}_{j}", nn.GELU())
                channels = width
        self.add_module("pool", GlobalMaxPool())
        self.add_module("logits", nn.Linear(channels, num_classes, bias=False))
        self.add_module("scale", Scale(logit_scale))
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not self.whiten:
                with torch.no_grad():
                    nn.init.dirac_(module.weight[: module.in_channels])
        # Whether init_whitening has run; saved with the weights, so a resumed run keeps its stem.
        self.register_buffer("whitened", torch.tensor(False))

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor) -> None:
        """Set the stem from normalised training images (N, C, H, W): the whitening filters and their negatives."""
        self.whiten.weight.copy_(stem_filters(images, self.whiten.kernel_size[0]).to(self.whiten.weight))
        self.whitened.fill_(True)
