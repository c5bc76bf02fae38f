"""Test accuracy of an ensemble: the mean of several trained classifiers' softmax probabilities.

    python -m lightning_impl.ensemble runs/mnist_improved/version_0 runs/mnist_improved/version_1
    python -m lightning_impl.ensemble --ladder runs/ablation/mnist_full_lightning --step 06_schedule

Each member is a training run's folder (as lightning_impl.train writes it: config.yaml and the best-validation
checkpoint checkpoints/best-*.ckpt). The net is rebuilt from the run's own config, its weights loaded from that
checkpoint, and every member and the ensemble are scored on the same test set, in float32, with the members'
own test-time augmentation (``flip_tta``), so the members' figures here and the ensemble's are comparable.
``--ladder`` takes the seeds of one ablation step, which makes an n-seed ladder an n-model ensemble for free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torchmetrics.classification import MulticlassAccuracy

from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.data.datamodules import ImageDataModule
from core import configs, flags
from lightning_impl import checkpoints
from core.runs import UsageError, data_errors, fail, write_json
from lightning_impl.cli import ConfigurationError
from lightning_impl.train import classifier_cli


def best_checkpoint(run_dir: Path) -> Path:
    found = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    if len(found) != 1:
        raise UsageError(f"expected one checkpoints/best-*.ckpt in {run_dir}, found {len(found)}")
    return found[0]


def load_member(run_dir: Path) -> tuple[ImageClassifier, ImageDataModule, dict]:
    """The run's model with its best weights, its DataModule, and its dataset's class (members must agree)."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise UsageError(f"{run_dir} is not a training run's folder (no config.yaml)")
    if configs.recipe_task(configs.load(config)) == "denoiser":
        raise UsageError(f"{run_dir}: this is a denoiser run: an ensemble averages classifiers")
    cli = classifier_cli(["--config", str(config), "--trainer.logger", "false"])
    state = checkpoints.load(best_checkpoint(run_dir))["state_dict"]  # data only, never code
    cli.model.load_state_dict(state)
    return cli.model.eval(), cli.datamodule, cli.config.as_dict()["data"]["class_path"]


@torch.no_grad()
def test_probabilities(model: ImageClassifier, datamodule: ImageDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    probs, labels = [], []
    for batch in datamodule.test_dataloader():
        x, y = datamodule.on_after_batch_transfer(batch, 0)  # normalised as in training; no trainer, no augmentation
        probs.append(model.eval_logits(x).float().softmax(dim=-1))
        labels.append(y)
    return torch.cat(probs), torch.cat(labels)


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    metric = MulticlassAccuracy(num_classes=probs.shape[1], average="micro")
    return float(metric(probs, labels))


def evaluate(run_dirs: list[Path]) -> dict:
    if not run_dirs:
        raise UsageError("no runs to ensemble")
    members, labels, data_config, datamodule = [], None, None, None
    for run_dir in run_dirs:
        model, dm, data = load_member(run_dir)
        if data_config is None:
            data_config, datamodule = data, dm
            datamodule.setup("test")
        elif data != data_config:  # the test split depends on the dataset only, not on the seeded train/val split
            raise UsageError(f"{run_dir} was trained on {data}, {run_dirs[0]} on {data_config}")
        probs, y = test_probabilities(model, datamodule)
        if labels is not None and not torch.equal(y, labels):
            raise UsageError("the members' test sets differ")  # e.g. a shuffled test loader
        labels = y
        members.append({"run": str(run_dir), "checkpoint": best_checkpoint(run_dir).name, "test_acc": accuracy(probs, y),
                        "probs": probs})
    mean = torch.stack([m.pop("probs") for m in members]).mean(0)
    accs = torch.tensor([m["test_acc"] for m in members])
    return {
        "members": members,
        "member_test_acc_mean": float(accs.mean()),
        "member_test_acc_std": float(accs.std()) if len(accs) > 1 else float("nan"),
        "ensemble_test_acc": accuracy(mean, labels),
        "test_images": len(labels),
    }


def ladder_runs(ladder: Path, step: str) -> list[Path]:
    results = ladder / "results.json"
    if not results.is_file():
        raise UsageError(f"{ladder} holds no ladder (results.json)")
    runs = [r for r in json.loads(results.read_text()) if r.get("step") == step]
    if not runs:
        raise UsageError(f"no finished run of step {step!r} in {results}")
    # best_checkpoint is .../<run>/checkpoints/best-*.ckpt
    return [Path(r["best_checkpoint"]).parents[1] for r in sorted(runs, key=lambda r: r["seed"])]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, help="training run folders (config.yaml + checkpoints/)")
    p.add_argument("--ladder", type=Path, help="an ablation folder; with --step, ensemble that step's seeds")
    p.add_argument("--step", help="the ladder step, e.g. 06_schedule")
    flags.add(p, "json")
    args = p.parse_args(argv)
    if (args.ladder is None) != (args.step is None):
        p.error("--ladder and --step go together")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        with data_errors():
            runs = args.runs + (ladder_runs(args.ladder, args.step) if args.ladder else [])
            result = evaluate(runs)
    except (checkpoints.CheckpointError, ConfigurationError) as err:
        fail(str(err))
    for m in result["members"]:
        print(f"{100 * m['test_acc']:.2f} %  {m['run']}")
    std = result["member_test_acc_std"]
    print(f"members {100 * result['member_test_acc_mean']:.2f}" + ("" if std != std else f" ± {100 * std:.2f}")
          + f" %; ensemble of {len(runs)}: {100 * result['ensemble_test_acc']:.2f} % ({result['test_images']} test images)")
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    sys.exit(main() and None)
