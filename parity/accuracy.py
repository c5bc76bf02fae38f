"""Check 5: train each pair in both frameworks with the same recipe over several seeds and compare scores.

Each run goes through the frameworks' own entry points (``lightning_impl.train.main`` and
``keras_ref.train.main``), exactly as a user would start it, plus the pair's ``train_args``, a seed and
optionally an epoch count. The check passes when
  * each framework's mean score lies in the pair's declared band,
  * the two means differ by less than the pair's margin,
  * (classification) both means beat the HOG+SVM baseline's test accuracy.

Budgets: the full recipe (default 3 seeds, the recipe's own epochs) against ``accuracy_band`` and
``accuracy_margin``; the quick budget (1 seed, 1 epoch, for CI) against ``quick_accuracy_band`` and
QUICK_MARGIN, because one short run says less.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from parity.checks import Row
from parity.registry import ModelPair

DEFAULT_SEEDS = 3
QUICK = {"seeds": 1, "epochs": 1}
QUICK_MARGIN = 0.01  # one seed of one epoch per framework: seed-to-seed spread is ~0.2-0.3 pp (docs/parity.md)


@dataclass(frozen=True)
class Framework:
    """How to ask one framework's training entry point for a seed, an epoch count, a runs folder, quiet output."""

    entry: str  # module with main(argv) -> metrics dict
    seed: Callable[[int], list[str]]
    epochs: Callable[[int], list[str]]
    runs_dir: Callable[[str], list[str]]
    quiet: list[str]


FRAMEWORKS = {
    "lightning": Framework(
        "lightning_impl.train",
        seed=lambda s: ["--seed_everything", str(s)],
        epochs=lambda e: ["--trainer.max_epochs", str(e)],
        runs_dir=lambda d: ["--trainer.logger.init_args.save_dir", d],
        quiet=["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"],
    ),
    "keras": Framework(
        "keras_ref.train",
        seed=lambda s: ["--seed", str(s)],
        epochs=lambda e: ["--epochs", str(e)],
        runs_dir=lambda d: ["--runs-dir", d],
        quiet=["--verbose", "0"],
    ),
}


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


def train_runs(
    pair: ModelPair, framework: str, seeds: list[int], epochs: int | None, runs_dir: str | None, verbose: bool
) -> list[dict]:
    import importlib

    fw = FRAMEWORKS[framework]
    main = importlib.import_module(fw.entry).main
    results = []
    for i, seed in enumerate(seeds, 1):
        argv = list(pair.train_args.get(framework, [])) + fw.seed(seed)
        argv += fw.epochs(epochs) if epochs else []
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
        print(f"[parity] {pair.name}: {framework} seed {seed}: {pair.score} {metrics[pair.score]:.4f} "
              f"in {metrics['wall_s']:.0f} s", file=sys.stderr, flush=True)
        results.append(metrics)
    return results


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def check_accuracy(
    pair: ModelPair,
    seeds: int = DEFAULT_SEEDS,
    epochs: int | None = None,
    quick: bool = False,
    baselines: list[tuple[float, str | None, str]] = (),
    runs_dir: str | None = None,
    verbose: bool = False,
) -> list[Row]:
    band = pair.quick_accuracy_band if quick else pair.accuracy_band
    budget = "quick" if quick else "full"
    if band is None:
        return [Row(f"5 {pair.score} ({budget} budget)", "no band declared for this budget", "-", None)]
    if quick:
        seeds, epochs = QUICK["seeds"], QUICK["epochs"]
    margin = QUICK_MARGIN if quick else pair.accuracy_margin
    seed_list = list(range(1, seeds + 1))
    scores = {fw: [m[pair.score] for m in train_runs(pair, fw, seed_list, epochs, runs_dir, verbose)] for fw in FRAMEWORKS}
    means = {fw: statistics.fmean(s) for fw, s in scores.items()}
    recipe = f"{seeds} seed{'s' if seeds > 1 else ''}, " + (f"{epochs} epoch{'s' if epochs > 1 else ''}" if epochs else "recipe epochs")
    rows = []
    for fw, s in scores.items():
        std = f" ± {_pct(statistics.stdev(s))}" if len(s) > 1 else ""
        rows.append(Row(
            f"5 {fw}: mean {pair.score} ({recipe})",
            f"{_pct(means[fw])}{std} [{', '.join(_pct(v) for v in s)}]",
            f"in [{_pct(band[0])}, {_pct(band[1])}]",
            band[0] <= means[fw] <= band[1],
            means[fw],
        ))
    gap = abs(means["lightning"] - means["keras"])
    rows.append(Row("5 difference of the means, lightning vs keras", f"{100 * gap:.2f} pp", f"< {100 * margin:.2f} pp", gap < margin, gap))
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
