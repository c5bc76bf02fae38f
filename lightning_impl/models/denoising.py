"""Denoising autoencoders as plain nn.Modules (images in [0, 1] in, images in [0, 1] out).

Layer names are shared with the Keras twins in keras_ref.models.denoising, leaf module for layer, in the
same order, so that parity checks can pair them by name.
"""

from __future__ import annotations

import torch
from torch import nn


class SameConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d with Keras/TensorFlow 'same' padding: output size = input size x stride.

    Why not ``nn.ConvTranspose2d(k, stride=2, padding=1, output_padding=1)``: it has the right output
    *shape* but crops the full transposed convolution symmetrically (one pixel at each end, then adds one
    at the end), whereas Keras crops ``(k - s) // 2`` pixels at the start and the rest at the end -- for
    k=3, s=2 that is 0 before and 1 after. The two outputs are shifted by a pixel and no weight mapping
    can make them agree. So this layer computes the full (``padding=0``) transposed convolution and crops
    it the way Keras does; its weights keep torch's (in, out, kh, kw) layout.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True) -> None:
        if kernel_size < stride:
            raise ValueError(f"'same' transposed convolution needs kernel_size >= stride, got {kernel_size} < {stride}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.crop_start = (kernel_size - stride) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h, w = x.shape[-2] * self.stride[0], x.shape[-1] * self.stride[1]
        full = super().forward(x)
        c = self.crop_start
        return full[..., c : c + h, c : c + w]


class DenoisingAE(nn.Sequential):
    """The classic convolutional denoiser (the exercise's reference architecture), 28x28x1 -> 28x28x1.

    Encoder: Conv 3x3 32 'same' ReLU, MaxPool 2, Conv 3x3 32 'same' ReLU, MaxPool 2 (-> 7x7x32).
    Decoder: ConvTranspose 3x3 32 stride 2 'same' ReLU (x2, -> 28x28x32), Conv 3x3 1 'same', sigmoid.
    28,353 parameters. The 7x7x32 bottleneck is what limits it at low noise (fine detail does not pass).
    """

    def __init__(self, in_channels: int = 1, filters: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, filters, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.deconv1 = SameConvTranspose2d(filters, filters, 3, stride=2)
        self.relu3 = nn.ReLU()
        self.deconv2 = SameConvTranspose2d(filters, filters, 3, stride=2)
        self.relu4 = nn.ReLU()
        self.conv3 = nn.Conv2d(filters, in_channels, 3, padding=1)
        self.sigmoid = nn.Sigmoid()


class UNetDAE(nn.Module):
    """The improved denoiser: a small two-level U-Net with BatchNorm and a residual output.

    What it changes against DenoisingAE, and why (see docs/denoise.md for the measurements):
    - skip connections at 28x28 and 14x14 carry fine detail around the 7x7 bottleneck, which is what the
      reference loses at low noise;
    - BatchNorm after every convolution lets it train at a high learning rate in the few epochs a CPU allows;
    - it predicts a correction to the noisy input, ``x + f(x)`` (residual learning, as in DnCNN), and
      starts as the identity (zero-initialised head): at low noise little has to change. The output is
      not squashed -- a sigmoid would make the identity unreachable and a clamp would stop gradients --
      so the Denoiser clips it to [0, 1] for scoring and prediction only.
    - ``decoder_convs`` convolutions per decoder stage (default 2): at low noise the per-pixel estimate is made
      at 28x28, where one convolution after the skip was too little (measured, docs/denoise.md).
    Widths are the (28x28, 14x14, 7x7) channel counts; the 28x28 stage dominates the cost on a CPU.
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, int, int] = (32, 64, 128), decoder_convs: int = 2) -> None:
        super().__init__()
        if decoder_convs < 1:
            raise ValueError(f"decoder_convs must be >= 1, got {decoder_convs}")
        c1, c2, c3 = widths
        self._conv_bn_relu("enc1a", in_channels, c1)
        self._conv_bn_relu("enc1b", c1, c1)
        self.pool1 = nn.MaxPool2d(2)
        self._conv_bn_relu("enc2a", c1, c2)
        self._conv_bn_relu("enc2b", c2, c2)
        self.pool2 = nn.MaxPool2d(2)
        self._conv_bn_relu("mida", c2, c3)
        self._conv_bn_relu("midb", c3, c3)
        self.up2 = SameConvTranspose2d(c3, c2, 3, stride=2)
        self.dec2_names = self._decoder_names("dec2", decoder_convs)
        self._conv_bn_relu(self.dec2_names[0], 2 * c2, c2)  # after concatenating the 14x14 skip
        for name in self.dec2_names[1:]:
            self._conv_bn_relu(name, c2, c2)
        self.up1 = SameConvTranspose2d(c2, c1, 3, stride=2)
        self.dec1_names = self._decoder_names("dec1", decoder_convs)
        self._conv_bn_relu(self.dec1_names[0], 2 * c1, c1)  # after concatenating the 28x28 skip
        for name in self.dec1_names[1:]:
            self._conv_bn_relu(name, c1, c1)
        self.head = nn.Conv2d(c1, in_channels, 1)
        nn.init.zeros_(self.head.weight)  # start as the identity: x + 0
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def _decoder_names(stage: str, n: int) -> list[str]:
        return [f"{stage}{chr(ord('a') + i)}" for i in range(n)]

    def _conv_bn_relu(self, name: str, cin: int, cout: int) -> None:
        # No conv bias: the BatchNorm right after it has its own shift.
        self.add_module(f"{name}_conv", nn.Conv2d(cin, cout, 3, padding=1, bias=False))
        self.add_module(f"{name}_bn", nn.BatchNorm2d(cout))
        self.add_module(f"{name}_relu", nn.ReLU())

    def _block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"{name}_relu")(getattr(self, f"{name}_bn")(getattr(self, f"{name}_conv")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self._block("enc1b", self._block("enc1a", x))
        e2 = self._block("enc2b", self._block("enc2a", self.pool1(e1)))
        m = self._block("midb", self._block("mida", self.pool2(e2)))
        d2 = torch.cat([self.up2(m), e2], dim=1)
        for name in self.dec2_names:
            d2 = self._block(name, d2)
        d1 = torch.cat([self.up1(d2), e1], dim=1)
        for name in self.dec1_names:
            d1 = self._block(name, d1)
        return x + self.head(d1)
