"""Classical denoisers (SciPy / scikit-image / bm3d) with parameters tuned on training images, never on test.

Each method is a function ``(images (N, H, W) float32 in [0, 1], noise_sigma, **params) -> images`` and a
grid of candidate parameters. `tune` picks the grid point with the best mean PSNR on the (clean, noisy)
training pairs it is given; `apply` runs a method on many images in parallel with joblib.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import bm3d
import numpy as np
import torch
from joblib import Parallel, delayed
from scipy import ndimage
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

from core.image_quality import score


def _noisy_input(images: np.ndarray, noise_sigma: float) -> np.ndarray:
    return images


def _gaussian(images: np.ndarray, noise_sigma: float, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma), mode="nearest")


def _median(images: np.ndarray, noise_sigma: float, size: int) -> np.ndarray:
    return ndimage.median_filter(images, size=(1, size, size), mode="nearest")


def _nl_means(images: np.ndarray, noise_sigma: float, h_factor: float, patch_size: int, patch_distance: int) -> np.ndarray:
    # skimage's advice: h a little below the noise sigma, and passing sigma lets it subtract the noise
    # variance from patch distances; the tuned factor absorbs what clipping does to the noise.
    return np.stack([
        denoise_nl_means(im, h=h_factor * noise_sigma, sigma=noise_sigma, patch_size=patch_size,
                         patch_distance=patch_distance, fast_mode=True)
        for im in images
    ])


def _tv(images: np.ndarray, noise_sigma: float, weight: float) -> np.ndarray:
    return np.stack([denoise_tv_chambolle(im, weight=weight) for im in images])


def _bm3d(images: np.ndarray, noise_sigma: float, sigma_factor: float) -> np.ndarray:
    # BM3D's classic white-noise mode (nf=0: Dabov et al. 2007). The library's default profile models correlated
    # noise and costs ~0.4 s per 28x28 image against ~8 ms here, for at most ~0.2 dB (docs/denoise.md).
    # One thread per call: `apply` and `tune` already spread images over processes. The tuned factor absorbs
    # what clipping does to the noise (its effective sigma is below the nominal one, most at high sigma).
    profile = bm3d.BM3DProfile()
    profile.nf, profile.num_threads = 0, 1
    return np.stack([bm3d.bm3d(im, sigma_psd=sigma_factor * noise_sigma, profile=profile) for im in images])


@dataclass(frozen=True)
class ClassicalDenoiser:
    name: str
    fn: Callable[..., np.ndarray]
    grid: tuple[dict, ...]  # candidate parameters, tried in full by `tune`
    cost: str  # "cheap" (vectorised over the stack) or "per-image" (worth spreading over processes)


def _grid(**axes: list) -> tuple[dict, ...]:
    """Every combination of the given parameter values."""
    return tuple(dict(zip(axes, values)) for values in itertools.product(*axes.values()))


# Parameter grids, in one visible place. experiments.denoising warns when a tuned value sits on an edge.
METHODS = {
    m.name: m
    for m in (
        ClassicalDenoiser("noisy input", _noisy_input, ({},), "cheap"),
        ClassicalDenoiser("gaussian", _gaussian, _grid(sigma=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5]), "cheap"),
        ClassicalDenoiser("median", _median, _grid(size=[2, 3, 4, 5, 6]), "cheap"),
        ClassicalDenoiser(
            "nl-means", _nl_means,
            _grid(h_factor=[0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.2], patch_size=[3, 5], patch_distance=[1, 2, 3, 5]), "per-image",
        ),
        ClassicalDenoiser("tv", _tv, _grid(weight=[0.02, 0.03, 0.05, 0.07, 0.1, 0.14, 0.2, 0.3, 0.45, 0.65, 1.0]), "per-image"),
        ClassicalDenoiser("bm3d", _bm3d, _grid(sigma_factor=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2]), "per-image"),
    )
}


def apply(method: ClassicalDenoiser, noisy: np.ndarray, noise_sigma: float, params: dict, n_jobs: int = 2) -> np.ndarray:
    """Denoise a stack (N, H, W); per-image methods are split into chunks over ``n_jobs`` processes."""
    noisy = np.asarray(noisy, dtype=np.float32)
    if noisy.ndim != 3:
        raise ValueError(f"expected a stack of grey images (N, H, W), got shape {noisy.shape}")
    if method.cost == "cheap" or n_jobs == 1 or len(noisy) < 64:
        return method.fn(noisy, noise_sigma, **params).astype(np.float32)
    chunks = np.array_split(noisy, n_jobs * 4)
    parts = Parallel(n_jobs=n_jobs)(delayed(method.fn)(c, noise_sigma, **params) for c in chunks)
    return np.concatenate(parts).astype(np.float32)


def tune(method: ClassicalDenoiser, clean: np.ndarray, noisy: np.ndarray, noise_sigma: float, n_jobs: int = 2) -> tuple[dict, float]:
    """The grid point with the highest mean PSNR on these (clean, noisy) pairs, and that PSNR.

    Pass training images here: this is model selection, and test images must never reach it.
    """
    def psnr_of(params: dict) -> float:
        restored = method.fn(np.asarray(noisy, dtype=np.float32), noise_sigma, **params)
        return score(torch.from_numpy(np.asarray(restored, dtype=np.float32)), torch.from_numpy(clean), ssim=False)["psnr"]

    if len(method.grid) == 1:
        return method.grid[0], psnr_of(method.grid[0])
    # One job per grid point: each runs the whole tuning set, so process start-up is paid once per point.
    workers = 1 if method.cost == "cheap" else n_jobs
    scores = Parallel(n_jobs=workers)(delayed(psnr_of)(p) for p in method.grid)
    best = int(np.argmax(scores))
    return method.grid[best], float(scores[best])


def on_grid_edge(method: ClassicalDenoiser, params: dict) -> list[str]:
    """Names of the parameters whose tuned value is the smallest or largest of the grid."""
    edges = []
    for key, value in params.items():
        values = sorted({p[key] for p in method.grid})
        # Two-value axes (a choice, not a range) have no meaningful edge.
        if len(values) > 2 and value in (values[0], values[-1]):
            edges.append(key)
    return edges
