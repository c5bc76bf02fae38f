"""Find, verify and load MNIST, Fashion-MNIST and CIFAR-10 as uint8 tensors, offline first.

Where the data comes from, in order:
1. ``<data_dir>/<Name>/raw/<file>`` (uncompressed IDX) or ``<file>.gz`` beside it; ``.gz`` is extracted
   with torchvision's ``extract_archive`` into a private cache, never into ``data_dir`` (it may be
   read-only, like the staged copy in CI).
2. Otherwise, if ``download`` is allowed, torchvision downloads it into ``data_dir`` with its own checksums.

Content is always verified: MNIST-style files by the published md5 of the *uncompressed* file (the
``.gz`` bytes may legitimately differ, see ``shared/data/README.md``), CIFAR-10 batches by torchvision's md5
of the original file or else by sha256 of the decoded arrays (the staged pickles were re-written). A CIFAR-10
pickle is never handed to ``pickle.load``: a restricted unpickler decodes plain data only, so a planted file
runs no code and is refused.
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
from torchvision.datasets.utils import calculate_md5, download_and_extract_archive, extract_archive

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
    """Everything the project knows of a dataset, in one entry: adding a dataset is adding one here (its files'
    checksums below, when it is read from files torchvision does not verify). Both frameworks, the experiments
    and the report read it; Lightning's DataModule of each is made from it (lightning_impl.data.datamodules)."""

    name: str  # the key users pass: mnist | fashion_mnist | cifar10
    title: str  # how a reader writes it: MNIST, Fashion-MNIST, CIFAR-10
    folder: str  # torchvision's folder name under the root
    shape: tuple[int, int, int]  # C, H, W
    classes: tuple[str, ...]
    train_size: int  # images of the official training set (before the validation split)
    test_size: int
    datamodule: str  # the class name of its LightningDataModule (what a recipe's data.class_path ends in)


SPECS = {
    "mnist": DatasetSpec("mnist", "MNIST", "MNIST", (1, 28, 28), tuple(str(i) for i in range(10)), 60_000, 10_000,
                         "MNISTDataModule"),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "Fashion-MNIST", "FashionMNIST", (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        60_000, 10_000, "FashionMNISTDataModule",
    ),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR-10", "cifar-10-batches-py", (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"), 50_000, 10_000,
        "CIFAR10DataModule",
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
        try:
            cache_raw.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError, PermissionError) as err:
            blocker = next((p for p in (cache_raw, *cache_raw.parents) if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is a file, not a folder" if blocker else f"{type(err).__name__}: {err.strerror}"
            raise DatasetUnavailableError(
                f"the extraction cache {cache_root} cannot hold the decompressed {spec.folder} files ({why}); "
                f"point {CACHE_ENV} at a folder you can write (default: {_user_cache() / 'extracted'})") from None
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


# torchvision's md5 of each original batch file (what a download gives): such a file is verified *before* it is
# decoded. Any other file (the staged copy was re-written) is decoded by `_SafeUnpickler`, which runs no code, and
# verified by the sha256 of what it decoded.
CIFAR10_FILE_MD5 = {name: md5 for name, md5 in (*torchvision.datasets.CIFAR10.train_list,
                                                 *torchvision.datasets.CIFAR10.test_list)}
CIFAR10_META_MD5 = torchvision.datasets.CIFAR10.meta["md5"]

# The only globals a CIFAR-10 pickle needs: numpy's array reconstruction (numpy 1 and 2 spell its module apart)
# and the codec protocol-2 pickles use for bytes. A planted pickle that names anything else (os.system,
# builtins.eval, ...) is refused before that object exists.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Decodes plain data (dicts, lists, strings, numbers, numpy arrays) and nothing that could run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR-10 file never holds (refused unloaded)")


def _safe_load(path: Path) -> object:
    with open(path, "rb") as f:
        return _SafeUnpickler(f, encoding="latin1").load()


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images (uint8, N x 3072) and labels (uint8), decoded without running any code from the file."""
    try:
        entry = _safe_load(path)
        data, labels = entry["data"], entry["labels"]
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
            raise ValueError("'data' is not a uint8 N x 3072 array")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
            raise ValueError("'labels' are not one class 0-9 per image")
    except Exception as err:  # a truncated or planted pickle raises anything from EOFError to UnpicklingError
        raise DataIntegrityError(f"{path}: cannot be read as a CIFAR-10 batch ({err}); the file is truncated, corrupt "
                                 f"or not CIFAR-10. Delete it and restore it (or download again).") from err
    return np.ascontiguousarray(data), labels.astype(np.uint8)


def _content_sha256(path: Path) -> tuple[str, str]:
    data, labels = _read_batch(path)
    return hashlib.sha256(data.tobytes()).hexdigest(), hashlib.sha256(labels.tobytes()).hexdigest()


_verified: set[tuple[str, int, float]] = set()  # (path, size, mtime) of batches verified in this process


def _verify_cifar(folder: Path) -> bool:
    """True when every batch and batches.meta is there and is CIFAR-10; False when a file is missing; a
    `DataIntegrityError` naming the file when one holds anything else."""
    if not all((folder / name).is_file() for name in (*CIFAR10_SHA256, "batches.meta")):
        return False
    for name, (data_sha, label_sha) in CIFAR10_SHA256.items():
        path = folder / name
        key = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime)
        if key in _verified:
            continue
        if CIFAR10_FILE_MD5.get(name) != calculate_md5(str(path)) and _content_sha256(path) != (data_sha, label_sha):
            raise DataIntegrityError(
                f"{path}: decoded images/labels do not match the published CIFAR-10 content; "
                f"the file is altered. Delete it and restore it (or download again)."
            )
        _verified.add(key)
    meta = folder / "batches.meta"
    if calculate_md5(str(meta)) != CIFAR10_META_MD5:
        try:
            names = tuple(_safe_load(meta)["label_names"])
        except Exception as err:
            raise DataIntegrityError(f"{meta}: cannot be read as CIFAR-10's batches.meta ({err}); the file is "
                                     f"truncated or corrupt. Delete it and restore it (or download again).") from err
        if names != SPECS["cifar10"].classes:
            raise DataIntegrityError(f"{meta}: its class names {names} are not CIFAR-10's. Delete it and restore it.")
    return True


def _cifar_split(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not _verify_cifar(folder):
        raise DatasetUnavailableError(_missing_message(SPECS["cifar10"], folder.parent))
    names = [n for n in CIFAR10_SHA256 if (n != "test_batch") == train]
    data, labels = zip(*(_read_batch(folder / n) for n in names))
    images = torch.from_numpy(np.concatenate(data)).reshape(-1, 3, 32, 32)  # R, G, B planes, row-major
    return images.contiguous(), torch.from_numpy(np.concatenate(labels)).long()


# ----------------------------------------------------------------------------- public API


def ensure_available(name: str, data_dir: str | Path | None = None, download: bool = False) -> Path:
    """Make ``name`` loadable offline; return the root to load it from. Downloads only when absent."""
    spec = SPECS[_check_name(name)]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if spec.folder in IDX_MD5:
        return _idx_root(spec, data_dir, download)
    folder = data_dir / spec.folder
    if _verify_cifar(folder):  # present: nothing touches the network
        return data_dir
    if not download:
        raise DatasetUnavailableError(_missing_message(spec, data_dir))
    tv = torchvision.datasets.CIFAR10
    try:  # torchvision checks the archive's md5 before it is extracted
        download_and_extract_archive(tv.url, str(data_dir), filename=tv.filename, md5=tv.tgz_md5)
    except (RuntimeError, OSError) as err:  # URLError is an OSError
        raise DatasetUnavailableError(_missing_message(spec, data_dir, err)) from None
    if not _verify_cifar(folder):
        raise DatasetUnavailableError(_missing_message(spec, data_dir))
    return data_dir


def load_split(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, C, H, W) and labels as int64, from a root returned by `ensure_available`."""
    spec = SPECS[_check_name(name)]
    if spec.folder in IDX_MD5:
        ds = getattr(torchvision.datasets, spec.folder)(str(root), train=train, download=False)
        return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
    return _cifar_split(Path(root) / spec.folder, train)


def spec_of_datamodule(class_path: str) -> DatasetSpec:
    """The dataset a recipe's ``data.class_path`` trains on: its DataModule's class name, with or without the module."""
    name = class_path.rsplit(".", 1)[-1]
    for spec in SPECS.values():
        if spec.datamodule == name:
            return spec
    raise ValueError(f"{class_path}: not the DataModule of a dataset; known: {sorted(s.datamodule for s in SPECS.values())}")


def _check_name(name: str) -> str:
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SPECS)}")
    return name
