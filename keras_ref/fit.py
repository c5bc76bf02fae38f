"""The one Keras training path, shared by the classifier and the denoiser trainers:
fit -> reload the best epoch on validation -> test it once -> metrics.json and figures/ in a new run folder.

It mirrors lightning_impl.train: the same run-folder layout (runs/<name>/version_<n>/ with metrics.csv,
checkpoints/, metrics.json and figures/, plus recipe.yaml: the recipe as translated), the same model selection (the
best validation epoch is tested), and ``parameters`` counted as torch counts them (trainable weights;
BatchNorm statistics, which Keras counts as non-trainable weights, are reported apart).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import yaml

from lightning_impl import plots
from lightning_impl.runs import atomic_path, new_run_dir, write_json, write_text


class EpochTimer(keras.callbacks.Callback):
    """Wall time and training images/s of every epoch (validation included), like lightning_impl's EpochTimer."""

    def __init__(self, n_train: int) -> None:
        super().__init__()
        self.n_train, self.epoch_times, self.images_per_sec = n_train, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.epoch_times.append(elapsed)
        self.images_per_sec.append(self.n_train / elapsed)


class BestWeights(keras.callbacks.Callback):
    """Keras' ModelCheckpoint(save_best_only=True, save_weights_only=True, mode="max"), but written beside the file
    and renamed over it (lightning_impl.runs.atomic_path): a kill, a crash or a full disk during a save leaves the
    previous best weights whole, never a half-written .h5."""

    def __init__(self, path: Path, monitor: str) -> None:
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, -np.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and float(value) > self.best:
            self.best = float(value)
            save_atomically(self.model.save_weights, self.path)


def save_atomically(save: Callable[[str], None], path: Path) -> None:
    """``save(filename)`` (a Keras save_weights or save), complete or not at all."""
    suffix = ".weights.h5" if str(path).endswith(".weights.h5") else Path(path).suffix
    with atomic_path(path, suffix=suffix) as tmp:
        save(str(tmp))


def timed(test: Callable[[], dict]) -> dict:
    """The test metrics and ``test_s``, the prediction time of the whole test set (as lightning_impl reports it)."""
    start = time.perf_counter()
    return {**test(), "test_s": time.perf_counter() - start}


def weight_count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def fit_and_test(
    model: keras.Model,
    net: keras.Model,
    train,
    *,
    recipe: dict,
    monitor: str,
    train_images: int,
    test: Callable[[], dict],
    describe: dict,
    runs_dir: str | Path | None = None,
    verbose: int = 2,
    callbacks: list[keras.callbacks.Callback] = (),
    after_best: Callable[[Path], None] | None = None,
    figures: Callable[[Path, str], None] | None = None,
    **fit_kwargs,
) -> dict:
    """Train ``model`` (compiled; ``net`` is the bare twin inside it) on ``train`` for the recipe's epochs,
    keeping the epoch with the highest ``monitor``; then ``test()`` scores that epoch. ``callbacks`` run before
    checkpointing and logging (they may add to the epoch's logs, as a validation scorer does); ``after_best(run)``
    runs once the selected epoch's weights are loaded (to save the model for prediction, say). The run folder gets
    figures/learning_curves.png, and whatever ``figures(folder, title)`` draws of the tested model."""
    run = new_run_dir(runs_dir or recipe["runs_dir"], recipe["name"])
    best = run / "checkpoints" / "best.weights.h5"
    best.parent.mkdir()
    write_text(run / "recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))  # what was trained, translated
    timer = EpochTimer(train_images)
    start = time.perf_counter()
    history = model.fit(
        train, epochs=recipe["epochs"], verbose=verbose,
        callbacks=[
            *callbacks,
            BestWeights(best, monitor),
            keras.callbacks.CSVLogger(run / "metrics.csv"),
            timer,
        ],
        **fit_kwargs,
    )
    train_s = time.perf_counter() - start
    model.load_weights(best)  # the epoch selected on validation, as lightning_impl.train tests it
    if after_best is not None:
        after_best(run)
    metrics = {
        "framework": "keras",
        **describe,
        "parameters": weight_count(net.trainable_weights),
        "non_trainable_weights": weight_count(net.non_trainable_weights),
        "seed": recipe["seed"],
        "epochs": len(history.history["loss"]),
        "finished": True,
        "best_checkpoint": str(best),
        f"best_{monitor}": max(history.history[monitor]),
        **timed(test),
        "train_s": train_s,
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
        "run_dir": str(run.resolve()),
    }
    write_json(run / "metrics.json", metrics)
    draw_figures(run, figures)
    return metrics


def draw_figures(run: Path, figures: Callable[[Path, str], None] | None) -> None:
    """figures/learning_curves.png from metrics.csv, then the trainer's own figures; a failure to draw warns,
    it never costs the finished run."""
    folder, title = run / "figures", f"{run.parent.name}/{run.name}"
    try:
        plots.learning_curves({"": plots.epoch_table(run / "metrics.csv")}, folder / "learning_curves.png", title)
        if figures is not None:
            figures(folder, title)
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"the figures could not be drawn ({type(err).__name__}: {err})", stacklevel=2)
