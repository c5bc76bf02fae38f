"""The shared baseline: HOG features -> scaling -> RBF SVM, the floor every CNN must beat.

    python -m parity.baseline --dataset mnist                   # chosen parameters, fit on all 60,000, test
    python -m parity.baseline --dataset fashion_mnist
    python -m parity.baseline --dataset mnist --limit-train 5000 # quick run on a stratified subset
    python -m parity.baseline --dataset mnist --search          # re-run the validation search first

HOG parameters, the scaling, C and gamma are chosen on the DataModule's validation split (stratified, seeded), never on
the test set; the search fits on a subset of the training split to stay affordable on a CPU. With the
parameters fixed, the final model is fitted on training + validation (all 60,000 images; ``--fit-on train``
keeps the validation split out and also reports its accuracy) and evaluated once on the 10,000 test images.
Each run writes runs/baseline_<dataset>/version_<n>/{metrics.json, confusion_matrix.png} (and
search_results.csv with ``--search``); the folder's path is the last line printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import GridSearchCV, PredefinedSplit, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from sklearn.svm import SVC

from lightning_impl.data.datamodules import DATAMODULES
from core import flags, plots
from core.paired import wrong_positions
from core.runs import data_errors, new_run_dir, write_json
from parity.hog import HOGTransformer

DATASETS = ("mnist", "fashion_mnist")

# The chosen parameters, in one visible place. "scale" names the step between HOG and the SVM (see SCALERS).
# gamma is given as a factor of 1 / feature length, i.e. of sklearn's gamma="scale" on the scaled features
# (both scalers give them about unit variance), so it stays meaningful when the HOG length changes.
# Chosen by the validation search (see SEARCH_GRID) run with the command in "chosen_by"; the search fits
# on a stratified subset of the training split (chosen_by says how large) and scores on the whole
# validation split; "val_acc" is that search's best validation accuracy.
CHOSEN = {
    "mnist": {
        "hog": {"orientations": 9, "pixels_per_cell": (4, 7), "cells_per_block": 2, "block_norm": "L1-sqrt",
                "deskew": True},
        "scale": "global",
        "C": 10.0,
        "gamma_factor": 1.0,
        "chosen_by": "python -m parity.baseline --dataset mnist --search --jobs 1 --quiet  "
                     "(search fitted on 10000 training images)",
        "val_acc": 0.9905,
    },
    "fashion_mnist": {
        "hog": {"orientations": 9, "pixels_per_cell": (4, 7), "cells_per_block": 2, "block_norm": "L1-sqrt",
                "deskew": False},
        "scale": "global",
        "C": 10.0,
        "gamma_factor": 2.0,  # the search's edge (largest gamma tried); see docs/baseline.md
        "chosen_by": "python -m parity.baseline --dataset fashion_mnist --search --jobs 1 --quiet  "
                     "(search fitted on 10000 training images)",
        "val_acc": 0.8922,
    },
}

# What --search tries: a list of sub-grids, each crossing its HOG settings with its scalers, Cs and gamma
# factors. The first sub-grid of each dataset is the previous choice (per-feature standardisation), kept
# as the reference the others must beat.
SEARCH_GRID = {
    "mnist": [
        {"hog": [{"pixels_per_cell": (4, 7), "deskew": True}], "scale": ["standard"], "C": [30.0],
         "gamma_factor": [0.05]},
        {"hog": [{"pixels_per_cell": (4, 7), "deskew": True, "block_norm": "L2-Hys"},
                 {"pixels_per_cell": (4, 7), "deskew": True, "block_norm": "L1-sqrt"}],
         "scale": ["global"], "C": [10.0, 30.0], "gamma_factor": [0.5, 1.0]},
    ],
    "fashion_mnist": [
        {"hog": [{"pixels_per_cell": (4, 7), "deskew": False}], "scale": ["standard"], "C": [10.0],
         "gamma_factor": [0.3]},
        {"hog": [{"pixels_per_cell": (4, 7), "deskew": False, "block_norm": "L2-Hys"}], "scale": ["global"],
         "C": [10.0], "gamma_factor": [1.0]},
        {"hog": [{"pixels_per_cell": (4, 7), "deskew": False, "block_norm": "L1-sqrt"}], "scale": ["global"],
         "C": [10.0], "gamma_factor": [1.0, 2.0]},
    ],
}

HOG_DEFAULTS = {"orientations": 9, "pixels_per_cell": (4,), "cells_per_block": 2, "block_norm": "L2-Hys",
                "deskew": False}
SVC_CACHE_MB = 1000  # libsvm's kernel cache: speed only, results do not depend on it
SUBSET_SEED = 0


class GlobalScaler(TransformerMixin, BaseEstimator):
    """Divide every feature by one number, the standard deviation of all training values together.

    Unlike StandardScaler it keeps the features' relative weights: HOG bins that are nearly constant
    over the data set (image borders, rare orientations) stay small instead of being blown up to unit
    variance, where their noise dominates the RBF kernel's distances. Afterwards the values have unit
    variance overall, so gamma = factor / n_features is `factor` times sklearn's gamma="scale" on the
    unscaled features. No centring: the RBF kernel depends only on differences.
    """

    def fit(self, X, y=None) -> "GlobalScaler":
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        std = float(X.std())
        self.scale_ = std if std > 0 else 1.0  # constant features: nothing to scale
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X / X.dtype.type(self.scale_)


# The step between HOG and the SVM, by the name CHOSEN and SEARCH_GRID use.
SCALERS = {"standard": StandardScaler, "global": GlobalScaler}


def log(message: str) -> None:
    print(f"[baseline {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load(dataset: str, data_dir: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The DataModule's train / val / test splits as uint8 (N, H, W) images and int64 labels."""
    dm = DATAMODULES[dataset](data_dir=data_dir, download=False)
    dm.prepare_data()
    dm.setup()
    sets = {"train": dm.train_set, "val": dm.val_set, "test": dm.test_set}
    return {name: (s.images[:, 0].numpy(), s.labels.numpy()) for name, s in sets.items()}


def subset(x: np.ndarray, y: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded subset of `size` samples (all of them when size is None or too large)."""
    if size is None or size >= len(y):
        return x, y
    idx, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=SUBSET_SEED)
    idx = np.sort(idx)
    return x[idx], y[idx]


def feature_length(hog_params: dict, image_shape: tuple[int, int]) -> int:
    return HOGTransformer(**hog_params).fit(np.zeros((1, *image_shape), np.uint8)).n_features_out_


def make_scaler(name: str) -> TransformerMixin:
    if name not in SCALERS:
        raise ValueError(f"unknown scale {name!r}; choose one of {sorted(SCALERS)}")
    return SCALERS[name]()


def build_pipeline(hog_params: dict, C: float, gamma: float, scale: str = "global", n_jobs: int | None = None,
                   svc_verbose: bool = False, memory: str | None = None) -> Pipeline:
    return Pipeline(
        [
            ("hog", HOGTransformer(**hog_params, n_jobs=n_jobs)),
            ("scale", make_scaler(scale)),
            ("svc", SVC(kernel="rbf", C=C, gamma=gamma, cache_size=SVC_CACHE_MB, verbose=svc_verbose)),
        ],
        memory=memory,
    )


def search(dataset: str, splits: dict, train_size: int, n_jobs: int | None, run_dir: Path, command: str) -> dict:
    """Grid search over SEARCH_GRID: fit on a training subset, score on the whole validation split."""
    x_tr, y_tr = subset(*splits["train"], train_size)
    x_val, y_val = splits["val"]
    x = np.concatenate([x_tr, x_val])
    y = np.concatenate([y_tr, y_val])
    folds = PredefinedSplit(np.r_[np.full(len(y_tr), -1), np.zeros(len(y_val), int)])  # one split: train -> val
    param_grid = []
    for grid_spec in SEARCH_GRID[dataset]:
        for hog_params in grid_spec["hog"]:
            full = {**HOG_DEFAULTS, **hog_params}
            d = feature_length(full, x.shape[1:])
            param_grid.append({
                **{f"hog__{k}": [v] for k, v in full.items()},
                "scale": [make_scaler(name) for name in grid_spec["scale"]],
                "svc__C": grid_spec["C"],
                "svc__gamma": [f / d for f in grid_spec["gamma_factor"]],
            })
    n_candidates = sum(len(g["scale"]) * len(g["svc__C"]) * len(g["svc__gamma"]) for g in param_grid)
    log(f"search: {n_candidates} candidates, fit on {len(y_tr)} training images, scored on {len(y_val)} validation images")
    with tempfile.TemporaryDirectory() as cache:
        # The pipeline's memory caches the HOG features of the training subset, so only the SVM is
        # re-fitted when only C or gamma changes; HOG runs single-threaded inside parallel candidates.
        gs = GridSearchCV(
            build_pipeline(HOG_DEFAULTS, 1.0, "scale", n_jobs=1, memory=cache), param_grid,
            cv=folds, refit=False, n_jobs=n_jobs, verbose=3,
        )
        gs.fit(x, y)
    results = _results_table(gs.cv_results_, x.shape[1:])
    _write_csv(results, run_dir / "search_results.csv")
    for row in sorted(results, key=lambda r: -r["val_acc"])[:5]:
        log(f"  val_acc {row['val_acc']:.4f}  {row['hog']}  scale={row['scale']}  C={row['C']:g}  "
            f"gamma_factor={row['gamma_factor']:g}")
    best = max(results, key=lambda r: r["val_acc"])  # ties: the first in SEARCH_GRID's order
    return {"hog": best["hog"], "scale": best["scale"], "C": best["C"], "gamma_factor": best["gamma_factor"],
            "chosen_by": f"{command}  (search fitted on {len(y_tr)} training images)", "val_acc": best["val_acc"]}


def _results_table(cv_results: dict, image_shape) -> list[dict]:
    rows = []
    for params, score, fit_s, score_s in zip(cv_results["params"], cv_results["mean_test_score"],
                                             cv_results["mean_fit_time"], cv_results["mean_score_time"]):
        hog_params = {k[len("hog__"):]: v for k, v in params.items() if k.startswith("hog__")}
        d = feature_length(hog_params, image_shape)
        scale = next(name for name, cls in SCALERS.items() if type(params["scale"]) is cls)
        rows.append({"hog": hog_params, "scale": scale, "feature_length": d, "C": params["svc__C"],
                     "gamma_factor": round(params["svc__gamma"] * d, 6), "val_acc": float(score),
                     "fit_s": round(float(fit_s), 2), "score_s": round(float(score_s), 2)})
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    flat = [{**{f"hog_{k}": "x".join(map(str, v)) if isinstance(v, tuple) else v for k, v in r["hog"].items()},
             **{k: v for k, v in r.items() if k != "hog"}} for r in rows]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)


def run(dataset: str, params: dict, splits: dict, fit_on: str, train_size: int | None,
        n_jobs: int | None, svc_verbose: bool) -> dict:
    """Fit the pipeline with `params` on the fit set, evaluate on test; returns the metrics."""
    x_fit, y_fit = splits["train"]
    if fit_on == "train+val":
        x_fit, y_fit = np.concatenate([x_fit, splits["val"][0]]), np.concatenate([y_fit, splits["val"][1]])
    x_fit, y_fit = subset(x_fit, y_fit, train_size)
    x_test, y_test = splits["test"]
    hog_params = {**HOG_DEFAULTS, **params["hog"]}
    d = feature_length(hog_params, x_fit.shape[1:])
    gamma = params["gamma_factor"] / d
    pipe = build_pipeline(hog_params, params["C"], gamma, params["scale"], n_jobs=n_jobs, svc_verbose=svc_verbose)
    features, svc = pipe[:-1], pipe[-1]

    log(f"HOG features of {len(y_fit)} {fit_on} images ({d} per image) ...")
    t0 = time.perf_counter()
    f_fit = features.fit_transform(x_fit)
    t1 = time.perf_counter()
    log(f"  {t1 - t0:.1f} s; fitting SVC(C={params['C']:g}, gamma={gamma:.3g}) ...")
    svc.fit(f_fit, y_fit)
    t2 = time.perf_counter()
    log(f"  {t2 - t1:.1f} s, {int(svc.n_support_.sum())} support vectors; predicting {len(y_test)} test images ...")
    f_test = features.transform(x_test)
    t3 = time.perf_counter()
    pred = svc.predict(f_test)
    t4 = time.perf_counter()
    log(f"  HOG {t3 - t2:.1f} s, SVC {t4 - t3:.1f} s")

    classes = DATAMODULES[dataset]().spec.classes
    cm = confusion_matrix(y_test, pred, labels=range(len(classes)))
    metrics = {
        "dataset": dataset,
        "model": f"HOG -> {type(pipe.named_steps['scale']).__name__} -> SVC(rbf)",
        "test_acc": float(accuracy_score(y_test, pred)),
        "n_test": int(len(y_test)),
        "fit_on": fit_on,
        "n_fit": int(len(y_fit)),
        "feature_length": int(d),
        "hog": {k: list(v) if isinstance(v, tuple) else v for k, v in hog_params.items()},
        "scale": params["scale"],
        "C": float(params["C"]),
        "gamma": float(gamma),
        "gamma_factor": float(params["gamma_factor"]),
        "chosen_by": params["chosen_by"],
        "search_val_acc": params["val_acc"],
        "n_support_vectors": int(svc.n_support_.sum()),
        "hog_fit_s": round(t1 - t0, 2),
        "svc_fit_s": round(t2 - t1, 2),
        "fit_time_s": round(t2 - t0, 2),
        "hog_predict_s": round(t3 - t2, 2),
        "svc_predict_s": round(t4 - t3, 2),
        "predict_time_s": round(t4 - t2, 2),
        "n_jobs": n_jobs,
        "cpu_count": os.cpu_count(),
        "classes": list(classes),
        "per_class_acc": [float(v) for v in cm.diagonal() / np.maximum(cm.sum(axis=1), 1)],
        "confusion_matrix": cm.tolist(),  # rows: true class, columns: predicted class
        # the test images it gets wrong, by position in the test set's order: what the CNN runs record too, so
        # the report compares the two on the same images (McNemar, core.paired)
        "test_errors": wrong_positions(pred.tolist(), y_test.tolist()),
    }
    if fit_on == "train":
        x_val, y_val = splits["val"]
        metrics["val_acc"] = float(accuracy_score(y_val, pipe.predict(x_val)))
    return metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = flags.Parser(prog="python -m parity.baseline", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--fit-on", choices=("train+val", "train"), default="train+val",
                   help="the final fit's data once parameters are fixed ('train' also reports val_acc)")
    p.add_argument("--search", action="store_true", help="re-run the validation search instead of using CHOSEN")
    p.add_argument("--search-train-size", type=flags.positive_int, default=10000,
                   help="training images the search fits on (it always scores on the whole validation split)")
    flags.add(p, "limit_train", "jobs", "data_dir", "runs_dir", "quiet", jobs=os.cpu_count() or 1)
    args = p.parse_args(argv)
    for name in ("limit_train", "search_train_size"):
        value = getattr(args, name)
        if value is not None and value < 100:
            p.error(f"--{name.replace('_', '-')} must be at least 100 (10 classes need samples each), got {value}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with data_errors():
        splits = load(args.dataset, args.data_dir)
    command = " ".join(["python -m parity.baseline", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    run_dir = new_run_dir(args.runs_dir, f"baseline_{args.dataset}")
    params = CHOSEN[args.dataset]
    if args.search:
        params = search(args.dataset, splits, args.search_train_size, args.jobs, run_dir, command)
        log(f"chosen: {params}")
    metrics = run(args.dataset, params, splits, args.fit_on, args.limit_train, args.jobs, not args.quiet)
    metrics["command"] = command
    write_json(run_dir / "metrics.json", metrics)
    plots.confusion_matrix(np.array(metrics["confusion_matrix"]), tuple(metrics["classes"]),
                           run_dir / "confusion_matrix.png", f"HOG+SVM on {args.dataset}")
    summary = ("test_acc", "feature_length", "n_fit", "fit_time_s", "predict_time_s", "n_support_vectors")
    print(json.dumps({k: metrics[k] for k in summary}))
    print(run_dir.resolve())
    return metrics


if __name__ == "__main__":
    main()
