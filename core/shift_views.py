"""Translated test-time views: a classifier scores an image as the mean of its logits over the image shifted by
-s, 0 and +s pixels along each axis (3 x 3 = 9 views), the edge pixels repeated into the gap a shift opens.

Why: a CNN trained on randomly shifted digits still answers a little differently for each placement of the same
digit; averaging nine placements removes part of that variance at no training cost (airbench's translated
test-time views, there on CIFAR-10). Edges are repeated rather than zero-filled because the normalised
background is not zero (MNIST: (0 - 0.1307) / 0.3081), so a zero strip would be a dark line no training image had.

One definition for both frameworks: lightning_impl.tasks.classifier (NCHW tensors) and keras_ref.train /
keras_ref.predict (NHWC arrays) take their windows at these offsets; tests/test_improved.py checks the two
give the same views.
"""

from __future__ import annotations

import numpy as np


def offsets(pixels: int) -> list[tuple[int, int]]:
    """The (dy, dx) window offsets of the views, the unshifted one first; ``pixels`` 0: the image alone."""
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
        raise ValueError(f"shift_tta must be a whole number of pixels >= 0, got {pixels!r}")
    if pixels == 0:
        return [(0, 0)]
    steps = (0, -pixels, pixels)
    return [(dy, dx) for dy in steps for dx in steps]


def views_nhwc(images: np.ndarray, pixels: int) -> list[np.ndarray]:
    """The views of a batch of NHWC images (the Keras layout), edges repeated; ``[images]`` when ``pixels`` is 0."""
    if pixels == 0:
        return [images]
    h, w = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), mode="edge")
    return [padded[:, pixels + dy:pixels + dy + h, pixels + dx:pixels + dx + w] for dy, dx in offsets(pixels)]
