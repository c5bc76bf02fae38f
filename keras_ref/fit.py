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

from core import plots
from keras_ref.epochs import SeedEachEpoch
from core.runs import atomic_path, new_run_dir, read_record, write_json, write_text


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
    and renamed over it (core.runs.atomic_path): a kill, a crash or a full disk during a save leaves the
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


class LastEpoch(keras.callbacks.Callback):
    """After every epoch (the last callback, so metrics.csv and the best weights are written first): the model's
    weights and optimizer state in checkpoints/last_<epoch>.weights.h5, then checkpoints/last.json naming it with
    what the run must carry over (the best validation score, the epochs' timings, the training time so far),
    then the previous epoch's weights removed. Each file is written beside and renamed over (atomic_path), and
    last.json names a weights file only once that file is whole: a kill at any moment leaves a state to resume."""

    def __init__(self, folder: Path, best: BestWeights, timer: EpochTimer, trained_s: float = 0.0) -> None:
        super().__init__()
        self.folder, self.best, self.timer, self.trained_s = folder, best, timer, trained_s

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        weights = self.folder / f"last_{epoch}.weights.h5"
        save_atomically(self.model.save_weights, weights)
        write_json(self.folder / "last.json", {
            "epoch": epoch, "weights": weights.name, "best": self.best.best,
            "epoch_time_s": self.timer.epoch_times, "train_images_per_s": self.timer.images_per_sec,
            "train_s": self.trained_s + time.perf_counter() - self._start,
        })
        for old in self.folder.glob("last_*.weights.h5"):
            if old != weights:
                old.unlink(missing_ok=True)


def resume_state(run: Path) -> dict:
    """What checkpoints/last.json of a Keras run folder holds (the last finished epoch and what goes on from it);
    a refusal naming the folder when there is nothing to resume."""
    last = run / "checkpoints" / "last.json"
    if not (run / "recipe.yaml").is_file() or not last.is_file():
        raise ResumeError(f"--resume {run}: no recipe.yaml and checkpoints/last.json there, so nothing to resume "
                          "(a Keras run folder holds them once its first epoch has finished)")
    state = read_record(last, "Keras resume state")
    if not (run / "checkpoints" / str(state.get("weights"))).is_file():
        raise ResumeError(f"--resume {run}: checkpoints/last.json names {state.get('weights')}, which is not there")
    return state


class ResumeError(ValueError):
    """A Keras run folder that cannot be resumed as asked; the message names the folder and the fix."""


def resumable_recipe(run: Path, epochs: int | None, task: str) -> dict:
    """The recipe a Keras run was trained with (its recipe.yaml), to resume it: refused for a finished run unless
    ``epochs`` trains on (its record is then kept as metrics.epochs_<n>.json, as lightning_impl does)."""
    if not (run / "recipe.yaml").is_file():
        if (run / "config.yaml").is_file():
            raise ResumeError(f"--resume {run}: this is a Lightning run: resume it with lightning_impl.train or "
                              "lightning_impl.train_denoiser --resume")
        raise ResumeError(f"--resume {run}: no recipe.yaml there, so nothing to resume (not a Keras run folder)")
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    if not isinstance(recipe, dict):
        raise ResumeError(f"--resume {run}: recipe.yaml is not a recipe; nothing to resume")
    if recipe.get("task", task) != task:
        other = "keras_ref.train_denoiser" if recipe["task"] == "denoising" else "keras_ref.train"
        raise ResumeError(f"--resume {run}: this is a {recipe['task']} run: use {other} --resume")
    if (run / "metrics.json").is_file():
        done = read_record(run / "metrics.json", "run record").get("epochs")
        if epochs is None or not isinstance(done, int) or epochs <= done:
            raise ResumeError(f"--resume {run}: this run finished its {done} epochs (metrics.json), so there is "
                              f"nothing to resume; to train on, add --epochs N with N > {done}")
        (run / "metrics.json").replace(run / f"metrics.epochs_{done}.json")
    state = resume_state(run)
    if epochs is not None:
        if epochs <= state["epoch"]:
            raise ResumeError(f"--resume {run}: --epochs {epochs} is fewer than the {state['epoch'] + 1} epochs "
                              "this run has finished")
        recipe["epochs"] = epochs
    return recipe


def _keep_rows(csv_path: Path, last_epoch: int) -> None:
    """metrics.csv cut back to the epochs the resumed state holds (a kill after an epoch's row was written but
    before its state was saved would otherwise log that epoch twice)."""
    if not csv_path.is_file():
        return
    lines = csv_path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.split(",", 1)[0].strip() and int(line.split(",", 1)[0]) <= last_epoch]
    write_text(csv_path, "".join(kept))


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
    resume: Path | None = None,
    verbose: int = 2,
    callbacks: list[keras.callbacks.Callback] = (),
    after_best: Callable[[Path], None] | None = None,
    figures: Callable[[Path, str], None] | None = None,
    errors: Callable[[], dict] | None = None,
    **fit_kwargs,
) -> dict:
    """Train ``model`` (compiled; ``net`` is the bare twin inside it) on ``train`` (an EpochBatches-like feeder)
    for the recipe's epochs, keeping the epoch with the highest ``monitor``; then ``test()`` scores that epoch.
    Every epoch's order and random draws are fixed by (seed, epoch) (keras_ref.epochs), and every finished epoch
    is saved (LastEpoch): ``resume`` (a run folder) goes on from its last finished epoch and trains exactly as the
    uninterrupted run. ``callbacks`` run before checkpointing and logging (they may add to the epoch's logs, as a
    validation scorer does); ``after_best(run)`` runs once the selected epoch's weights are loaded (to save the
    model for prediction, say). The run folder gets figures/learning_curves.png, and whatever
    ``figures(folder, title)`` draws of the tested model; ``errors()``, what else the record holds of the tested
    model (a classifier's misclassified images, core.paired)."""
    timer, first_epoch, trained_s = EpochTimer(train_images), 0, 0.0
    if resume is None:
        run = new_run_dir(runs_dir or recipe["runs_dir"], recipe["name"])
        (run / "checkpoints").mkdir()
        write_text(run / "recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))  # what was trained, translated
    else:
        run = Path(resume)
        state = resume_state(run)
        model.optimizer.build(model.trainable_variables)  # its variables exist before they are loaded into
        model.load_weights(run / "checkpoints" / state["weights"])
        first_epoch, trained_s = state["epoch"] + 1, float(state["train_s"])
        timer.epoch_times, timer.images_per_sec = list(state["epoch_time_s"]), list(state["train_images_per_s"])
        _keep_rows(run / "metrics.csv", state["epoch"])
    best = BestWeights(run / "checkpoints" / "best.weights.h5", monitor)
    if resume is not None:
        best.best = float(state["best"])
    start = time.perf_counter()
    model.fit(
        train, epochs=recipe["epochs"], initial_epoch=first_epoch, verbose=verbose, shuffle=False,
        callbacks=[
            SeedEachEpoch(recipe["seed"], [train]),
            *callbacks,
            best,
            keras.callbacks.CSVLogger(run / "metrics.csv", append=resume is not None),
            timer,
            LastEpoch(run / "checkpoints", best, timer, trained_s),
        ],
        **fit_kwargs,
    )
    train_s = trained_s + time.perf_counter() - start
    model.load_weights(best.path)  # the epoch selected on validation, as lightning_impl.train tests it
    if after_best is not None:
        after_best(run)
    metrics = {
        "framework": "keras",
        **describe,
        "parameters": weight_count(net.trainable_weights),
        "non_trainable_weights": weight_count(net.non_trainable_weights),
        "seed": recipe["seed"],
        "epochs": len(timer.epoch_times),
        "finished": True,
        "best_checkpoint": str(best.path),
        f"best_{monitor}": best.best,
        **timed(test),
        **(errors() if errors is not None else {}),
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
