"""The Lightning DataModule of the denoising exercise: (noisy, clean) pairs from core.noise, fresh training noise
per batch on the device. The noise itself, and the fixed validation/test copies every method is scored on, are
the framework-neutral core's (core/noise.py)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from core.noise import NoisySplit, Sigma, add_noise, sample_sigmas, to_unit
from core.split import TensorBatches
from lightning_impl.data.datamodules import already_batched, training_loader


class NoisyDataModule(L.LightningDataModule):
    """(noisy, clean) float batches in [0, 1]: the pairs of ``core.noise.NoisySplit`` served to a Lightning
    Trainer, with fresh training noise drawn per batch on the device.

    Args (those of NoisySplit):
        dataset: mnist | fashion_mnist | cifar10.
        sigma: the training noise level, or a (low, high) range drawn uniformly per image (a "blind" model).
        eval_sigma: the noise of the fixed validation/test copies; default ``sigma``.
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
        super().__init__()
        self.pairs = NoisySplit(dataset, sigma, eval_sigma, data_dir, batch_size, eval_batch_size, val_fraction,
                                split_seed, download, train_limit, val_limit, test_limit)
        self.sigma, self.eval_sigma = self.pairs.sigma, self.pairs.eval_sigma
        self.save_hyperparameters()
        self.seed: int | None = None  # the run's seed, set by the CLI (see ImageDataModule)
        self.train_set = self.val_set = self.test_set = None

    @property
    def source(self):
        """The classification split the pairs are built on (core.split.DatasetSplit)."""
        return self.pairs.source

    def prepare_data(self) -> None:
        self.pairs.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.pairs.setup()
        self.train_set, self.val_set, self.test_set = self.pairs.train_set, self.pairs.val_set, self.pairs.test_set

    def eval_pairs(self, split: str, sigma: Sigma, limit: int | None = None) -> TensorBatches:
        """The fixed noisy copy of the first ``limit`` images of a split ('val' or 'test') at ``sigma``."""
        return self.pairs.eval_pairs(split, sigma, limit)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.trainer is not None and self.trainer.training:
            clean = to_unit(batch)
            # Fresh noise from the global (seeded) generator, on the batch's device.
            return add_noise(clean, sample_sigmas(len(clean), self.sigma, device=clean.device)), clean
        noisy, clean = batch
        return noisy, to_unit(clean)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.source.input_shape

    @property
    def dataset_name(self) -> str:
        return self.hparams.dataset

    def train_dataloader(self) -> DataLoader:
        return training_loader(self.train_set, self.hparams.batch_size, self.trainer, self.seed)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.eval_batch_size, collate_fn=already_batched)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.hparams.eval_batch_size, collate_fn=already_batched)
