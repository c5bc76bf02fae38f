"""Check 5: train each pair in both frameworks with the same recipe over several seeds and compare scores.

Each run goes through the frameworks' own entry points, exactly as a user would start it: for a
classifier ``lightning_impl.train.main`` and ``keras_ref.train.main``, for a denoiser
``lightning_impl.train_denoiser.main`` and ``keras_ref.train_denoiser.main`` (FRAMEWORKS, by the pair's task),
given the pair's ``train_args``, a seed and optionally an epoch count. The check passes when
  * each framework's mean score lies in the pair's declared band,
  * the two means differ by less than the pair's margin,
  * over two seeds or more, a Welch t-test of the seeds' scores finds no difference (p > P_SAME),
  * (classification) a paired test on the same test images finds none either: both frameworks of one seed see
    the same images in the same order (core.order), so each test image's two answers are a pair;
    McNemar's exact test of the discordant images, pooled over the seeds, p > P_SAME,
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

from core import configs
from parity.checks import Row
from parity.registry import ModelPair

DEFAULT_SEEDS = 5
P_SAME = 0.05  # a test's p-value below this is a difference the check reports as a failure


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
        if pair.task == "classification" and metrics.get("run_dir"):
            metrics["test_correct"] = test_correct(framework, metrics["run_dir"])
        print(f"[parity] {pair.name}: {framework} seed {seed}: {pair.score} {_fmt(pair, metrics[pair.score])} "
              f"in {metrics['wall_s']:.0f} s", file=sys.stderr, flush=True)
        results.append(metrics)
    return results


def test_correct(framework: str, run_dir: str | Path):
    """Whether each test image is classified right by a run's selected model (bool array, test-set order)."""
    import numpy as np
    import torch

    from core.datasets import ensure_available, load_split

    if framework == "lightning":
        from lightning_impl.card import load_model, normalise

        model, card, _ = load_model(run_dir)
        images, labels = load_split(card["dataset"], ensure_available(card["dataset"]), train=False)
        with torch.inference_mode():
            probs = torch.cat([model.predict_step(normalise(card, images[i : i + 1000]), 0)
                               for i in range(0, len(images), 1000)]).numpy()
    else:
        from keras_ref.predict import load_run, probabilities

        model, card = load_run(run_dir)
        images, labels = load_split(card["dataset"], ensure_available(card["dataset"]), train=False)
        probs = probabilities(model, card, images.numpy())
    return np.asarray(probs).argmax(axis=1) == labels.numpy()


def _scores(pair: ModelPair, framework: str, *args) -> tuple[list[float], list]:
    runs = train_runs(pair, framework, *args)
    return [m[pair.score] for m in runs], [m.get("test_correct") for m in runs]


def _scores_worker(pair_name: str, recipe: str | None, framework: str, args: tuple, threads: int) -> tuple[list[float], list]:
    """A process of _scores_in_parallel: its share of the cores, the pair looked up again (spawned fresh), with the
    recipe it was given (``--recipe`` replaces the pair's own)."""
    import dataclasses

    import torch

    from parity.registry import all_pairs

    torch.set_num_threads(threads)
    return _scores(dataclasses.replace(all_pairs()[pair_name], recipe=recipe), framework, *args)


def _scores_in_parallel(pair: ModelPair, frameworks: list[str], *args) -> dict[str, tuple[list[float], list]]:
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
        futures = {fw: pool.submit(_scores_worker, pair.name, pair.recipe, fw, args, threads) for fw in frameworks}
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
        results = _scores_in_parallel(pair, frameworks, seed_list, epochs, runs_dir, verbose, quick_budget)
    else:
        results = {fw: _scores(pair, fw, seed_list, epochs, runs_dir, verbose, quick_budget) for fw in frameworks}
    scores = {fw: r[0] for fw, r in results.items()}
    correct = {fw: r[1] for fw, r in results.items()}
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
    rows.append(welch_row(pair, scores["lightning"], scores["keras"]))
    if pair.task == "classification":
        rows.append(mcnemar_row(correct["lightning"], correct["keras"]))
        rows.append(_baseline_row(pair, means, baselines, quick))
    return rows


def welch_row(pair: ModelPair, lightning: list[float], keras: list[float]) -> Row:
    """Welch's t-test of the two frameworks' scores over seeds (unequal variances)."""
    from scipy import stats

    label = f"5 Welch t-test over seeds ({len(lightning)} vs {len(keras)})"
    if min(len(lightning), len(keras)) < 2 or statistics.stdev(lightning) + statistics.stdev(keras) == 0:
        return Row(label, "not run: needs two seeds or more per framework, and some spread", f"p > {P_SAME:g}", None)
    t, p = stats.ttest_ind(lightning, keras, equal_var=False)
    delta = statistics.fmean(keras) - statistics.fmean(lightning)
    return Row(label, f"p {p:.2g} (t {t:.2f}; Keras − Lightning {_fmt_gap(pair, delta)})", f"p > {P_SAME:g}",
               bool(p > P_SAME), float(p))


def mcnemar_row(lightning: list, keras: list) -> Row:
    """McNemar's exact test on the test images, the seeds' discordant images pooled: each pair of runs of one seed
    saw the same images in the same order, so each test image's two answers are a pair."""
    import numpy as np
    from scipy import stats

    pairs = [(a, b) for a, b in zip(lightning, keras) if a is not None and b is not None]
    label = f"5 paired test on the test images (McNemar, {len(pairs)} seed pair{'s' if len(pairs) != 1 else ''})"
    if not pairs:
        return Row(label, "not run: no per-image answers", f"p > {P_SAME:g}", None)
    only_lightning = int(sum(np.sum(a & ~b) for a, b in pairs))
    only_keras = int(sum(np.sum(~a & b) for a, b in pairs))
    n = only_lightning + only_keras
    p = 1.0 if n == 0 else float(stats.binomtest(only_lightning, n, 0.5).pvalue)
    return Row(label, f"p {p:.2g} (right only in Lightning {only_lightning}, only in Keras {only_keras}, of "
               f"{sum(len(a) for a, _ in pairs)} image-runs)", f"p > {P_SAME:g}", p > P_SAME, p)


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
