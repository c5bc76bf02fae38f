"""Time to 99 % test accuracy with the default recipe: Lightning as `python -m lightning_impl.train` runs it,
against a plain PyTorch loop with the same recipe.

    python benchmarks/time_to_accuracy.py                                  # seeds 1 2 3, 2 threads, 5 epochs
    python benchmarks/time_to_accuracy.py --seeds 5 --seed 1 --json tta.json   # seeds 1-5
    python benchmarks/time_to_accuracy.py --epochs 1 --limit-train-batches 20 --seeds 1   # smoke run, seconds (seed 1)

The recipe is configs/mnist_specified_cnn.yaml (read here, not copied: SpecifiedCNN, batch 64, Adam lr 5e-3,
per-step warm-up (10 %) + cosine decay, 5 epochs, channels-last, float32). What each path does:

  plain       seed_everything(seed), the net and Adam from the recipe's class paths, channels-last weights and
              batches; the same MNISTDataModule (stratified split, seed 0; normalisation with the training
              split's statistics); the same batches in the same order: the DataModule's own training loader
              (EpochShuffle seeded with the run seed), its epoch set the way Lightning's fit loop sets it
              (lightning.fabric's _set_sampler_epoch); the same per-epoch reseeding as SeedEachEpoch; LambdaLR over
              lightning_impl.tasks.schedules.warmup_cosine stepped after every batch; cross-entropy;
              zero_grad(set_to_none) / backward / step.
  lightning   lightning_impl.train.classifier_cli(...) with the default recipe: everything the entry point has on
              (CSV logger into a temporary folder, checkpoints, validation every epoch, epoch timer, finite-loss
              check, per-epoch seeding), except the progress bar and the model summary; ``trainer.fit``.

Both start the same net from the same weights and see the same batches, so their accuracies per epoch should
agree (to float rounding); the table says whether they do.

The training clock runs from the first batch (plain: the loop; Lightning: ``on_train_start``) and is paused
while the test set is evaluated at the end of every epoch (10,000 images, batches of 1,000, no gradients, the
same function for both paths) and, for Lightning, while its validation pass runs; the rest of Lightning's epoch
(logging, checkpoint writing) counts. ``time_to_99`` is the clock at the end of the first epoch whose test
accuracy is >= 99.0 % (none: never reached). Runs interleave the paths (plain, lightning, plain, ...) seed by
seed, at ``--threads`` threads. Timings depend on the machine and on what else runs on it: compare the paths
measured in one sitting, never figures across machines; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from core.configs import load  # noqa: E402
from core.order import epoch_seed  # noqa: E402
from lightning.fabric.utilities.data import _set_sampler_epoch  # noqa: E402
from lightning_impl.tasks.schedules import warmup_cosine  # noqa: E402
from core import flags  # noqa: E402

RECIPE = "mnist_specified_cnn.yaml"  # every hyper-parameter of both paths comes from here
TARGET = 0.99  # test accuracy for time_to_target
PATHS = ("plain", "lightning")


def instantiate(spec: dict, *args, **extra):
    """``{"class_path": "pkg.mod.Name", "init_args": {...}}`` -> ``Name(*args, **init_args, **extra)``."""
    module, name = spec["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(*args, **(spec.get("init_args") or {}), **extra)


def recipe() -> dict:
    return load(RECIPE)


def datamodule(config: dict):
    dm = instantiate(config["data"])
    dm.prepare_data()
    dm.setup()
    return dm


@torch.no_grad()
def test_accuracy(forward, module: nn.Module, dm) -> float:
    """Accuracy on the whole test set, batches of the recipe's eval size; the module left in the mode it was in."""
    was_training = module.training
    module.eval()
    images, labels = dm.test_set.images, dm.test_set.labels
    step = dm.hparams.eval_batch_size
    correct = 0
    for i in range(0, len(labels), step):
        correct += int((forward(dm.normalize(images[i:i + step])).argmax(dim=1) == labels[i:i + step]).sum())
    module.train(was_training)
    return correct / len(labels)


def first_reaching(accuracies: list[float], clock: list[float]) -> float | None:
    return next((t for a, t in zip(accuracies, clock) if a >= TARGET), None)


def plain(config: dict, dm, seed: int, epochs: int, limit: int | None) -> dict:
    model_cfg = config["model"]
    L.seed_everything(seed, verbose=False)  # as LightningCLI does before it builds the model: the same initial weights
    net = instantiate(model_cfg["net"])
    channels_last = model_cfg.get("channels_last", False)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = instantiate(model_cfg["optimizer"], net.parameters())
    loader = dm.train_dataloader()  # EpochShuffle seeded from torch.initial_seed(), the run seed, as under Lightning
    per_epoch = len(loader) if limit is None else min(limit, len(loader))
    total = epochs * per_epoch
    schedule = None
    if model_cfg.get("schedule", "warmup_cosine") == "warmup_cosine":
        fraction = model_cfg.get("warmup_fraction", 0.1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, fraction))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=model_cfg.get("label_smoothing", 0.0))

    def forward(x):
        return net(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

    accuracies, clock, paused = [], [], 0.0
    net.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        torch.manual_seed(epoch_seed(seed, epoch))  # SeedEachEpoch
        _set_sampler_epoch(loader, epoch)  # what Lightning's fit loop calls before every epoch
        for i, (x, y) in enumerate(loader):
            if i == per_epoch:
                break
            loss = loss_fn(forward(dm.normalize(x)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        clock.append(time.perf_counter() - start - paused)
        t = time.perf_counter()
        accuracies.append(test_accuracy(forward, net, dm))
        paused += time.perf_counter() - t
    return {"test_acc": accuracies, "clock_s": clock, "train_s": clock[-1], "excluded_s": paused}


class EvalClock(L.Callback):
    """The training clock from ``on_train_start``, paused during validation and during the test-set evaluation this
    callback runs at the end of every training epoch."""

    def __init__(self) -> None:
        self.accuracies, self.clock, self.paused, self.threads = [], [], 0.0, None

    def now(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def on_train_start(self, trainer, pl_module) -> None:
        self.start, self.paused, self.threads = time.perf_counter(), 0.0, torch.get_num_threads()

    def on_validation_start(self, trainer, pl_module) -> None:
        self._pause = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # the sanity check runs before on_train_start
            self.paused += time.perf_counter() - self._pause

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.clock.append(self.now())
        t = time.perf_counter()
        self.accuracies.append(test_accuracy(pl_module, pl_module, trainer.datamodule))
        self.paused += time.perf_counter() - t

    def on_train_end(self, trainer, pl_module) -> None:
        self.total = self.now()


def lightning(config: dict, dm, seed: int, epochs: int, limit: int | None) -> dict:
    from lightning_impl.train import classifier_cli

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--seed_everything", str(seed), "--trainer.max_epochs", str(epochs),
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                "--trainer.logger.init_args.save_dir", tmp, "--trainer.default_root_dir", tmp]
        if limit is not None:
            args += ["--trainer.limit_train_batches", str(limit)]
        cli = classifier_cli(args)
        clock = EvalClock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {"test_acc": clock.accuracies, "clock_s": clock.clock, "train_s": clock.total, "excluded_s": clock.paused,
            "threads_seen": clock.threads}


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(p, "seeds", "seed", seeds=3, seed=1)  # the vocabulary's: a count of seeds, numbered from --seed
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    p.add_argument("--threads", type=flags.positive_int, default=2)
    p.add_argument("--epochs", type=flags.positive_int, default=None, help="default: the recipe's trainer.max_epochs")
    p.add_argument("--limit-train-batches", type=flags.positive_int, default=None, help="batches per epoch (smoke runs)")
    p.add_argument("--json", metavar="FILE", help="also write every run's figures here")
    args = p.parse_args(argv)
    args.seeds = list(range(args.seed, args.seed + args.seeds))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_float32_matmul_precision("high")  # as lightning_impl.cli.run_cli
    config = recipe()
    epochs = args.epochs or config["trainer"]["max_epochs"]
    dm = datamodule(config)
    model_cfg = config["model"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads; {RECIPE}: {model_cfg['net']['class_path'].rsplit('.', 1)[1]}, batch "
          f"{dm.hparams.batch_size}, {model_cfg['optimizer']['class_path'].rsplit('.', 1)[1]} "
          f"{model_cfg['optimizer'].get('init_args', {})}, {model_cfg.get('schedule')} "
          f"(warm-up {model_cfg.get('warmup_fraction')}), {epochs} epochs"
          + (f" x {args.limit_train_batches} batches" if args.limit_train_batches else "")
          + f", channels_last {model_cfg.get('channels_last')}; target {TARGET:.1%}")
    runs = []
    print("| seed | path | time_to_99 s | train s | test accuracy per epoch (%) | clock per epoch (s) |")
    print("|---:|---|---:|---:|---|---|")
    for seed in args.seeds:
        for path in args.paths:
            torch.set_num_threads(args.threads)
            result = (plain if path == "plain" else lightning)(config, dm, seed, epochs, args.limit_train_batches)
            result.update(path=path, seed=seed, threads=args.threads, epochs=epochs,
                          time_to_99=first_reaching(result["test_acc"], result["clock_s"]))
            runs.append(result)
            print(f"| {seed} | {path} | {fmt(result['time_to_99'])} | {result['train_s']:.1f} | "
                  + ", ".join(f"{100 * a:.2f}" for a in result["test_acc"]) + " | "
                  + ", ".join(f"{t:.1f}" for t in result["clock_s"]) + " |", flush=True)
    summary = {}
    for path in args.paths:
        mine = [r for r in runs if r["path"] == path]
        reached = [r["time_to_99"] for r in mine if r["time_to_99"] is not None]
        finals = [r["test_acc"][-1] for r in mine]
        summary[path] = {
            "reached": f"{len(reached)}/{len(mine)}",
            "median_time_to_99": statistics.median(reached) if reached else None,
            "median_train_s": statistics.median(r["train_s"] for r in mine),
            "mean_final_acc": statistics.mean(finals),
            "std_final_acc": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        }
    print("\n| path | reached 99 % | median time_to_99 s | median train s | final test accuracy (mean ± std) |")
    print("|---|---:|---:|---:|---|")
    for path, s in summary.items():
        print(f"| {path} | {s['reached']} | {fmt(s['median_time_to_99'])} | {s['median_train_s']:.1f} | "
              f"{100 * s['mean_final_acc']:.2f} ± {100 * s['std_final_acc']:.2f} % |")
    if {"plain", "lightning"} <= set(args.paths):
        base = summary["plain"]
        summary["lightning_over_plain_train_s"] = summary["lightning"]["median_train_s"] / base["median_train_s"]
        print(f"\nlightning / plain, median training seconds: {summary['lightning_over_plain_train_s']:.2f}")
        for seed in args.seeds:
            a, b = ([r["test_acc"] for r in runs if r["seed"] == seed and r["path"] == q][0] for q in ("plain", "lightning"))
            diff = max(abs(x - y) for x, y in zip(a, b))
            summary.setdefault("max_acc_difference_per_seed", {})[seed] = diff
            print(f"seed {seed}: largest per-epoch test-accuracy difference plain vs lightning {100 * diff:.2f} pp"
                  + (" (same)" if diff == 0 else ""))
    if args.json:
        meta = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                "torch": torch.__version__, "recipe": RECIPE, "target": TARGET, "epochs": epochs,
                "limit_train_batches": args.limit_train_batches, "threads": args.threads, "seeds": args.seeds}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "runs": runs, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
