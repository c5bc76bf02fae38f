"""Additive Gaussian noise on [0, 1] images, and the (noisy, clean) pairs a denoiser trains and is scored on.

Training draws fresh noise for every batch (the model never sees the same corruption twice); validation
and test use one fixed, seeded noisy copy, so every method -- networks and classical filters -- is scored
on exactly the same inputs, run after run.
"""

from __future__ import annotations

import torch

from core.datasets import SPECS
from core.split import DatasetSplit, TensorBatches, check_batch_sizes

# Seeds of the fixed eval noise. One standard-normal draw z per split is scaled by sigma, so the copies at
# different sigma share their noise pattern: a curve over sigma is not also a curve over noise draws.
NOISE_SEEDS = {"val": 1001, "test": 2002, "tune": 3003}

Sigma = float | tuple[float, float]  # one noise level, or a (low, high) range drawn per image ("blind")


def add_noise(clean: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """clip(clean + sigma * N(0, 1), 0, 1). ``sigma`` is a float or one value per image (shape (N,))."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + _per_image(sigma, clean) * noise).clamp_(0.0, 1.0)


def _per_image(sigma: float | torch.Tensor, images: torch.Tensor) -> float | torch.Tensor:
    if isinstance(sigma, torch.Tensor):
        return sigma.to(images).view(-1, *([1] * (images.dim() - 1)))
    return sigma


def sample_sigmas(n: int, sigma: Sigma, generator: torch.Generator | None = None, device=None) -> float | torch.Tensor:
    """A float sigma as is; a (low, high) range as n values drawn uniformly, one per image."""
    if isinstance(sigma, (int, float)):
        return float(sigma)
    low, high = sigma
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def fixed_noisy_copy(clean: torch.Tensor, sigma: Sigma, seed: int) -> torch.Tensor:
    """The noisy copy of ``clean`` (float in [0, 1]) that a given seed defines; the same on every call."""
    generator = torch.Generator().manual_seed(seed)
    sigmas = sample_sigmas(len(clean), sigma, generator)
    return add_noise(clean, sigmas, generator)


def check_sigma(sigma: Sigma, name: str = "sigma") -> Sigma:
    if isinstance(sigma, (int, float)):
        if not 0.0 <= sigma <= 1.0:
            raise ValueError(f"{name}: a noise level must lie in [0, 1] (images are in [0, 1]), got {sigma}")
        return float(sigma)
    if len(sigma) != 2 or not 0.0 <= sigma[0] < sigma[1] <= 1.0:
        raise ValueError(f"{name}: a noise range must be (low, high) with 0 <= low < high <= 1, got {sigma}")
    return (float(sigma[0]), float(sigma[1]))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (a denoiser wants the pixel scale, not standardised values)."""
    return images.float() / 255.0


def _first(images: torch.Tensor, limit: int | None) -> torch.Tensor:
    return images if limit is None else images[:limit]


class NoisySplit:
    """(noisy, clean) pairs in [0, 1] built on a dataset's classification split (core.split): stratified and
    seeded the same way (``val_fraction``, ``split_seed``); only the pixel scale differs -- [0, 1], not standardised.
    The training set holds clean uint8 images (each framework adds fresh noise per batch); validation and test
    hold the fixed noisy copies.

    Args:
        dataset: mnist | fashion_mnist | cifar10.
        sigma: the training noise level, or a (low, high) range drawn uniformly per image (a "blind" model).
        eval_sigma: the noise of the fixed validation/test copies; default ``sigma``.
        batch_size / eval_batch_size: the batch sizes a trainer serves the pairs in.
        train_limit / val_limit / test_limit: use only the first n images of a split (quick runs, tests).
    """

    def __init__(
        self,
        dataset: str = "fashion_mnist",
        sigma: Sigma = 0.3,
        eval_sigma: Sigma | None = None,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = True,
        train_limit: int | None = None,
        val_limit: int | None = None,
        test_limit: int | None = None,
    ) -> None:
        if dataset not in SPECS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SPECS)}")
        for name, limit in (("train_limit", train_limit), ("val_limit", val_limit), ("test_limit", test_limit)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                # 0 would train (or score) nothing and still report an untrained net's scores as a finished run
                raise ValueError(f"{name} must be a positive number of images (or null for all), got {limit!r}")
        check_batch_sizes(batch_size, eval_batch_size)
        self.sigma = check_sigma(sigma)
        self.eval_sigma = check_sigma(eval_sigma, "eval_sigma") if eval_sigma is not None else self.sigma
        self.dataset_name, self.batch_size, self.eval_batch_size = dataset, batch_size, eval_batch_size
        self.limits = {"train": train_limit, "val": val_limit, "test": test_limit}
        self.source = DatasetSplit(dataset, data_dir, val_fraction, split_seed, download)
        self.train_set = self.val_set = self.test_set = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.source.input_shape

    def prepare(self) -> None:
        self.source.prepare()

    def setup(self) -> None:
        if self.train_set is not None:
            return
        self.source.setup()
        # Clean uint8 training images only: noise is added per batch, by the trainer.
        self.train_set = TensorBatches(clean=_first(self.source.train_set.images, self.limits["train"]))
        self.val_set = self.eval_pairs("val", self.eval_sigma, self.limits["val"])
        self.test_set = self.eval_pairs("test", self.eval_sigma, self.limits["test"])

    def eval_pairs(self, split: str, sigma: Sigma, limit: int | None = None) -> TensorBatches:
        """The fixed noisy copy of the first ``limit`` images of a split ('val' or 'test') at ``sigma``."""
        source = {"val": self.source.val_set, "test": self.source.test_set}[split]
        clean = _first(source.images, limit)
        return TensorBatches(noisy=fixed_noisy_copy(to_unit(clean), sigma, NOISE_SEEDS[split]), clean=clean)
