"""LightningDataModules for MNIST, Fashion-MNIST and CIFAR-10, held in memory as uint8 tensors.

Why in memory: the datasets are small (MNIST 47 MB, CIFAR-10 150 MB as uint8), and converting every
sample to a PIL image per step would make data loading, not the model, the bottleneck on a CPU.
Batches are gathered with one fancy-index per batch (``__getitems__``) and normalised (and, for the
training split only, augmented) as whole tensors on the training device in ``on_after_batch_transfer``.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import lightning as L
import numpy as np
import torch
from torch import nn
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from core.datasets import SPECS
from core.order import epoch_order, mirrored
from core.split import DatasetSplit, TensorBatches, check_batch_sizes, nhwc_arrays, standardize


def already_batched(batch):
    return batch


class EpochShuffle(torch.utils.data.Sampler):
    """Batches of indices in a new random order every epoch, fixed by (seed, epoch) alone: a run resumed from a
    checkpoint sees the order the uninterrupted run would have seen (a RandomSampler draws from the global
    generator, whose state a checkpoint does not hold). Lightning calls ``set_epoch`` before every epoch, at times
    after the loader's iterator exists (a resumed run), so the order is drawn at the first batch, not when ``iter``
    is called. A batch is a slice of one permutation tensor (``TensorBatches`` indexes with it directly): no
    per-sample Python work."""

    def __init__(self, n: int, batch_size: int, seed: int, alternating_flip: bool = False) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0
        self.alternating_flip = alternating_flip
        # Lightning calls set_epoch on the loader's ``sampler`` and on ``batch_sampler.sampler``, never on a batch
        # sampler itself (lightning.fabric.utilities.data._set_sampler_epoch): without this every epoch would
        # repeat the first epoch's order.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        if self.alternating_flip:  # index i + n: image i mirrored (WithMirrors)
            order = order + self.n * mirrored(self.n, self.seed, self.epoch)[order]
        yield from order.split(self.batch_size)


class WithMirrors(Dataset):
    """A training set whose indices n..2n-1 are its images 0..n-1 mirrored left-right: how ``EpochShuffle`` asks for
    the half of an epoch that alternating flips mirror (core.order.mirrored), one batch at a time."""

    def __init__(self, dataset: TensorBatches) -> None:
        self.dataset, self.n = dataset, len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        indices = torch.as_tensor(indices)
        images, labels = self.dataset.__getitems__(indices % self.n)
        mirror = (indices >= self.n).view(-1, *([1] * (images.dim() - 1)))
        return torch.where(mirror, images.flip(-1), images), labels


def training_loader(dataset: Dataset, batch_size: int, trainer, seed: int | None = None,
                    alternating_flip: bool = False) -> DataLoader:
    """Training batches in a new order every epoch, the same for every DataModule. One process: ``EpochShuffle``,
    and a generator of the loader's own, from which its iterator draws a worker seed instead of from the global
    generator (whose stream an epoch's dropout, augmentation and noise use). Under DDP, Lightning's
    DistributedSampler shuffles by (seed, epoch) too."""
    if trainer is not None and trainer.world_size > 1:
        if alternating_flip:
            raise ValueError("alternating_flip draws each epoch's mirrored half in one process; under several "
                             "devices use random flips (the augment's flip) instead")
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=already_batched)
    # The run's seed as the CLI hands it over (ProjectCLI.instantiate_classes); a DataModule used on its own
    # (a notebook, a benchmark) falls back to the seed torch was last seeded with.
    seed = torch.initial_seed() if seed is None else seed
    if alternating_flip:
        dataset = WithMirrors(dataset)
    return DataLoader(dataset, batch_sampler=EpochShuffle(len(dataset), batch_size, seed, alternating_flip),
                      collate_fn=already_batched,
                      generator=torch.Generator().manual_seed(seed))


class ImageDataModule(L.LightningDataModule):
    """Train/validation split stratified by class and seeded; test set untouched until `test`.

    Args:
        data_dir: where the dataset lives (or will be downloaded to). Default: the environment variable
            ``LIGHTNING_IMPL_DATA`` if set, else ``~/.cache/lightning_impl/data``.
        batch_size: training batch size (per process under DDP).
        eval_batch_size: batch size for validation and test.
        val_fraction: share of the training set held out for validation (stratified).
        split_seed: seed of the validation split; kept apart from the training seed so that runs over
            several training seeds share one split.
        download: allow downloading when the data is absent (never happens when it is present).
        augment: a module or function applied to normalised *training* batches on the device (see
            lightning_impl.data.augment); validation and test batches are never augmented. In YAML either an
            import path (``lightning_impl.data.augment.digit_augment``) or ``class_path``/``init_args``.
        alternating_flip: airbench's flips: a random half of the training images (fixed by the run's seed) mirrored
            in even epochs, the other half in odd ones (core.order.mirrored), instead of a fresh coin per image and
            epoch; the augment must not flip as well. Photographs only, never digits. One process only.
    """

    dataset_name: ClassVar[str]

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = True,
        augment: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
        alternating_flip: bool = False,
    ) -> None:
        super().__init__()
        check_batch_sizes(batch_size, eval_batch_size)
        if not isinstance(alternating_flip, bool):
            raise ValueError(f"alternating_flip must be true or false, got {alternating_flip!r}")
        if alternating_flip and getattr(augment, "flip", False):
            raise ValueError("alternating_flip mirrors the training images itself: give the augment flip=False "
                             "(e.g. CropFlipAugment with flip: false), or it would flip them a second time at random")
        # The data itself (files, split, statistics) is the framework-neutral core's; this class only serves it.
        self.split = DatasetSplit(self.dataset_name, data_dir, val_fraction, split_seed, download)
        self.save_hyperparameters(ignore=["augment"])
        self.data_dir, self.spec = self.split.data_dir, self.split.spec
        self.augment = augment
        self.seed: int | None = None  # the run's seed, set by the CLI: each epoch's order is drawn from (seed, epoch)
        self.train_set = self.val_set = self.test_set = None
        self.mean = self.std = None

    @property
    def num_classes(self) -> int:
        return self.split.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.split.input_shape

    def prepare_data(self) -> None:
        # Runs once per node before setup: extraction/download happen here, never concurrently.
        self.split.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        split = self.split
        split.setup()
        self.train_set, self.val_set, self.test_set = split.train_set, split.val_set, split.test_set
        self.train_indices, self.val_indices = split.train_indices, split.val_indices
        self.mean, self.std = split.mean, split.std

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32, scaled to [0, 1] and standardised with training statistics."""
        return standardize(images, self.mean, self.std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        x = self.normalize(x)
        if self.augment is not None and self.trainer is not None and self.trainer.training:
            x = self.augment(x)
        return x, y

    def _eval_loader(self, dataset: TensorBatches) -> DataLoader:
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads the last shard with repeated samples, which
            # would count some test images twice; this one does not.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(dataset, batch_size=self.hparams.eval_batch_size, sampler=sampler, collate_fn=already_batched)

    def train_dataloader(self) -> DataLoader:
        return training_loader(self.train_set, self.hparams.batch_size, self.trainer, self.seed,
                               self.hparams.alternating_flip)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    predict_split = "test"  # the split predict_dataloader serves (lightning_impl.train records each split's errors)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader({"val": self.val_set, "test": self.test_set}[self.predict_split])

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole split as normalised float32 NHWC numpy arrays (what Keras expects) and int64 labels."""
        return nhwc_arrays({"train": self.train_set, "val": self.val_set, "test": self.test_set}[split], self.mean, self.std)


def _datamodule(spec) -> type[ImageDataModule]:
    return type(spec.datamodule, (ImageDataModule,), {
        "dataset_name": spec.name, "__module__": __name__,
        "__doc__": f"{spec.title}: {ImageDataModule.__doc__}"})


# One DataModule per dataset of core.datasets.SPECS, named as the spec says (MNISTDataModule, ...): a dataset is
# added there, in one place, and its DataModule exists here without a line of its own.
DATAMODULES = {name: _datamodule(spec) for name, spec in SPECS.items()}
globals().update({cls.__name__: cls for cls in DATAMODULES.values()})
# The three of the exercises by name as well, for readers and linters of the modules that import them.
MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule = (DATAMODULES[n] for n in ("mnist", "fashion_mnist", "cifar10"))
