"""The data layer on small files the tests write themselves (real parsing and verification), and on the staged data."""

import gzip
import hashlib
import os
from pathlib import Path
import pickle
import socket
import struct

import numpy as np
import pytest
import torch

from core import datasets
from core.datasets import DataIntegrityError, DatasetUnavailableError, ensure_available, load_split

IDX_FILES = {
    "train-images-idx3-ubyte": (True, 12),
    "train-labels-idx1-ubyte": (False, 12),
    "t10k-images-idx3-ubyte": (True, 5),
    "t10k-labels-idx1-ubyte": (False, 5),
}


def idx_bytes(images: bool, n: int, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    if images:
        arr = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        return struct.pack(">IIII", 0x803, n, 28, 28) + arr.tobytes(), arr
    arr = rng.integers(0, 10, size=n, dtype=np.uint8)
    return struct.pack(">II", 0x801, n) + arr.tobytes(), arr


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A small MNIST in gzipped IDX under a data root, with the checksums the loader expects patched to match."""
    root, cache = tmp_path / "data", tmp_path / "cache"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    monkeypatch.setenv(datasets.CACHE_ENV, str(cache))
    rng = np.random.default_rng(0)
    md5s, arrays = {}, {}
    for name, (images, n) in IDX_FILES.items():
        payload, arrays[name] = idx_bytes(images, n, rng)
        md5s[name] = hashlib.md5(payload).hexdigest()
        with gzip.open(raw / f"{name}.gz", "wb") as f:
            f.write(payload)
    monkeypatch.setitem(datasets.IDX_MD5, "MNIST", md5s)
    return root, cache, arrays


def snapshot(folder):
    return sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_gz_idx_is_extracted_to_cache_and_parsed(tiny_mnist):
    root, cache, arrays = tiny_mnist
    before = snapshot(root)
    loaded_root = ensure_available("mnist", root)
    assert loaded_root == cache
    assert snapshot(root) == before, "the data root must never be written to"
    x, y = load_split("mnist", loaded_root, train=True)
    assert x.dtype == torch.uint8 and x.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y.numpy(), arrays["train-labels-idx1-ubyte"])
    x, y = load_split("mnist", loaded_root, train=False)
    assert x.shape == (5, 1, 28, 28) and len(y) == 5


def test_uncompressed_idx_in_data_root_is_used_in_place(tiny_mnist):
    root, cache, arrays = tiny_mnist
    raw = root / "MNIST" / "raw"
    for name in IDX_FILES:
        with gzip.open(raw / f"{name}.gz") as f:
            (raw / name).write_bytes(f.read())
    assert ensure_available("mnist", root) == root
    assert not cache.exists()


def test_altered_gz_content_is_refused_naming_the_file(tiny_mnist):
    root, _, _ = tiny_mnist
    target = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    with gzip.open(target) as f:
        payload = bytearray(f.read())
    payload[-1] = (payload[-1] + 1) % 10  # one label changed: still a valid IDX file
    with gzip.open(target, "wb") as f:
        f.write(bytes(payload))
    with pytest.raises(DataIntegrityError, match="train-labels-idx1-ubyte.gz"):
        ensure_available("mnist", root)


def test_truncated_gz_is_refused_naming_the_file(tiny_mnist):
    root, _, _ = tiny_mnist
    target = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:200])
    with pytest.raises(DataIntegrityError, match="t10k-images-idx3-ubyte.gz"):
        ensure_available("mnist", root)


def test_altered_uncompressed_file_is_refused_naming_it(tiny_mnist):
    root, _, _ = tiny_mnist
    raw = root / "MNIST" / "raw"
    for name in IDX_FILES:
        with gzip.open(raw / f"{name}.gz") as f:
            (raw / name).write_bytes(f.read())
    with open(raw / "train-images-idx3-ubyte", "r+b") as f:
        f.seek(100)
        f.write(b"\x07")
    with pytest.raises(DataIntegrityError, match="train-images-idx3-ubyte"):
        ensure_available("mnist", root)


def test_corrupted_cache_is_repaired_from_the_source(tiny_mnist):
    root, cache, arrays = tiny_mnist
    ensure_available("mnist", root)
    cached = cache / "MNIST" / "raw" / "train-images-idx3-ubyte"
    cached.write_bytes(cached.read_bytes()[:50])
    x, _ = load_split("mnist", ensure_available("mnist", root), train=True)
    np.testing.assert_array_equal(x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_data_without_download_names_every_way_out(tmp_path, name):
    with pytest.raises(DatasetUnavailableError) as err:
        ensure_available(name, tmp_path / "nowhere", download=False)
    message = str(err.value)
    for hint in ("LIGHTNING_IMPL_DATA", "data_dir", "download"):
        assert hint in message


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        ensure_available("svhn", "/tmp")


# ----------------------------------------------------------------------------- CIFAR-10


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    hashes = {}
    for name in datasets.CIFAR10_SHA256:
        data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=4)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": ["x"] * 4}, f, protocol=2)
        hashes[name] = (hashlib.sha256(data.tobytes()).hexdigest(),
                        hashlib.sha256(np.asarray(labels, np.uint8).tobytes()).hexdigest())
    # batches.meta is md5-checked by torchvision itself: use the real one.
    real_meta = os.path.join(os.environ["LIGHTNING_IMPL_DATA"], "cifar-10-batches-py", "batches.meta")
    (folder / "batches.meta").write_bytes(open(real_meta, "rb").read())
    monkeypatch.setattr(datasets, "CIFAR10_SHA256", hashes)
    monkeypatch.setattr(datasets, "_verified", set())
    return tmp_path


def test_cifar_batches_verified_by_content_and_loaded(tiny_cifar):
    root = ensure_available("cifar10", tiny_cifar)
    x, y = load_split("cifar10", root, train=True)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8 and len(y) == 20
    # CHW planes come back in the original R, G, B order.
    with open(tiny_cifar / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="latin1")["data"][0]
    np.testing.assert_array_equal(x[0].reshape(-1).numpy(), first)


def test_altered_cifar_batch_is_refused_naming_it(tiny_cifar):
    path = tiny_cifar / "cifar-10-batches-py" / "data_batch_3"
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry["data"][0, 0] ^= 1
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
    with pytest.raises(DataIntegrityError, match="data_batch_3"):
        ensure_available("cifar10", tiny_cifar, download=True)  # must refuse, not download over it


def test_truncated_cifar_batch_is_refused_naming_it(tiny_cifar):
    path = tiny_cifar / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataIntegrityError, match="test_batch"):
        ensure_available("cifar10", tiny_cifar)


class _Planted:
    """A pickle that, when loaded by plain pickle.load, creates a folder: proof that code from the data ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
@pytest.mark.parametrize("download", [False, True])
def test_planted_cifar_pickle_runs_no_code_and_is_refused(tiny_cifar, tmp_path, name, download):
    marker = tmp_path / "code_from_the_data_ran"
    planted = tiny_cifar / "cifar-10-batches-py" / name
    with open(planted, "wb") as f:
        key = "label_names" if name == "batches.meta" else "data"
        pickle.dump({"batch_label": name, "labels": [0], key: _Planted(marker)}, f, protocol=2)
    with pytest.raises(DataIntegrityError, match=name) as refused:
        ensure_available("cifar10", tiny_cifar, download=download)  # refused, and never downloaded over
    assert "mkdir" in str(refused.value)
    with pytest.raises(DataIntegrityError, match=name):
        load_split("cifar10", tiny_cifar, train=name != "test_batch")
    assert not marker.exists()
    # The plain loader would have run it: the test plants what it says it plants.
    with open(planted, "rb") as f:
        pickle.load(f, encoding="latin1")
    assert marker.exists()


def test_original_cifar_file_is_verified_before_it_is_decoded(tiny_cifar, monkeypatch):
    """A batch with torchvision's md5 of the original file is accepted without being decoded for verification."""
    folder = tiny_cifar / "cifar-10-batches-py"
    from torchvision.datasets.utils import calculate_md5

    monkeypatch.setattr(datasets, "CIFAR10_FILE_MD5", {n: calculate_md5(str(folder / n)) for n in datasets.CIFAR10_SHA256})
    monkeypatch.setattr(datasets, "CIFAR10_SHA256", {n: ("wrong", "wrong") for n in datasets.CIFAR10_SHA256})
    assert ensure_available("cifar10", tiny_cifar) == tiny_cifar


# ----------------------------------------------------------------------------- the staged copy


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted while the data is present")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name,n_train,n_test,shape", [
    ("mnist", 60000, 10000, (1, 28, 28)),
    ("fashion_mnist", 60000, 10000, (1, 28, 28)),
    ("cifar10", 50000, 10000, (3, 32, 32)),
])
def test_staged_data_loads_offline_even_with_download_allowed(name, n_train, n_test, shape, no_network):
    root = ensure_available(name, os.environ["LIGHTNING_IMPL_DATA"], download=True)
    x, y = load_split(name, root, train=True)
    assert x.shape == (n_train, *shape) and len(y) == n_train
    assert torch.bincount(y).tolist() == [n_train // 10] * 10 or name == "mnist"
    x, y = load_split(name, root, train=False)
    assert x.shape == (n_test, *shape) and set(y.unique().tolist()) == set(range(10))


def test_per_batch_cifar_checksums_compose_to_the_published_ones():
    folder = os.path.join(os.environ["LIGHTNING_IMPL_DATA"], "cifar-10-batches-py")
    data, labels = hashlib.sha256(), hashlib.sha256()
    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}"), "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data.update(np.ascontiguousarray(entry["data"], np.uint8).tobytes())
        labels.update(np.asarray(entry["labels"], np.uint8).tobytes())
    assert (data.hexdigest(), labels.hexdigest()) == datasets.CIFAR10_PUBLISHED_TRAIN_SHA256


def test_a_recipes_datamodule_names_its_dataset():
    from core.datasets import SPECS, spec_of_datamodule

    assert spec_of_datamodule("lightning_impl.data.datamodules.CIFAR10DataModule") is SPECS["cifar10"]
    assert spec_of_datamodule("MNISTDataModule") is SPECS["mnist"]
    with pytest.raises(ValueError, match="NoisyDataModule: not the DataModule of a dataset"):
        spec_of_datamodule("lightning_impl.data.noise.NoisyDataModule")
