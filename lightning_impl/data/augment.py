"""Training-time augmentation of whole batches on the training device.

Pass one as the DataModule's ``augment`` argument (YAML: ``data.init_args.augment.class_path``); the
DataModule applies it to normalised *training* batches only, after they reach the device, so validation
and test images are never touched.

Why not ``torchvision.transforms.v2.RandomAffine`` / ``RandomCrop`` directly: given a batch, a v2
transform draws *one* set of parameters for all of it (every image shifted alike), and looping it over
the images costs ~30 ms per MNIST batch of 128 on this CPU, as much as the training step itself. These
classes draw parameters per image and apply them in one batched operation (~1.6 ms); tests/test_improved.py
checks them against ``torchvision.transforms.v2.functional`` for the same parameters.

The Keras twins are keras_ref.augment.digit_augmentation / crop_flip_augmentation.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn


def affine(images: torch.Tensor, angles_deg: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by its angle, then shift it by (dx, dy) pixels; bilinear, zero fill.

    The same geometry as ``v2.functional.affine(image, angle, translate=(dx, dy), scale=1, shear=0)``.
    """
    n, _, h, w = images.shape
    a = torch.deg2rad(angles_deg.to(images))
    cos, sin = a.cos(), a.sin()
    # affine_grid maps output to input coordinates in [-1, 1] units: the inverse transform.
    dx, dy = shifts_px[:, 0].to(images) * 2 / w, shifts_px[:, 1].to(images) * 2 / h
    tx = -(cos * dx + sin * dy * h / w)
    ty = -(-sin * dx * w / h + cos * dy)
    theta = torch.stack(
        [torch.stack([cos, sin * h / w, tx], 1), torch.stack([-sin * w / h, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shift_crop(images: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad every side by ``padding``, then crop each image back at its (left, top) offset.

    The same as ``v2.functional.crop(v2.functional.pad(image, padding), top, left, h, w)`` per image.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    rows = (offsets[:, 1:2] + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (offsets[:, 0:1] + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


class DigitAugment(nn.Module):
    """Small random rotations and translations of handwritten digits; never flips (a mirrored 2 is no 2).

    Args:
        degrees: rotation drawn uniformly from [-degrees, degrees], per image.
        translate: shift drawn uniformly up to this fraction of the width (height), per axis and image.
    """

    def __init__(self, degrees: float = 10.0, translate: float = 0.1) -> None:
        super().__init__()
        if degrees < 0 or not 0.0 <= translate < 1.0:
            raise ValueError(f"need degrees >= 0 and translate in [0, 1), got {degrees} and {translate}")
        self.degrees, self.translate = degrees, translate

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        angles = (torch.rand(n, device=images.device) * 2 - 1) * self.degrees
        limits = torch.tensor([w, h], device=images.device) * self.translate
        shifts = (torch.rand(n, 2, device=images.device) * 2 - 1) * limits
        # Batches arrive normalised, so black is -mean/std, not 0. Every digit image has black pixels, so
        # the batch minimum is black: shift it to 0, let the transform fill uncovered pixels with 0, shift back.
        black = images.amin()
        return affine(images - black, angles, shifts) + black

    def extra_repr(self) -> str:
        return f"degrees={self.degrees}, translate={self.translate}"


class CropFlipAugment(nn.Module):
    """Random crop from a zero-padded image (a random shift of up to ``padding`` pixels), then a random
    horizontal flip: the standard CIFAR-10 augmentation. The padding is 0 in normalised units, i.e. the
    training-set mean colour.

    Args:
        padding: pixels of padding on every side before cropping back to the original size.
        flip: mirror left-right with probability 1/2 (right for photographs, wrong for digits).
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        super().__init__()
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding, self.flip = padding, flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = len(images)
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), device=images.device)
        images = shift_crop(images, self.padding, offsets)
        if self.flip:
            mirror = torch.rand(n, device=images.device) < 0.5
            images = torch.where(mirror.view(n, 1, 1, 1), images.flip(-1), images)
        return images

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip={self.flip}"


# The defaults as plain functions, the short form in YAML: ``data.init_args.augment: lightning_impl.data.augment.digit_augment``.
# Other settings go through ``class_path``/``init_args`` (e.g. ``DigitAugment`` with ``degrees: 5``).
_DIGITS, _CROP_FLIP = DigitAugment(), CropFlipAugment()


def digit_augment(images: torch.Tensor) -> torch.Tensor:
    """``DigitAugment()``: rotation up to +-10 degrees, shift up to +-10%, per image; no flip."""
    return _DIGITS(images)


def crop_flip_augment(images: torch.Tensor) -> torch.Tensor:
    """``CropFlipAugment()``: shift up to +-4 px (mean-colour fill) and a random horizontal flip, per image."""
    return _CROP_FLIP(images)
