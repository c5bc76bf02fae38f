"""Keras twins of lightning_impl.data.augment: training-only augmentation layers, same constructor arguments.

RandomRotateShift: per-image rotation and translation of a whole batch in one resampling, written in keras.ops.

Why not ``keras.layers.RandomRotation`` + ``RandomTranslation``: on the torch backend,
``keras.ops.image.affine_transform`` loops over the images of a batch in Python (one ``map_coordinates`` per
image), ~70 ms per layer for an MNIST batch of 64 on one core -- four times the training step of the specified
CNN. This layer draws the same parameters per image and resamples the batch with one gather, like
lightning_impl.data.augment.DigitAugment does with ``grid_sample``; it uses only ``keras.ops``, so it runs on any
Keras backend.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


def gather_pixels(flat, index):
    """``flat[n, index[n, k], :]``: pixels of flattened (N, H*W, C) images at (N, K) flat positions, every channel,
    in one gather (both augmentation layers resample a batch this way)."""
    channels = flat.shape[-1]
    return ops.take_along_axis(flat, ops.repeat(ops.expand_dims(index, -1), channels, axis=-1), axis=1)


class RandomRotateShift(layers.Layer):
    """Rotate each image about its centre by an angle uniform in [-degrees, degrees], then shift it by up to
    ``translate`` x its width (height) per axis; bilinear, uncovered pixels filled with the batch's minimum
    (black, for digits: the twin of DigitAugment's fill). Channels-last. Identity unless ``training``."""

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if degrees < 0 or not 0.0 <= translate < 1.0:
            raise ValueError(f"need degrees >= 0 and translate in [0, 1), got {degrees} and {translate}")
        self.degrees, self.translate, self.seed = degrees, translate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        n = ops.shape(images)[0]
        h, w, c = images.shape[1], images.shape[2], images.shape[3]
        angle = keras.random.uniform((n, 1), -1.0, 1.0, seed=self.seed_generator) * (self.degrees * math.pi / 180)
        dx = keras.random.uniform((n, 1), -1.0, 1.0, seed=self.seed_generator) * (self.translate * w)
        dy = keras.random.uniform((n, 1), -1.0, 1.0, seed=self.seed_generator) * (self.translate * h)
        # Output pixel centres relative to the image centre; the inverse map gives where each one samples from.
        ys, xs = ops.meshgrid(ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"), indexing="ij")
        xs = ops.reshape(xs, (1, h * w)) - (w - 1) / 2 - dx
        ys = ops.reshape(ys, (1, h * w)) - (h - 1) / 2 - dy
        cos, sin = ops.cos(angle), ops.sin(angle)
        src_x = cos * xs + sin * ys + (w - 1) / 2
        src_y = -sin * xs + cos * ys + (h - 1) / 2

        black = ops.min(images)
        flat = ops.reshape(images - black, (n, h * w, c))  # fill with 0 here = black after adding it back
        x0, y0 = ops.floor(src_x), ops.floor(src_y)
        out = 0.0
        for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            xi, yi = x0 + ox, y0 + oy
            weight = (1 - ops.abs(src_x - xi)) * (1 - ops.abs(src_y - yi))
            inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            index = ops.cast(ops.clip(yi, 0, h - 1) * w + ops.clip(xi, 0, w - 1), "int32")
            pixels = gather_pixels(flat, index)
            out = out + pixels * ops.expand_dims(ops.where(inside, weight, 0.0), -1)
        return ops.reshape(out, (n, h, w, c)) + black

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "degrees": self.degrees, "translate": self.translate, "seed": self.seed}


def digit_augmentation(degrees: float = 10.0, translate: float = 0.1) -> keras.Sequential:
    """Twin of lightning_impl.data.augment.DigitAugment: per-image rotation and translation, no flip, black fill.

    One batched resampling (keras_ref.augment.RandomRotateShift) rather than ``RandomRotation`` +
    ``RandomTranslation``, which on the torch backend loop over the images (~14x slower, measured).
    """
    return keras.Sequential([RandomRotateShift(degrees, translate, name="rotate_shift")], name="digit_augmentation")


class RandomCropShift(layers.Layer):
    """Twin of lightning_impl.data.augment.shift_crop: pad every side by ``padding`` pixels of 0 (the mean colour,
    in normalised units) and crop back at an integer offset drawn uniformly in [0, 2 * padding] per axis and per
    image -- a shift uniform over the 2 * padding + 1 integers in [-padding, padding]. Channels-last; one gather
    for the batch, in keras.ops (every backend). Identity unless ``training``.

    Keras' RandomTranslation(nearest) rounds a uniform real shift instead, which makes the two extreme shifts half
    as likely as the others: not the distribution the Lightning run trains on."""

    def __init__(self, padding: int = 4, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an integer >= 0, got {padding}")
        self.padding, self.seed = padding, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def offsets(self, n):
        """(n, 2) integer crop offsets (rows, columns), each uniform in [0, 2 * padding]."""
        return keras.random.randint((n, 2), 0, 2 * self.padding + 1, seed=self.seed_generator)

    def call(self, images, training=None):
        if not training or self.padding == 0:
            return images
        p, (h, w, c) = self.padding, images.shape[1:]
        n = ops.shape(images)[0]
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        offsets = self.offsets(n)
        rows = ops.expand_dims(ops.arange(h), 0) + offsets[:, :1]  # (n, h) rows of the padded image
        cols = ops.expand_dims(ops.arange(w), 0) + offsets[:, 1:]  # (n, w)
        index = ops.reshape(ops.expand_dims(rows, 2) * (w + 2 * p) + ops.expand_dims(cols, 1), (n, h * w))
        flat = ops.reshape(padded, (n, (h + 2 * p) * (w + 2 * p), c))
        pixels = gather_pixels(flat, ops.cast(index, "int32"))
        return ops.reshape(pixels, (n, h, w, c))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}


def crop_flip_augmentation(padding: int = 4, flip: bool = True) -> keras.Sequential:
    """Twin of lightning_impl.data.augment.CropFlipAugment: shift by an integer uniform in [-padding, padding]
    per axis with 0 (mean colour) filling the uncovered border (RandomCropShift), then mirror left-right with
    probability 1/2."""
    stack = [RandomCropShift(padding, name="crop_shift")]
    if flip:
        stack.append(layers.RandomFlip("horizontal"))
    return keras.Sequential(stack, name="crop_flip_augmentation")


# The Lightning augmentations (classes, and the functions that are their defaults) by name, and their twins.
AUGMENTATIONS = {
    "DigitAugment": digit_augmentation,
    "digit_augment": digit_augmentation,
    "CropFlipAugment": crop_flip_augmentation,
    "crop_flip_augment": crop_flip_augmentation,
}
