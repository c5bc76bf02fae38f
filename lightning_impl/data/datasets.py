"""Find, verify and load MNIST, Fashion-MNIST and CIFAR-10 as uint8 tensors, offline first.

Where the data comes from, in order:
1. ``<data_dir>/<Name>/raw/<file>`` (uncompressed IDX) or ``<file>.gz`` beside it; ``.gz`` is extracted
   with torchvision's ``extract_archive`` into a private cache, never into ``data_dir`` (it may be
   read-only, like the staged copy in CI).
2. Otherwise, if ``download`` is allowed, torchvision downloads it into ``data_dir`` with its own checksums.

Content is always verified: MNIST-style files by the published md5 of the *uncompressed* file (the
``.gz`` bytes may legitimately differ, see ``shared/data/README.md``), CIFAR-10 batches by sha256 of
the decoded arrays (the staged pickles were re-written, so file md5s cannot be used).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import calculate_md5, extract_archive

DATA_ENV = "LIGHTNING_IMPL_DATA"
CACHE_ENV = "LIGHTNING_IMPL_CACHE"


class DatasetUnavailableError(RuntimeError):
    """The data is neither on disk nor allowed to be downloaded."""


class DataIntegrityError(RuntimeError):
    """A data file exists but its content is not the published dataset."""


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lightning_impl"


def default_data_dir() -> Path:
    return Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else _user_cache() / "data"


def extraction_cache() -> Path:
    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else _user_cache() / "extracted"


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # the key users pass: mnist | fashion_mnist | cifar10
    folder: str  # torchvision's folder name under the root
    shape: tuple[int, int, int]  # C, H, W
    classes: tuple[str, ...]


SPECS = {
    "mnist": DatasetSpec("mnist", "MNIST", (1, 28, 28), tuple(str(i) for i in range(10))),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "FashionMNIST", (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "cifar10": DatasetSpec(
        "cifar10", "cifar-10-batches-py", (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
}

# md5 of the uncompressed IDX files (the published datasets).
IDX_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

# sha256 of each CIFAR-10 batch's decoded `data` (uint8, 10000x3072) and `labels` (as uint8).
# test_batch is the published value; the train batches' values were computed per file from a copy whose
# concatenation matches the published train checksums (tests/test_datasets.py re-checks that).
CIFAR10_SHA256 = {
    "data_batch_1": ("a50e8b48728e1667d682a807155c375279d5ae321fb12242c02e3104a6bc8b21",
                     "d829dbdf32167c9d7b3687cee66d92d80d46c441308b5aca0d11e8b69e27dac9"),
    "data_batch_2": ("0b825e5592c3b72ea18d6ec2ff5f5b19d33e41a75f5039054a9bb87be3cf69a0",
                     "5d18f7371ed35ea9ade77952fe958b0660a45cd6c8b8a8970030f21612cfd7e3"),
    "data_batch_3": ("c6ee1dd4601a69ec085d8ebf53ee6441775491a6839a0a9ae8fa198e88a3a429",
                     "32cf77b0ee2e790b1c4384d2d82e42dc1571b87e67f6da8f444b2725b2973f65"),
    "data_batch_4": ("1f6b6c799cff375a9f8fae2fac909d51ee09f38a6a60eebb9e8fec6f47ddc48f",
                     "d2815e3f8f656272864920fc0edde56b04ec9cf81bf397c0dd3069f4aea51aeb"),
    "data_batch_5": ("58e3bbf713e28357476a351d3a05d056372f94c681d04ca9d62a076fdf2a643b",
                     "2ddf3ab27d5d04409c94ce7b56849c243129c10de1058ae0bfe14c77e934800c"),
    "test_batch": ("177777c33ba79825320efa646ad04a94bdc3c80e4ebe3bd21724f8cdfd4b9d56",
                   "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"),
}
CIFAR10_PUBLISHED_TRAIN_SHA256 = (
    "9d5c2eddadb0deff02c14c350c0385aab7b1d5ff1edfeb4997c8dc8644960111",
    "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253",
)


def _missing_file(spec: DatasetSpec, data_dir: Path) -> Path:
    """The first file of the dataset that is not under data_dir (an IDX file may also be there as .gz)."""
    folder = data_dir / spec.folder
    if spec.folder in IDX_MD5:
        raw = folder / "raw"
        names = [f for f in IDX_MD5[spec.folder] if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]
        return raw / (names[0] if names else next(iter(IDX_MD5[spec.folder])))
    names = [f for f in (*CIFAR10_SHA256, "batches.meta") if not (folder / f).is_file()]
    return folder / (names[0] if names else "batches.meta")


def _missing_message(spec: DatasetSpec, data_dir: Path, download_error: BaseException | None = None) -> str:
    """One message for data that is not there, whatever the entry point: the folder, the missing file, and the two
    ways to fix it (both frameworks' spellings of the data-folder option)."""
    last = str(download_error).strip().splitlines()[-1] if download_error is not None else ""  # the cause, e.g. urlopen's
    why = (f"and downloading it failed ({last}; offline?)" if download_error is not None
           else "and download is disabled")
    return (
        f"{spec.name}: {_missing_file(spec, data_dir)} not found under the data folder '{data_dir}' {why}. "
        f"Point the environment variable {DATA_ENV} or the data-folder option (--data.data_dir in "
        f"lightning_impl.train*, --data-dir elsewhere) at a folder that holds '{spec.folder}/'"
        + ("." if download_error is not None else ", or allow downloading (--data.download true; Keras: drop --no-download).")
    )


# ----------------------------------------------------------------------------- MNIST / Fashion-MNIST


def _idx_root(spec: DatasetSpec, data_dir: Path, download: bool) -> Path:
    """Return a root under which torchvision finds verified, uncompressed IDX files."""
    md5s = IDX_MD5[spec.folder]
    raw = data_dir / spec.folder / "raw"
    if all((raw / f).is_file() for f in md5s):
        for f, md5 in md5s.items():
            if calculate_md5(str(raw / f)) != md5:
                raise DataIntegrityError(
                    f"{raw / f}: content does not match the published {spec.folder} md5 {md5}; the file is "
                    f"truncated or altered. Delete it and restore it (or download again)."
                )
        return data_dir
    if all((raw / f"{f}.gz").is_file() for f in md5s):
        cache_root = extraction_cache()
        cache_raw = cache_root / spec.folder / "raw"
        cache_raw.mkdir(parents=True, exist_ok=True)
        for f, md5 in md5s.items():
            target, source = cache_raw / f, raw / f"{f}.gz"
            if target.is_file() and calculate_md5(str(target)) == md5:
                continue
            # Extract beside the target then rename, so an interrupted run never leaves a half file behind.
            staging = cache_raw / ".partial"
            tmp = staging / f
            staging.mkdir(exist_ok=True)
            try:
                extract_archive(str(source), str(staging))
            except (OSError, EOFError) as err:
                tmp.unlink(missing_ok=True)
                raise DataIntegrityError(f"{source}: cannot be decompressed ({err}); the file is truncated or corrupt.") from err
            if calculate_md5(str(tmp)) != md5:
                tmp.unlink(missing_ok=True)
                raise DataIntegrityError(
                    f"{source}: its decompressed content does not match the published {spec.folder} md5 {md5}; "
                    f"the file is truncated or altered."
                )
            tmp.replace(target)
        return cache_root
    if not download:
        raise DatasetUnavailableError(_missing_message(spec, data_dir))
    tv_class = getattr(torchvision.datasets, spec.folder)
    try:
        for train in (True, False):  # torchvision checks the archives' md5s as it downloads
            tv_class(str(data_dir), train=train, download=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises RuntimeError when all mirrors fail
        raise DatasetUnavailableError(_missing_message(spec, data_dir, err)) from None
    return _idx_root(spec, data_dir, download=False)


# ----------------------------------------------------------------------------- CIFAR-10


def _content_sha256(path: Path) -> tuple[str, str]:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.ascontiguousarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.uint8)
    except Exception as err:  # a truncated pickle raises anything from EOFError to UnpicklingError
        raise DataIntegrityError(f"{path}: cannot be read as a CIFAR-10 batch ({err!r}); the file is truncated or corrupt.") from err
    return hashlib.sha256(data.tobytes()).hexdigest(), hashlib.sha256(labels.tobytes()).hexdigest()


class VerifiedCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR-10, verified by decoded content instead of file md5.

    A batch that exists but holds other content is refused (naming the file) rather than reported as
    "not found", so a download never silently overwrites it.
    """

    _verified: set[tuple[str, int, float]] = set()

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        for name, (data_sha, label_sha) in CIFAR10_SHA256.items():
            path = folder / name
            if not path.is_file():
                return False
            key = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime)
            if key in self._verified:
                continue
            if _content_sha256(path) != (data_sha, label_sha):
                raise DataIntegrityError(
                    f"{path}: decoded images/labels do not match the published CIFAR-10 content; "
                    f"the file is altered. Delete it and restore it (or download again)."
                )
            self._verified.add(key)
        return (folder / self.meta["filename"]).is_file()


# ----------------------------------------------------------------------------- public API


def ensure_available(name: str, data_dir: str | Path | None = None, download: bool = False) -> Path:
    """Make ``name`` loadable offline; return the root to load it from. Downloads only when absent."""
    spec = SPECS[_check_name(name)]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if spec.folder in IDX_MD5:
        return _idx_root(spec, data_dir, download)
    folder = data_dir / spec.folder
    if not (folder.is_dir() and any(folder.iterdir())) and not download:
        raise DatasetUnavailableError(_missing_message(spec, data_dir))
    try:
        VerifiedCIFAR10(str(data_dir), train=False, download=download)
    except (RuntimeError, OSError) as err:  # not found, or a download that failed (URLError is an OSError)
        if isinstance(err, DataIntegrityError):
            raise
        raise DatasetUnavailableError(_missing_message(spec, data_dir, err if download else None)) from None
    return data_dir


def load_split(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, C, H, W) and labels as int64, from a root returned by `ensure_available`."""
    spec = SPECS[_check_name(name)]
    if spec.folder in IDX_MD5:
        ds = getattr(torchvision.datasets, spec.folder)(str(root), train=train, download=False)
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
    ds = VerifiedCIFAR10(str(root), train=train, download=False)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.long)


def _check_name(name: str) -> str:
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SPECS)}")
    return name
