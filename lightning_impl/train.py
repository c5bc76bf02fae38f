"""Train an image classifier, then evaluate its best checkpoint on the test set.

    python -m lightning_impl.train                         # specified CNN on MNIST, default recipe
    python -m lightning_impl.train --config configs/mnist_specified_cnn.yaml
    python -m lightning_impl.train --trainer.accelerator gpu --trainer.devices 2
    python -m lightning_impl.train --help

Each run gets its own folder runs/<name>/version_<n>/ holding config.yaml, metrics.csv (per epoch),
checkpoints/ and metrics.json (test metrics); its path is the last line printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_impl.callbacks import EpochTimer
from lightning_impl.card import ModelCard, net_config
from lightning_impl.classifier import ImageClassifier
from lightning_impl.datamodules import ImageDataModule
from lightning_impl.datasets import DataIntegrityError, DatasetUnavailableError

# The default recipe, in one visible place. configs/mnist_specified_cnn.yaml spells out the same run.
DEFAULTS = {
    "data": {"class_path": "lightning_impl.datamodules.MNISTDataModule", "init_args": {"batch_size": 64}},
    "model.net": {"class_path": "lightning_impl.models.SpecifiedCNN"},
    "model.optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 5e-3}},
    "trainer.max_epochs": 8,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": "runs", "name": "mnist_specified_cnn"},
    },
    "checkpoint.monitor": "val_acc",
    "checkpoint.mode": "max",
    "checkpoint.filename": "best-{epoch}-{val_acc:.4f}",
    "checkpoint.save_last": True,
}


class TrainCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EpochTimer, "timer")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.set_defaults(DEFAULTS)


def fit_then_test_best(cli: LightningCLI) -> tuple[dict[str, float], str | None, EpochTimer, float]:
    """Fit, then test the best checkpoint (chosen on validation): (test metrics, checkpoint, timer, fit seconds).

    Shared by every LightningCLI entry point of the project (this one, lightning_impl.train_denoiser).
    """
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    # Every checkpoint carries what prediction needs without the data (lightning_impl.card, lightning_impl.predict).
    trainer.callbacks.append(ModelCard(net_config(cli)))
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_s = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    checkpoint = trainer.checkpoint_callback.best_model_path or None
    (results,) = trainer.test(model, datamodule=data, ckpt_path=checkpoint)
    timer = next(c for c in trainer.callbacks if isinstance(c, EpochTimer))
    return {k: float(v) for k, v in results.items()}, checkpoint, timer, fit_s


def fit_and_test(cli: LightningCLI) -> dict:
    results, checkpoint, timer, _ = fit_then_test_best(cli)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    return {
        "dataset": data.dataset_name,
        "model": type(model.net).__name__,
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "seed": cli.config.get("seed_everything"),
        "epochs": trainer.current_epoch,
        "best_checkpoint": checkpoint,
        "best_val_acc": float(trainer.checkpoint_callback.best_model_score or float("nan")),
        "val_images": len(data.val_set),  # the ablation's noise floor for best_val_acc needs it
        **results,
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
        "world_size": trainer.world_size,
    }


def run_cli(make_cli: Callable[[], LightningCLI], metrics_of: Callable[[LightningCLI], dict], summary: Sequence[str]) -> dict:
    """Build the CLI, train and test; write metrics.json into the run folder, print `summary` and the folder last."""
    torch.set_float32_matmul_precision("high")
    try:
        cli = make_cli()
        metrics = metrics_of(cli)
    except (DatasetUnavailableError, DataIntegrityError) as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the checkpoints written so far are kept (last.ckpt resumes with --ckpt_path)")
    run_dir = Path(cli.trainer.log_dir)  # a collective under DDP: every process must ask
    if cli.trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps({k: metrics[k] for k in summary}))
        print(run_dir.resolve())
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Left to interpreter exit, gloo's threads were at times torn down mid-flight: an abort (rc -6)
        # after a finished run.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics


def classifier_cli(args: list[str] | None = None) -> TrainCLI:
    """The classifier's CLI, parsed from `args` (None: the command line).

    Given `args`, the command line belongs to the caller (the ablation ladder, the ensemble), so it is hidden while
    LightningCLI parses, which would otherwise warn that it is ignored; only while parsing, since a DDP launch
    re-runs the caller's own command line.
    """
    with mock.patch.object(sys, "argv", sys.argv if args is None else sys.argv[:1]):
        return TrainCLI(
            ImageClassifier, ImageDataModule, subclass_mode_data=True, run=False, args=args,
            seed_everything_default=42, save_config_kwargs={"overwrite": False},
        )


def main(args: list[str] | None = None) -> dict | None:
    return run_cli(
        lambda: classifier_cli(args),
        fit_and_test,
        ("test_acc", "test_loss", "best_val_acc", "epochs"),
    )


if __name__ == "__main__":
    main()
