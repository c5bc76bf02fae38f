"""What the project's LightningCLI entry points share: a default recipe from configs/, the checkpoint and timer
callbacks as arguments, fit -> test the best checkpoint -> metrics.json, and the data-error exit."""

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

from lightning_impl import configs
from lightning_impl.callbacks import EpochTimer
from lightning_impl.runs import data_errors, strict, write_json


def as_defaults(config: dict, prefix: str = "") -> dict:
    """A recipe as parser defaults: dotted keys, a class (class_path + init_args) kept whole."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and "class_path" not in value:
            out.update(as_defaults(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class ProjectCLI(LightningCLI):
    """LightningCLI with ``--checkpoint.*`` (ModelCheckpoint) and ``--timer`` (EpochTimer) arguments, and the
    default recipe ``configs/<recipe>`` as its defaults (a --config and flags are merged over it)."""

    recipe: str

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EpochTimer, "timer")
        parser.set_defaults(as_defaults(configs.load(self.recipe)))


def make_cli(cli_class: type[ProjectCLI], model, data, args: list[str] | None, **kwargs) -> ProjectCLI:
    """Parse ``args`` (None: the command line) over the CLI's default recipe.

    Given ``args``, the command line belongs to the caller (the ablation ladder, the ensemble), so it is hidden
    while LightningCLI parses, which would otherwise warn that it is ignored; only while parsing, since a DDP
    launch re-runs the caller's own command line.
    """
    with mock.patch.object(sys, "argv", sys.argv if args is None else sys.argv[:1]):
        return cli_class(
            model, data, run=False, args=args, save_config_kwargs={"overwrite": False}, **kwargs,
        )


def fit_then_test_best(cli: LightningCLI) -> tuple[dict[str, float], str | None, EpochTimer, float]:
    """Fit, then test the best checkpoint (chosen on validation): (test metrics, checkpoint, timer, fit seconds)."""
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_s = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    checkpoint = trainer.checkpoint_callback.best_model_path or None
    (results,) = trainer.test(model, datamodule=data, ckpt_path=checkpoint)
    timer = next(c for c in trainer.callbacks if isinstance(c, EpochTimer))
    return {k: float(v) for k, v in results.items()}, checkpoint, timer, fit_s


def run_cli(make: Callable[[], LightningCLI], metrics_of: Callable[[LightningCLI], dict], summary: Sequence[str]) -> dict:
    """Build the CLI, train and test; write metrics.json into the run folder, print `summary` and the folder last."""
    torch.set_float32_matmul_precision("high")
    try:
        with data_errors():
            cli = make()
            metrics = metrics_of(cli)
    except KeyboardInterrupt:
        sys.exit("interrupted: the checkpoints written so far are kept in the run folder")
    metrics = strict({**metrics, "finished": True})  # what metrics.json holds: strict JSON, no NaN
    run_dir = Path(cli.trainer.log_dir)  # a collective under DDP: every process must ask
    if cli.trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        print(json.dumps({k: metrics[k] for k in summary}))
        print(run_dir.resolve())
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Left to interpreter exit, gloo's threads were at times torn down mid-flight: an abort (rc -6)
        # after a finished run.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return metrics

