"""Two-process DDP on the CPU (gloo): trains, syncs epoch metrics, and tests every image exactly once."""

import pytest
import json
import subprocess
import sys

import lightning as L
import torch

from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.data.datamodules import MNISTDataModule

pytestmark = pytest.mark.slow  # trains models


def test_ddp_test_accuracy_equals_single_process_evaluation(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lightning_impl.train",
         "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
         "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "60",
         "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = out.stdout.strip().splitlines()[-1]
    metrics = json.loads(open(f"{run_dir}/metrics.json").read())
    assert metrics["world_size"] == 2 and metrics["val_images"] == 6000
    assert metrics["test_acc"] > 0.9  # 60 steps x 2 processes x 128 images learn MNIST well past chance

    model = ImageClassifier.load_from_checkpoint(metrics["best_checkpoint"], map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (single,) = trainer.test(model, datamodule=MNISTDataModule(download=False))
    assert single["test_acc"] == metrics["test_acc"]
    # The epoch's validation accuracy (the checkpoint's score) was reduced over both processes' shards:
    # it equals one process validating all 6,000 images.
    (single_val,) = trainer.validate(model, datamodule=MNISTDataModule(download=False))
    assert single_val["val_acc"] == metrics["best_val_acc"]
