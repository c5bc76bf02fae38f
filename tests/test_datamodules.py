"""DataModules on the staged data: sizes, stratified seeded split, train-only statistics, batching."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from core.split import channel_stats
from lightning_impl.data.datamodules import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule


@pytest.fixture(scope="module")
def mnist():
    dm = MNISTDataModule(download=False)
    dm.prepare_data()
    dm.setup()
    return dm


def test_sizes_and_disjoint_split(mnist):
    assert (len(mnist.train_set), len(mnist.val_set), len(mnist.test_set)) == (54000, 6000, 10000)
    train, val = set(mnist.train_indices.tolist()), set(mnist.val_indices.tolist())
    assert not train & val and len(train | val) == 60000


def test_split_is_stratified(mnist):
    full = torch.bincount(torch.cat([mnist.train_set.labels, mnist.val_set.labels]), minlength=10)
    val = torch.bincount(mnist.val_set.labels, minlength=10)
    # Each class keeps its share of the training set: at most one image off the exact proportion.
    assert ((val - full * 0.1).abs() <= 1).all(), (val, full)


def test_split_is_seeded(mnist):
    again = MNISTDataModule(download=False)
    again.setup()
    other = MNISTDataModule(download=False, split_seed=1)
    other.setup()
    assert torch.equal(again.val_indices, mnist.val_indices)
    assert not torch.equal(other.val_indices, mnist.val_indices)


def test_val_fraction_is_configurable():
    dm = FashionMNISTDataModule(download=False, val_fraction=0.25)
    dm.setup()
    assert len(dm.val_set) == 15000
    assert torch.bincount(dm.val_set.labels).tolist() == [1500] * 10


def test_statistics_come_from_the_training_split_only(mnist):
    mean, std = channel_stats(mnist.train_set.images)
    assert torch.equal(mnist.mean, mean) and torch.equal(mnist.std, std)
    everything = torch.cat([mnist.train_set.images, mnist.val_set.images, mnist.test_set.images])
    assert not torch.allclose(mnist.mean, channel_stats(everything)[0], rtol=0, atol=1e-5)
    x = mnist.normalize(mnist.train_set.images)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3


def test_batches_are_whole_uint8_tensors_normalised_after_transfer(mnist):
    x, y = next(iter(mnist.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.uint8 and y.shape == (128,)
    xn, yn = mnist.on_after_batch_transfer((x, y), 0)
    assert xn.dtype == torch.float32 and torch.equal(yn, y)
    torch.testing.assert_close(xn, mnist.normalize(x))
    xs, _ = next(iter(mnist.test_dataloader()))
    assert torch.equal(xs, mnist.test_set.images[:1000]), "evaluation order must be the dataset's"


def test_distributed_evaluation_sees_every_image_once():
    dm = MNISTDataModule(download=False, eval_batch_size=7)
    dm.setup()
    dm.val_set.images, dm.val_set.labels = dm.val_set.images[:101], dm.val_set.labels[:101]  # odd on purpose
    seen = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        seen += list(dm.val_dataloader().sampler)
    assert sorted(seen) == list(range(101))


@pytest.mark.slow
def test_cifar10_shapes_and_per_channel_stats():
    dm = CIFAR10DataModule(download=False)
    dm.setup()
    assert dm.train_set.images.shape == (45000, 3, 32, 32) and len(dm.val_set) == 5000
    assert dm.mean.shape == (3,) and (dm.mean > 0.4).all() and (dm.std > 0.2).all()
    x, y = dm.arrays("val")
    assert x.shape == (5000, 32, 32, 3) and x.dtype.name == "float32" and len(y) == 5000


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="val_fraction"):
        MNISTDataModule(val_fraction=1.5)
    with pytest.raises(ValueError, match="batch_size and eval_batch_size must be positive"):
        MNISTDataModule(batch_size=0)


@pytest.mark.slow
def test_cli_reports_missing_data_in_one_message(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lightning_impl.train", "--data.data_dir", str(tmp_path), "--data.download", "false",
         "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode != 0
    assert "LIGHTNING_IMPL_DATA" in out.stderr and "--data.download" in out.stderr
    assert "Traceback" not in out.stderr
