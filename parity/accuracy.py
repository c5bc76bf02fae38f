"""Check 5: train each pair in both frameworks with the same recipe over several seeds and compare scores.

Each run goes through the frameworks' own entry points, exactly as a user would start it: for a
classifier ``lightning_impl.train.main`` and ``keras_ref.train.main``, for a denoiser
``lightning_impl.train_denoiser.main`` and ``keras_ref.train_denoiser.main`` (FRAMEWORKS, by the pair's task),
given the pair's ``train_args``, a seed and optionally an epoch count. The check passes when
  * each framework's mean score lies in the pair's declared band,
  * the two means differ by less than the pair's margin,
  * (classification) both means beat the HOG+SVM baseline's test accuracy.

Budgets: the full recipe (default 3 seeds, the recipe's own epochs) against ``accuracy_band`` and
``accuracy_margin``; the quick budget (QUICK, by task: 1 seed, 1 epoch, for CI) against
``quick_accuracy_band`` and the budget's margin, because one short run says less.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lightning_impl import configs
from parity.checks import Row
from parity.registry import ModelPair

DEFAULT_SEEDS = 3


@dataclass(frozen=True)
class Quick:
    """The CI budget of check 5 for one task: what each run is cut to, and the margin that budget allows."""

    margin: float  # largest allowed difference of the two frameworks' scores, in the score's unit
    seeds: int = 1
    epochs: int = 1
    limits: dict[str, int] = field(default_factory=dict)  # e.g. {"train": 4096}: first n images of a split
    batch_size: int | None = None  # None: the recipe's


QUICK = {
    # One epoch of the recipe on all of MNIST; seed-to-seed spread is ~0.2-0.3 pp (docs/parity.md).
    "classification": Quick(margin=0.01),
    # 128 Adam steps of batch 32 on the first 4,096 training images, scored on the first 1,000 test images.
    # Batch 32, not the recipe's 128: a CPU's cost is per image, and the reference AE needs ~100 steps to
    # leave the plateau where it outputs a blur (64 steps: 13.3-15.2 dB, and 0.8 dB apart on average
    # between the frameworks, whose default initialisations differ). At 128 steps, seeds 1-3 measured
    # 17.01 / 16.28 / 16.39 dB (Lightning) and 16.49 / 16.82 / 16.82 dB (Keras): pooled per-run std 0.31 dB,
    # so two single runs differ by ~0.44 dB (std); 1 dB is ~2.3 of those (docs/denoise.md, "Both frameworks").
    "denoising": Quick(margin=1.0, limits={"train": 4096, "val": 500, "test": 1000}, batch_size=32),
}


@dataclass(frozen=True)
class Framework:
    """How to ask one framework's training entry point for a seed, an epoch count, a runs folder, quiet output,
    and (quick budgets) fewer images or another batch size."""

    entry: str  # module with main(argv) -> metrics dict
    seed: Callable[[int], list[str]]
    epochs: Callable[[int], list[str]]
    runs_dir: Callable[[str], list[str]]
    quiet: list[str]
    limit: Callable[[str, int], list[str]] | None = None  # (split, n) -> flags; None: cannot limit
    batch_size: Callable[[int], list[str]] | None = None


_LIGHTNING_COMMON = dict(
    seed=lambda s: ["--seed_everything", str(s)],
    epochs=lambda e: ["--trainer.max_epochs", str(e)],
    runs_dir=lambda d: ["--trainer.logger.init_args.save_dir", d],
    quiet=["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"],
)
_KERAS_COMMON = dict(
    seed=lambda s: ["--seed", str(s)],
    epochs=lambda e: ["--epochs", str(e)],
    runs_dir=lambda d: ["--runs-dir", d],
    quiet=["--quiet"],
)

# By task, then framework.
FRAMEWORKS = {
    "classification": {
        "lightning": Framework("lightning_impl.train", **_LIGHTNING_COMMON),
        "keras": Framework("keras_ref.train", **_KERAS_COMMON),
    },
    "denoising": {
        "lightning": Framework(
            "lightning_impl.train_denoiser", **_LIGHTNING_COMMON,
            limit=lambda split, n: [f"--data.{split}_limit", str(n)],
            batch_size=lambda b: ["--data.batch_size", str(b)],
        ),
        "keras": Framework(
            "keras_ref.train_denoiser", **_KERAS_COMMON,
            limit=lambda split, n: [f"--limit-{split}", str(n)],
            batch_size=lambda b: ["--batch-size", str(b)],
        ),
    },
}


# Pairs with a ``recipe`` (a LightningCLI YAML): both frameworks read the same file.
RECIPE_FRAMEWORKS = {
    "lightning": Framework("lightning_impl.train", **_LIGHTNING_COMMON),
    "keras": Framework("keras_ref.train", **_KERAS_COMMON),
}


def framework_of(pair: ModelPair, framework: str) -> tuple[Framework, list[str]]:
    """The entry point that trains ``pair`` in ``framework``, and the arguments that select its recipe."""
    if pair.recipe is None:
        return FRAMEWORKS[pair.task][framework], list(pair.train_args.get(framework, []))
    return RECIPE_FRAMEWORKS[framework], ["--config", str(configs.find(pair.recipe))] + list(pair.train_args.get(framework, []))


def baseline_from(spec: str) -> tuple[float, str | None, str]:
    """`--baseline` as (accuracy as a fraction, dataset or None, where it came from): a figure (0.9936 or 99.36)
    or the path of the metrics.json written by ``python -m parity.baseline`` (key "test_acc")."""
    path = Path(spec)
    if path.is_dir():
        path = path / "metrics.json"
    if path.is_file():
        metrics = json.loads(path.read_text())
        if "test_acc" not in metrics:
            raise ValueError(f"{path} has no 'test_acc'")
        return float(metrics["test_acc"]), metrics.get("dataset"), str(path)
    try:
        value = float(spec)
    except ValueError:
        raise ValueError(f"--baseline takes an accuracy or a metrics.json path; {spec!r} is neither") from None
    return (value / 100 if value > 1 else value), None, "--baseline"


def budget_args(fw: Framework, quick: Quick | None) -> list[str]:
    """The flags that cut a run to a quick budget's images and batch size."""
    if quick is None:
        return []
    if (quick.limits and fw.limit is None) or (quick.batch_size and fw.batch_size is None):
        raise ValueError(f"{fw.entry} cannot limit its images or batch size, which this quick budget needs")
    argv = [flag for split, n in quick.limits.items() for flag in fw.limit(split, n)]
    return argv + (fw.batch_size(quick.batch_size) if quick.batch_size else [])


def train_runs(
    pair: ModelPair, framework: str, seeds: list[int], epochs: int | None, runs_dir: str | None, verbose: bool,
    quick: Quick | None = None,
) -> list[dict]:
    import importlib

    fw, recipe_args = framework_of(pair, framework)
    main = importlib.import_module(fw.entry).main
    results = []
    for i, seed in enumerate(seeds, 1):
        argv = recipe_args + fw.seed(seed)
        argv += fw.epochs(epochs) if epochs else []
        argv += budget_args(fw, quick)
        argv += fw.runs_dir(runs_dir) if runs_dir else []
        argv += [] if verbose else fw.quiet
        print(f"[parity] {pair.name}: {framework} seed {seed} ({i}/{len(seeds)}): {fw.entry} {' '.join(argv)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():  # stdout: only the parity tables
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")  # we pass args on purpose
            metrics = main(argv)
        if not metrics or pair.score not in metrics:
            raise RuntimeError(f"{fw.entry} returned no {pair.score!r} for {pair.name}")
        metrics["wall_s"] = time.perf_counter() - start
        print(f"[parity] {pair.name}: {framework} seed {seed}: {pair.score} {_fmt(pair, metrics[pair.score])} "
              f"in {metrics['wall_s']:.0f} s", file=sys.stderr, flush=True)
        results.append(metrics)
    return results


def _scores(pair: ModelPair, framework: str, *args) -> list[float]:
    return [m[pair.score] for m in train_runs(pair, framework, *args)]


def _scores_worker(pair_name: str, framework: str, args: tuple, threads: int) -> list[float]:
    """A process of _scores_in_parallel: its share of the cores, the pair looked up again (spawned fresh)."""
    import torch

    from parity.registry import all_pairs

    torch.set_num_threads(threads)
    return _scores(all_pairs()[pair_name], framework, *args)


def _scores_in_parallel(pair: ModelPair, frameworks: list[str], *args) -> dict[str, list[float]]:
    """Each framework's seeds in its own process, the cores split between them (``--jobs 2``).

    On a small machine this halves the wall time of check 5: one framework's training does not use two
    cores fully (Keras' per-step overhead, small batches), so two single-threaded runs side by side do more.
    Each process starts fresh (spawn), so the frameworks cannot share global state.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 2) // len(frameworks))
    with ProcessPoolExecutor(len(frameworks), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {fw: pool.submit(_scores_worker, pair.name, fw, args, threads) for fw in frameworks}
        return {fw: f.result() for fw, f in futures.items()}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _fmt(pair: ModelPair, x: float) -> str:
    """A score in its unit: accuracy in %, PSNR in dB, anything else (SSIM) as a plain number."""
    if pair.task == "classification":
        return _pct(x)
    return f"{x:.2f} dB" if "psnr" in pair.score else f"{x:.4f}"


def _fmt_gap(pair: ModelPair, x: float) -> str:
    if pair.task == "classification":
        return f"{100 * x:.2f} pp"
    return _fmt(pair, x)


def check_accuracy(
    pair: ModelPair,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    quick: bool = False,
    baselines: list[tuple[float, str | None, str]] = (),
    runs_dir: str | None = None,
    verbose: bool = False,
    parallel: bool = False,
    first_seed: int = 0,
) -> list[Row]:
    band = pair.quick_accuracy_band if quick else pair.accuracy_band
    budget = "quick" if quick else "full"
    if band is None:
        return [Row(f"5 {pair.score} ({budget} budget)", "no band declared for this budget", "-", None)]
    quick_budget = QUICK[pair.task] if quick else None
    if quick_budget:
        seeds, epochs = quick_budget.seeds, quick_budget.epochs
    margin = quick_budget.margin if quick_budget else pair.accuracy_margin
    seed_list = list(range(first_seed, first_seed + seeds))
    frameworks = list(FRAMEWORKS[pair.task])
    if parallel:
        scores = _scores_in_parallel(pair, frameworks, seed_list, epochs, runs_dir, verbose, quick_budget)
    else:
        scores = {fw: _scores(pair, fw, seed_list, epochs, runs_dir, verbose, quick_budget) for fw in frameworks}
    means = {fw: statistics.fmean(s) for fw, s in scores.items()}
    recipe = f"{seeds} seed{'s' if seeds > 1 else ''}, " + (f"{epochs} epoch{'s' if epochs > 1 else ''}" if epochs else "recipe epochs")
    if quick_budget and quick_budget.limits:
        recipe += ", " + ", ".join(f"{n} {split}" for split, n in quick_budget.limits.items())
    if quick_budget and quick_budget.batch_size:
        recipe += f", batch {quick_budget.batch_size}"
    rows = []
    for fw, s in scores.items():
        std = f" ± {_fmt(pair, statistics.stdev(s))}" if len(s) > 1 else ""
        rows.append(Row(
            f"5 {fw}: mean {pair.score} ({recipe})",
            f"{_fmt(pair, means[fw])}{std} [{', '.join(_fmt(pair, v) for v in s)}]",
            f"in [{_fmt(pair, band[0])}, {_fmt(pair, band[1])}]",
            band[0] <= means[fw] <= band[1],
            means[fw],
        ))
    gap = abs(means["lightning"] - means["keras"])
    rows.append(Row("5 difference of the means, lightning vs keras", _fmt_gap(pair, gap), f"< {_fmt_gap(pair, margin)}", gap < margin, gap))
    if pair.task == "classification":
        rows.append(_baseline_row(pair, means, baselines, quick))
    return rows


def _baseline_row(pair: ModelPair, means: dict[str, float], baselines, quick: bool) -> Row:
    matching = [b for b in baselines if b[1] in (None, pair.dataset)]
    label = "5 both means beat HOG+SVM"
    if not matching:
        # Full budget: the comparison is part of the check, so a missing figure fails it.
        why = "no baseline figure (pass --baseline FIGURE or the metrics.json of python -m parity.baseline)"
        return Row(label, why, "> baseline", None if quick else False)
    value, _, source = matching[-1]
    worst = min(means.values())
    return Row(label, f"lowest mean {_pct(worst)} vs {_pct(value)} ({source})", "> baseline", worst > value, worst - value)
