"""LightningDataModules for MNIST, Fashion-MNIST and CIFAR-10, held in memory as uint8 tensors.

Why in memory: the datasets are small (MNIST 47 MB, CIFAR-10 150 MB as uint8), and converting every
sample to a PIL image per step would make data loading, not the model, the bottleneck on a CPU.
Batches are gathered with one fancy-index per batch (``__getitems__``) and normalised (and, for the
training split only, augmented) as whole tensors on the training device in ``on_after_batch_transfer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import lightning as L
import numpy as np
import torch
from torch import nn
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset

from lightning_impl.data.order import epoch_order
from lightning_impl.data.datasets import SPECS, default_data_dir, ensure_available, load_split


class TensorBatches(Dataset):
    """Aligned tensors held in memory (``images=..., labels=...``, or ``noisy=..., clean=...``) as attributes; a
    whole batch is fetched with one index operation (``__getitems__``), never sample by sample."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        if len({len(t) for t in tensors.values()}) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.names = tuple(tensors)
        self.__dict__.update(tensors)

    def __len__(self) -> int:
        return len(getattr(self, self.names[0]))

    def _take(self, index):
        items = tuple(getattr(self, name)[index] for name in self.names)
        return items[0] if len(items) == 1 else items

    def __getitem__(self, i):
        return self._take(i)

    def __getitems__(self, indices: list[int]):
        return self._take(torch.as_tensor(indices))


def already_batched(batch):
    return batch


class EpochShuffle(torch.utils.data.Sampler):
    """Batches of indices in a new random order every epoch, fixed by (seed, epoch) alone: a run resumed from a
    checkpoint sees the order the uninterrupted run would have seen (a RandomSampler draws from the global
    generator, whose state a checkpoint does not hold). Lightning calls ``set_epoch`` before every epoch, at times
    after the loader's iterator exists (a resumed run), so the order is drawn at the first batch, not when ``iter``
    is called. A batch is a slice of one permutation tensor (``TensorBatches`` indexes with it directly): no
    per-sample Python work."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0
        # Lightning calls set_epoch on the loader's ``sampler`` and on ``batch_sampler.sampler``, never on a batch
        # sampler itself (lightning.fabric.utilities.data._set_sampler_epoch): without this every epoch would
        # repeat the first epoch's order.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        yield from epoch_order(self.n, self.seed, self.epoch).split(self.batch_size)


def training_loader(dataset: Dataset, batch_size: int, trainer) -> DataLoader:
    """Training batches in a new order every epoch, the same for every DataModule. One process: ``EpochShuffle``,
    and a generator of the loader's own, from which its iterator draws a worker seed instead of from the global
    generator (whose stream an epoch's dropout, augmentation and noise use). Under DDP, Lightning's
    DistributedSampler shuffles by (seed, epoch) too."""
    if trainer is not None and trainer.world_size > 1:
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=already_batched)
    seed = torch.initial_seed()
    return DataLoader(dataset, batch_sampler=EpochShuffle(len(dataset), batch_size, seed), collate_fn=already_batched,
                      generator=torch.Generator().manual_seed(seed))


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (float64 accumulation)."""
    x = images.transpose(0, 1).reshape(images.shape[1], -1).double() / 255.0
    return x.mean(dim=1).float(), x.std(dim=1).float()


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
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"batch_size and eval_batch_size must be positive, got {batch_size} and {eval_batch_size}")
        self.save_hyperparameters(ignore=["augment"])
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.spec = SPECS[self.dataset_name]
        self.augment = augment
        self._root: Path | None = None
        self.train_set = self.val_set = self.test_set = None
        self.mean = self.std = None

    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.shape

    def prepare_data(self) -> None:
        # Runs once per node before setup: extraction/download happen here, never concurrently.
        self._root = ensure_available(self.dataset_name, self.data_dir, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        root = self._root or ensure_available(self.dataset_name, self.data_dir, download=False)
        images, labels = load_split(self.dataset_name, root, train=True)
        train_idx, val_idx = train_test_split(
            np.arange(len(labels)),
            test_size=self.hparams.val_fraction,
            stratify=labels.numpy(),
            random_state=self.hparams.split_seed,
        )
        # Kept (sorted) so that the split can be inspected and reproduced: indices into the official train set.
        self.train_indices, self.val_indices = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))
        train_idx, val_idx = self.train_indices, self.val_indices
        self.train_set = TensorBatches(images=images[train_idx], labels=labels[train_idx])
        self.val_set = TensorBatches(images=images[val_idx], labels=labels[val_idx])
        test_images, test_labels = load_split(self.dataset_name, root, train=False)
        self.test_set = TensorBatches(images=test_images, labels=test_labels)
        # Statistics of the training split only: validation and test must not leak into preprocessing.
        self.mean, self.std = channel_stats(self.train_set.images)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32, scaled to [0, 1] and standardised with training statistics."""
        c = images.shape[1]
        mean = self.mean.to(images.device).view(1, c, 1, 1)
        std = self.std.to(images.device).view(1, c, 1, 1)
        return (images.float() / 255.0 - mean) / std

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
        return training_loader(self.train_set, self.hparams.batch_size, self.trainer)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole split as normalised float32 NHWC numpy arrays (what Keras expects) and int64 labels."""
        dataset = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
        x = self.normalize(dataset.images).permute(0, 2, 3, 1).contiguous().numpy()
        return x, dataset.labels.numpy()


class MNISTDataModule(ImageDataModule):
    dataset_name = "mnist"


class FashionMNISTDataModule(ImageDataModule):
    dataset_name = "fashion_mnist"


class CIFAR10DataModule(ImageDataModule):
    dataset_name = "cifar10"


DATAMODULES = {cls.dataset_name: cls for cls in (MNISTDataModule, FashionMNISTDataModule, CIFAR10DataModule)}
