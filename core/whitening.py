"""The whitened CIFAR-10 net's data-set stem, computed once for both frameworks: the 2x2 patch-whitening filters
that lightning_impl.models.whitened_cnn.WhitenedCNN and its Keras twin (keras_ref.models.whitened_cnn) start from.

Both trainers set the stem from the same images, the first ``WHITENING_IMAGES`` of the normalised training split
(core.split: the same order in both), before their first step; parity's check 6h compares the two stems.
"""

from __future__ import annotations

import torch

WHITENING_IMAGES = 5000  # training images whose patch covariance sets the stem (airbench: 5,000)


def patch_whitening(images: torch.Tensor, kernel_size: int, eps: float = 5e-4) -> torch.Tensor:
    """Filters (C*k*k, C, k, k) that map each k x k patch of NCHW ``images`` onto the eigenvectors of the patch
    covariance, each divided by the square root of its eigenvalue (+ eps), largest eigenvalue first."""
    c = images.shape[1]
    patches = images.double().unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N, C, H', W', k, k
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel_size * kernel_size)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    filters = (eigenvectors / (eigenvalues + eps).sqrt()).T.flip(0)
    return filters.reshape(-1, c, kernel_size, kernel_size).float()


def stem_filters(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The stem's whole kernel (2*C*k*k, C, k, k): the whitening filters and their negatives, so that the GELU
    after the stem loses nothing of the whitened signal."""
    filters = patch_whitening(images.float(), kernel_size)
    return torch.cat([filters, -filters])
