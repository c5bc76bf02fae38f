"""The seeded, stratified train/validation split of a dataset and its training-set normalisation.

Both frameworks train on this: the Lightning DataModules (lightning_impl.data.datamodules) wrap it, the Keras
trainers (keras_ref.train) read its arrays. The split is stratified by class (sklearn's train_test_split) and
seeded by ``split_seed``, kept apart from the training seed so that runs over several training seeds share one
split; the normalisation statistics come from the training split only, so validation and test never leak into
preprocessing. The test set is loaded as it is and never touched by either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from core.datasets import SPECS, default_data_dir, ensure_available, load_split


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


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (float64 accumulation)."""
    x = images.transpose(0, 1).reshape(images.shape[1], -1).double() / 255.0
    return x.mean(dim=1).float(), x.std(dim=1).float()


def check_batch_sizes(batch_size: int, eval_batch_size: int) -> None:
    """What every serving of a split refuses: a batch of fewer than one image."""
    if batch_size < 1 or eval_batch_size < 1:
        raise ValueError(f"batch_size and eval_batch_size must be positive, got {batch_size} and {eval_batch_size}")


def standardize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32, scaled to [0, 1] and standardised with the given per-channel statistics."""
    c = images.shape[1]
    return (images.float() / 255.0 - mean.to(images.device).view(1, c, 1, 1)) / std.to(images.device).view(1, c, 1, 1)


def nhwc_arrays(dataset: TensorBatches, mean: torch.Tensor, std: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A whole split as standardised float32 NHWC numpy arrays (what Keras expects) and int64 labels."""
    return standardize(dataset.images, mean, std).permute(0, 2, 3, 1).contiguous().numpy(), dataset.labels.numpy()


class DatasetSplit:
    """One dataset's train/validation/test sets as uint8 tensors, split and normalised as the module says.

    Args:
        dataset: a name of ``core.datasets.SPECS`` (mnist | fashion_mnist | cifar10).
        data_dir: where the dataset lives (or will be downloaded to); default ``core.datasets.default_data_dir()``.
        val_fraction: share of the training set held out for validation (stratified).
        split_seed: seed of the validation split.
        download: allow downloading when the data is absent (never happens when it is present).
    """

    def __init__(self, dataset: str, data_dir: str | Path | None = None, val_fraction: float = 0.1,
                 split_seed: int = 0, download: bool = True) -> None:
        if dataset not in SPECS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(SPECS)}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.dataset_name, self.spec = dataset, SPECS[dataset]
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.val_fraction, self.split_seed, self.download = val_fraction, split_seed, download
        self._root: Path | None = None
        self.train_set = self.val_set = self.test_set = None
        self.train_indices = self.val_indices = None
        self.mean = self.std = None

    @property
    def num_classes(self) -> int:
        return len(self.spec.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.shape

    def prepare(self) -> None:
        """Find (or, if allowed, download) and verify the files; extraction happens here, once."""
        self._root = ensure_available(self.dataset_name, self.data_dir, self.download)

    def setup(self) -> None:
        if self.train_set is not None:
            return
        root = self._root or ensure_available(self.dataset_name, self.data_dir, download=False)
        images, labels = load_split(self.dataset_name, root, train=True)
        train_idx, val_idx = train_test_split(np.arange(len(labels)), test_size=self.val_fraction,
                                              stratify=labels.numpy(), random_state=self.split_seed)
        # Kept (sorted) so that the split can be inspected and reproduced: indices into the official train set.
        self.train_indices, self.val_indices = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))
        self.train_set = TensorBatches(images=images[self.train_indices], labels=labels[self.train_indices])
        self.val_set = TensorBatches(images=images[self.val_indices], labels=labels[self.val_indices])
        test_images, test_labels = load_split(self.dataset_name, root, train=False)
        self.test_set = TensorBatches(images=test_images, labels=test_labels)
        # Statistics of the training split only: validation and test must not leak into preprocessing.
        self.mean, self.std = channel_stats(self.train_set.images)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32, scaled to [0, 1] and standardised with training statistics."""
        return standardize(images, self.mean, self.std)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole split as normalised float32 NHWC numpy arrays (what Keras expects) and int64 labels."""
        return nhwc_arrays({"train": self.train_set, "val": self.val_set, "test": self.test_set}[split], self.mean, self.std)
