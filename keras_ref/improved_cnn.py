"""Keras twin of lightning_impl.improved_cnn, its augmentation layers, and a trainer that reads the same YAML.

    python -m keras_ref.improved_cnn --config configs/mnist_improved.yaml
    python -m keras_ref.improved_cnn --config configs/cifar10_improved.yaml --epochs 2 --seed 1

The Lightning config (LightningCLI YAML) is the recipe for both frameworks: the net's ``init_args`` go to
``improved_cnn`` unchanged, the ``augment`` class becomes the Keras augmentation layers below, and the
optimizer, schedule and label smoothing are translated one to one. Augmentation layers sit *inside* the
training model, in front of the net; Keras runs them only when ``training=True``, so validation, test and
the bare net (the parity twin) never see them.

Not translated: ``trainer.precision`` (Keras trains in float32) and ``trainer.accelerator``/``devices``.

BatchNorm convention: PyTorch's (momentum 0.1 for the *new* batch, eps 1e-5) everywhere. Keras' momentum
weights the *old* running value, so torch 0.1 is Keras 0.9; its default epsilon (1e-3) is overridden.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import numpy as np
import yaml
from keras import layers

from keras_ref.augmentation import RandomRotateShift
from keras_ref.train import EpochTimer, new_run_dir, save_for_prediction
from lightning_impl.datamodules import DATAMODULES
from lightning_impl.datasets import DataIntegrityError, DatasetUnavailableError
from lightning_impl.improved_cnn import BN_EPS, BN_MOMENTUM, conv_output_size, pooling_conv

KERAS_BN = {"momentum": 1.0 - BN_MOMENTUM, "epsilon": BN_EPS}


def improved_cnn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    widths: Sequence[int] = (32, 16),
    kernel_sizes: Sequence[int] = (3, 5),
    paddings: Sequence[str] = ("same", "valid"),
    convs_per_stage: int = 1,
    hidden: Sequence[int] = (100, 50),
    batch_norm: bool = False,
    dropout: float = 0.0,
    conv_dropout: float = 0.0,
    global_pool: bool = False,
    pool_after: str = "last",
) -> keras.Sequential:
    """Twin of lightning_impl.improved_cnn.ImprovedCNN: the same layers, names and order; outputs logits."""
    if not len(widths) == len(kernel_sizes) == len(paddings):
        raise ValueError("widths, kernel_sizes and paddings need one entry per stage")
    pool_at = pooling_conv(pool_after, convs_per_stage)
    stack: list = [keras.Input(input_shape)]
    size = input_shape[0]
    for s, (width, k, padding) in enumerate(zip(widths, kernel_sizes, paddings), start=1):
        for j in range(1, convs_per_stage + 1):
            stack.append(layers.Conv2D(width, k, padding=padding, use_bias=not batch_norm, name=f"conv{s}_{j}"))
            if batch_norm:
                stack.append(layers.BatchNormalization(name=f"bn{s}_{j}", **KERAS_BN))
            stack.append(layers.ReLU(name=f"relu{s}_{j}"))
            size = conv_output_size(size, k, padding)
            if j == pool_at:
                stack.append(layers.MaxPooling2D(2, name=f"pool{s}"))
                size //= 2
        if conv_dropout:
            stack.append(layers.Dropout(conv_dropout, name=f"drop{s}"))
        if size < 1:
            raise ValueError(f"stage {s} shrinks the input to nothing")
    stack.append(layers.GlobalAveragePooling2D(name="gap") if global_pool else layers.Flatten(name="flatten"))
    for k, units in enumerate(hidden, start=1):
        stack.append(layers.Dense(units, name=f"fc{k}"))  # no BatchNorm in the head, as in ImprovedCNN
        stack.append(layers.ReLU(name=f"relu_fc{k}"))
        if dropout:
            stack.append(layers.Dropout(dropout, name=f"drop_fc{k}"))
    stack.append(layers.Dense(num_classes, name="logits"))
    return keras.Sequential(stack, name="ImprovedCNN")


def digit_augmentation(degrees: float = 10.0, translate: float = 0.1) -> keras.Sequential:
    """Twin of lightning_impl.augment.DigitAugment: per-image rotation and translation, no flip, black fill.

    One batched resampling (keras_ref.augmentation.RandomRotateShift) rather than ``RandomRotation`` +
    ``RandomTranslation``, which on the torch backend loop over the images (~14x slower, measured).
    """
    return keras.Sequential([RandomRotateShift(degrees, translate, name="rotate_shift")], name="digit_augmentation")


def crop_flip_augmentation(padding: int = 4, flip: bool = True, size: int = 32) -> keras.Sequential:
    """Twin of lightning_impl.augment.CropFlipAugment: shift by up to ``padding`` pixels with 0 (mean colour)
    filling the uncovered border, then mirror left-right with probability 1/2.

    A pad-then-random-crop shifts by a uniform integer in [-padding, padding]; RandomTranslation with nearest
    interpolation shifts by a rounded uniform real in the same range (the two extremes half as likely).
    """
    stack = [
        layers.RandomTranslation(
            padding / size, padding / size, fill_mode="constant", fill_value=0.0, interpolation="nearest"
        )
    ]
    if flip:
        stack.append(layers.RandomFlip("horizontal"))
    return keras.Sequential(stack, name="crop_flip_augmentation")


# The Lightning augmentations (classes, and the functions that are their defaults) and their Keras twins
# (same constructor arguments).
AUGMENTATIONS = {
    "lightning_impl.augment.DigitAugment": digit_augmentation,
    "lightning_impl.augment.digit_augment": digit_augmentation,
    "lightning_impl.augment.CropFlipAugment": crop_flip_augmentation,
    "lightning_impl.augment.crop_flip_augment": crop_flip_augmentation,
}

# Lightning nets the Keras trainer can build, and the arguments that are implied by the data instead.
NETS = {"lightning_impl.improved_cnn.ImprovedCNN": improved_cnn}
FROM_DATA = ("in_channels", "num_classes", "input_size")


def training_model(net: keras.Model, augmentation: keras.Model | None) -> keras.Model:
    """The net with the augmentation layers in front (active only in training)."""
    if augmentation is None:
        return net
    return keras.Sequential([keras.Input(net.input_shape[1:]), augmentation, net], name=f"{net.name}_augmented")


def make_optimizer(optimizer: dict, total_steps: int, schedule: str, warmup_fraction: float) -> keras.optimizers.Optimizer:
    """Keras optimizer equivalent to a Lightning config's ``model.optimizer`` (Adam, AdamW or SGD)."""
    name = optimizer["class_path"].rsplit(".", 1)[-1]
    args = dict(optimizer.get("init_args", {}))
    lr = args.pop("lr", 1e-3)
    if schedule == "warmup_cosine":  # the curve of lightning_impl.schedules.warmup_cosine
        warmup = int(total_steps * warmup_fraction)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup), warmup_target=lr, warmup_steps=warmup
        )
    elif schedule != "constant":
        raise ValueError(f"unknown schedule {schedule!r}")
    weight_decay = args.pop("weight_decay", 0.01 if name == "AdamW" else 0.0)
    if name == "AdamW":  # decoupled weight decay, scaled by the learning rate, in both frameworks
        betas = args.pop("betas", (0.9, 0.999))
        return keras.optimizers.AdamW(lr, weight_decay=weight_decay, beta_1=betas[0], beta_2=betas[1], epsilon=args.pop("eps", 1e-8))
    if weight_decay:
        # torch's Adam/SGD add an L2 term to the gradient; Keras' weight_decay is decoupled: not the same.
        raise ValueError(f"{name} with weight_decay has no exact Keras twin; use torch.optim.AdamW")
    if name == "Adam":
        betas = args.pop("betas", (0.9, 0.999))
        return keras.optimizers.Adam(lr, beta_1=betas[0], beta_2=betas[1], epsilon=args.pop("eps", 1e-8))
    if name == "SGD":
        return keras.optimizers.SGD(lr, momentum=args.pop("momentum", 0.0), nesterov=args.pop("nesterov", False))
    raise ValueError(f"no Keras translation for optimizer {optimizer['class_path']!r}")


def load_recipe(config: dict | str | Path) -> dict:
    """A LightningCLI config (dict or YAML path) -> everything the Keras trainer needs, with defaults filled in."""
    if not isinstance(config, dict):
        config = yaml.safe_load(Path(config).read_text())
    model, data = config.get("model", {}), config["data"]
    net = model.get("net", {"class_path": "lightning_impl.models.SpecifiedCNN"})
    name = "improved_cnn"
    if net["class_path"] == "lightning_impl.models.SpecifiedCNN":  # ImprovedCNN's defaults are that net
        net, name = {"class_path": "lightning_impl.improved_cnn.ImprovedCNN", "init_args": {}}, "specified_cnn"
    if net["class_path"] not in NETS:
        raise ValueError(f"no Keras twin for {net['class_path']!r}")
    if model.get("flip_tta"):
        raise ValueError("flip_tta (test-time flips) has no Keras translation: the Keras trainer evaluates plain images")
    data_args = dict(data.get("init_args", {}))
    augment = data_args.pop("augment", None)
    if isinstance(augment, str):  # an import path of a function: its defaults
        augment = {"class_path": augment, "init_args": {}}
    if augment is not None and augment["class_path"] not in AUGMENTATIONS:
        raise ValueError(f"no Keras twin for augmentation {augment['class_path']!r}")
    dataset = next(name for name, cls in DATAMODULES.items() if data["class_path"].endswith(cls.__name__))
    return {
        "dataset": dataset,
        "model": name,
        "net": {k: v for k, v in net.get("init_args", {}).items() if k not in FROM_DATA},
        "augment": augment,
        "optimizer": model.get("optimizer", {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}),
        "schedule": model.get("schedule", "warmup_cosine"),
        "warmup_fraction": model.get("warmup_fraction", 0.1),
        "label_smoothing": model.get("label_smoothing", 0.0),
        "batch_size": data_args.get("batch_size", 128),
        "val_fraction": data_args.get("val_fraction", 0.1),
        "split_seed": data_args.get("split_seed", 0),
        "epochs": config.get("trainer", {}).get("max_epochs", 6),
        "seed": config.get("seed_everything", 42),
    }


def build(recipe: dict, input_shape: tuple[int, int, int], num_classes: int, steps_per_epoch: int) -> tuple[keras.Model, keras.Model]:
    """(net, compiled training model) for a recipe."""
    net = improved_cnn(input_shape, num_classes, **recipe["net"])
    augment = recipe["augment"]
    augmentation = AUGMENTATIONS[augment["class_path"]](**augment.get("init_args", {})) if augment else None
    model = training_model(net, augmentation)
    total = recipe["epochs"] * steps_per_epoch
    model.compile(
        optimizer=make_optimizer(recipe["optimizer"], total, recipe["schedule"], recipe["warmup_fraction"]),
        # One-hot targets because only the categorical loss takes label smoothing; same formula as torch's.
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe["label_smoothing"]),
        metrics=["categorical_accuracy"],
    )
    return net, model


def train(recipe: dict, data_dir: str | None = None, runs_dir: str = "runs", verbose: int = 2,
          train_fraction: float = 1.0) -> dict:
    """Train on the Lightning split and normalisation, keep the best epoch on validation, test it once."""
    keras.utils.set_random_seed(recipe["seed"])
    dm = DATAMODULES[recipe["dataset"]](data_dir=data_dir, val_fraction=recipe["val_fraction"], split_seed=recipe["split_seed"])
    dm.prepare_data()
    dm.setup()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (dm.arrays(s) for s in ("train", "val", "test"))
    if train_fraction < 1.0:  # quick budgets and smoke tests: a random share of the training split
        keep = np.random.default_rng(recipe["seed"]).permutation(len(x_train))[: max(1, int(train_fraction * len(x_train)))]
        x_train, y_train = x_train[keep], y_train[keep]
    onehot = lambda y: np.eye(dm.num_classes, dtype="float32")[y]  # noqa: E731
    steps = -(-len(x_train) // recipe["batch_size"])
    net, model = build(recipe, x_train.shape[1:], dm.num_classes, steps)

    run = new_run_dir(Path(runs_dir), f"keras_{recipe['dataset']}_{recipe['model']}")
    best = run / "checkpoints" / "best.weights.h5"
    best.parent.mkdir()
    timer = EpochTimer(len(x_train))
    history = model.fit(
        x_train, onehot(y_train), batch_size=recipe["batch_size"], epochs=recipe["epochs"],
        validation_data=(x_val, onehot(y_val)), verbose=verbose,
        callbacks=[
            keras.callbacks.ModelCheckpoint(best, monitor="val_categorical_accuracy", mode="max",
                                            save_best_only=True, save_weights_only=True),
            keras.callbacks.CSVLogger(run / "metrics.csv"),
            timer,
        ],
    )
    model.load_weights(best)
    save_for_prediction(run, net, dm)  # the bare net: augmentation layers only act in training
    test_loss, test_acc = model.evaluate(x_test, onehot(y_test), batch_size=1000, verbose=0)
    metrics = {
        "framework": "keras",
        "dataset": recipe["dataset"],
        "model": recipe["model"],
        "parameters": net.count_params(),
        "trainable_parameters": sum(int(np.prod(w.shape)) for w in net.trainable_weights),
        "seed": recipe["seed"],
        "epochs": len(history.history["loss"]),
        "best_val_acc": max(history.history["val_categorical_accuracy"]),
        "val_images": len(x_val),
        "test_acc": float(test_acc),
        "test_loss": float(test_loss),
        "epoch_time_s": timer.epoch_times,
        "run_dir": str(run.resolve()),
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a LightningCLI YAML, e.g. configs/mnist_improved.yaml")
    p.add_argument("--epochs", type=int, help="override trainer.max_epochs")
    p.add_argument("--seed", type=int, help="override seed_everything")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args(argv)
    recipe = load_recipe(args.config)
    recipe.update({k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None})
    try:
        metrics = train(recipe, args.data_dir, args.runs_dir, args.verbose)
    except (DatasetUnavailableError, DataIntegrityError) as err:
        sys.exit(f"error: {err}")
    print(json.dumps({k: metrics[k] for k in ("test_acc", "test_loss", "best_val_acc", "epochs")}))
    print(metrics["run_dir"])
    return metrics


if __name__ == "__main__":
    main()
