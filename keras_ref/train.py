"""Train a Keras twin on exactly the split and normalisation the Lightning run uses, then test it.

    python -m keras_ref.train                    # specified CNN on MNIST, same recipe as lightning_impl.train
    python -m keras_ref.train --epochs 1 --seed 1 --data-dir ../shared/data
    python -m keras_ref.train --config configs/mnist_improved.yaml   # a YAML recipe: keras_ref.improved_cnn

The run folder runs/keras_<dataset>_<model>/version_<n>/ holds metrics.csv (per epoch), the best
weights, model.keras and model_card.json (for keras_ref.predict) and metrics.json; its path is the last line printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras_ref  # noqa: F401  (torch backend)
import keras

from keras_ref.models import MODELS
from lightning_impl.datamodules import DATAMODULES
from lightning_impl.datasets import DataIntegrityError, DatasetUnavailableError
from lightning_impl.train import DEFAULTS

# The same default recipe as `python -m lightning_impl.train`, read from the one place it is written.
RECIPE = {
    "epochs": DEFAULTS["trainer.max_epochs"],
    "batch_size": DEFAULTS["data"]["init_args"]["batch_size"],
    "lr": DEFAULTS["model.optimizer"]["init_args"]["lr"],
}


class EpochTimer(keras.callbacks.Callback):
    """Wall time and images/s of every epoch (validation included), like lightning_impl's EpochTimer."""

    def __init__(self, n_train: int) -> None:
        super().__init__()
        self.n_train, self.epoch_times, self.images_per_sec = n_train, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        self.epoch_times.append(elapsed)
        self.images_per_sec.append(self.n_train / elapsed)


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """runs/<name>/version_<n>, never reusing a folder (mkdir without exist_ok is the lock)."""
    parent = runs_dir / name
    parent.mkdir(parents=True, exist_ok=True)
    n = len(list(parent.glob("version_*")))
    while True:
        try:
            (run := parent / f"version_{n}").mkdir()
            return run
        except FileExistsError:
            n += 1


def save_for_prediction(run: Path, net: keras.Model, dm) -> None:
    """model.keras (architecture and the selected weights) and model_card.json (what keras_ref.predict needs
    besides: the training split's normalisation, the class names, the image shape) in the run folder."""
    net.save(run / "model.keras")
    card = {"task": "classifier", "dataset": dm.dataset_name, "classes": list(dm.spec.classes),
            "input_shape": list(dm.spec.shape), "mean": dm.mean.tolist(), "std": dm.std.tolist(), "model": "model.keras"}
    (run / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")


def compile_model(model: keras.Model, lr: float, total_steps: int, warmup_fraction: float) -> None:
    """Adam with linear warm-up then cosine decay per step: the curve of lightning_impl.schedules.warmup_cosine."""
    warmup = int(total_steps * warmup_fraction)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total_steps - warmup), warmup_target=lr, warmup_steps=warmup
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def train(args: argparse.Namespace) -> tuple[dict, Path]:
    keras.utils.set_random_seed(args.seed)
    dm = DATAMODULES[args.dataset](
        data_dir=args.data_dir, val_fraction=args.val_fraction, split_seed=args.split_seed, download=args.download
    )
    dm.prepare_data()
    dm.setup()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (dm.arrays(s) for s in ("train", "val", "test"))

    model = MODELS[args.model](input_shape=x_train.shape[1:], num_classes=dm.num_classes)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    if args.limit_train_batches:  # like Lightning's --trainer.limit_train_batches: short runs for smoke tests
        steps_per_epoch = min(steps_per_epoch, args.limit_train_batches)
    compile_model(model, args.lr, args.epochs * steps_per_epoch, args.warmup_fraction)

    run = new_run_dir(Path(args.runs_dir), f"keras_{args.dataset}_{args.model}")
    best = run / "checkpoints" / "best.weights.h5"
    best.parent.mkdir()
    timer = EpochTimer(min(len(x_train), steps_per_epoch * args.batch_size))
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, monitor="val_accuracy", mode="max", save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(run / "metrics.csv"),
        timer,
    ]
    history = model.fit(
        x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_data=(x_val, y_val),
        validation_batch_size=1000,
        steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=args.verbose,
    )
    model.load_weights(best)  # evaluate the model selected on validation, as lightning_impl.train does
    save_for_prediction(run, model, dm)
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    metrics = {
        "framework": "keras",
        "dataset": args.dataset,
        "model": args.model,
        "parameters": model.count_params(),
        "seed": args.seed,
        "epochs": len(history.history["loss"]),
        "best_checkpoint": str(best),
        "best_val_acc": max(history.history["val_accuracy"]),
        "test_acc": float(test_acc),
        "test_loss": float(test_loss),
        "epoch_time_s": timer.epoch_times,
        "train_images_per_s": timer.images_per_sec,
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mnist", choices=sorted(DATAMODULES))
    p.add_argument("--model", default="specified_cnn", choices=sorted(MODELS))
    p.add_argument("--config", help="a LightningCLI YAML (e.g. configs/mnist_improved.yaml): train its recipe with "
                   "keras_ref.improved_cnn; then only --epochs, --seed, --data-dir, --runs-dir and --verbose apply")
    p.add_argument("--epochs", type=int, default=None, help=f"default: the config's, else {RECIPE['epochs']}")
    p.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    p.add_argument("--lr", type=float, default=RECIPE["lr"], help="peak learning rate of Adam")
    p.add_argument("--limit-train-batches", type=int, default=None, help="train on at most this many batches per epoch")
    p.add_argument("--warmup-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=None, help="training seed (initialisation, shuffling); default: the config's, else 42")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the validation split (shared with Lightning)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--data-dir", default=None, help="default: $LIGHTNING_IMPL_DATA, else ~/.cache/lightning_impl/data")
    p.add_argument("--no-download", dest="download", action="store_false", help="never download missing data")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress: 0 silent, 1 bar, 2 a line per epoch")
    args = p.parse_args(argv)
    if args.config:  # the recipe is the YAML's: refuse options it would silently override
        clash = [f"--{k.replace('_', '-')}" for k in RECIPE_OPTIONS if getattr(args, k) != p.get_default(k)]
        clash += [] if args.download else ["--no-download"]  # the YAML trainer has no such switch
        if clash:
            p.error(f"{', '.join(clash)} cannot be combined with --config (the YAML sets the recipe)")
    else:
        args.epochs = RECIPE["epochs"] if args.epochs is None else args.epochs
        args.seed = 42 if args.seed is None else args.seed
    if (args.epochs is not None and args.epochs < 1) or args.batch_size < 1:
        p.error("--epochs and --batch-size must be positive")
    return args


# What a --config YAML decides instead.
RECIPE_OPTIONS = ("dataset", "model", "batch_size", "lr", "limit_train_batches", "warmup_fraction", "split_seed",
                  "val_fraction")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.config:
        from keras_ref import improved_cnn

        return improved_cnn.main(
            ["--config", args.config, "--runs-dir", args.runs_dir, "--verbose", str(args.verbose)]
            + [f for k, v in (("--epochs", args.epochs), ("--seed", args.seed), ("--data-dir", args.data_dir))
               if v is not None for f in (k, str(v))]
        )
    try:
        metrics, run = train(args)
    except (DatasetUnavailableError, DataIntegrityError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps({k: metrics[k] for k in ("test_acc", "test_loss", "best_val_acc", "epochs")}))
    print(run.resolve())
    return metrics


if __name__ == "__main__":
    main()
