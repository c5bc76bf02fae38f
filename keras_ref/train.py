"""Train the Keras twin of a classifier recipe on exactly the split and normalisation Lightning uses, then test it.

    python -m keras_ref.train                                        # = python -m lightning_impl.train, in Keras
    python -m keras_ref.train --config configs/mnist_improved.yaml   # any classifier recipe
    python -m keras_ref.train --epochs 1 --seed 3 --data-dir ../shared/data
    python -m keras_ref.train --backend jax                          # on JAX (torch is the default)

The recipe is the LightningCLI YAML (default: configs/mnist_specified_cnn.yaml, the default Lightning run):
net, augmentation, optimizer, schedule and label smoothing are translated by keras_ref.recipes, which refuses
what it cannot translate. Augmentation layers sit in front of the net inside the training model; Keras runs
them only in training, so validation, test and the bare net (the parity twin) never see them.
The run folder runs/<recipe name>_keras/version_<n>/ holds metrics.csv, the best weights, recipe.yaml, metrics.json
and figures/ (learning curves, confusion matrix, most confidently misclassified test images); its path is the last
line printed. ``--resume RUN_DIR`` goes on with an interrupted run from its last finished epoch and ends as the
uninterrupted run would (keras_ref.fit, keras_ref.epochs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np

from keras_ref import backend
from keras_ref.augment import AUGMENTATIONS
from keras_ref.epochs import EpochBatches
from keras_ref.fit import ResumeError, fit_and_test, resumable_recipe, save_atomically
from keras_ref.models import TWINS
from keras_ref.models.whitened_cnn import init_whitening
from keras_ref.torch_like import torch_init
from keras_ref.recipes import CLASSIFIER_DEFAULT, classifier_recipe, dtype_policy, make_optimizer
from core import flags, plots, shift_views
from core.paired import wrong_positions
from core.split import DatasetSplit
from core.whitening import WHITENING_IMAGES
from core.runs import data_errors, write_json


def stem_images(x_train: np.ndarray) -> np.ndarray:
    """The normalised NHWC training images a data-set stem is set from (core.whitening: the split's first ones)."""
    return x_train[:WHITENING_IMAGES]


def training_model(net: keras.Model, augmentation: keras.Model | None) -> keras.Model:
    """The net with the augmentation layers in front (active only in training)."""
    if augmentation is None:
        return net
    return keras.Sequential([keras.Input(net.input_shape[1:]), augmentation, net], name=f"{net.name}_augmented")


def build(recipe: dict, input_shape: tuple[int, int, int], num_classes: int, steps_per_epoch: int) -> tuple[keras.Model, keras.Model]:
    """(net, compiled training model) for a recipe."""
    with dtype_policy(recipe.get("dtype_policy", "float32")):  # the Lightning run's precision
        net = torch_init(TWINS[recipe["net"]](input_shape, num_classes, **recipe["net_args"]), recipe["seed"])
        augment = recipe["augment"]
        augmentation = AUGMENTATIONS[augment["name"]](**augment["init_args"]) if augment else None
        model = training_model(net, augmentation)
    model.compile(
        optimizer=make_optimizer(recipe["optimizer"], recipe["epochs"] * steps_per_epoch, recipe["schedule"],
                                 recipe["warmup_fraction"], recipe.get("norm_lr_scale", 1.0), net),
        # One-hot targets because only the categorical loss takes label smoothing; same formula as torch's.
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe["label_smoothing"]),
        metrics=[keras.metrics.CategoricalAccuracy(name="acc")],
    )
    return net, model


def eval_logits(net: keras.Model, images: np.ndarray, shift_tta: int = 0, flip_tta: bool = False) -> np.ndarray:
    """float64 logits of NHWC images: the mean over the image's views, as lightning_impl's ImageClassifier.eval_logits
    tests and predicts: with ``shift_tta`` the 9 shifted views (core.shift_views), with ``flip_tta`` their mirrors too."""
    views = shift_views.views_nhwc(images, shift_tta)
    if flip_tta:
        views += [np.ascontiguousarray(v[:, :, ::-1]) for v in views]  # torch takes no negative strides
    return sum(np.asarray(net.predict(v, batch_size=1000, verbose=0), dtype=np.float64) for v in views) / len(views)


class MirroredValidation(keras.callbacks.Callback):
    """val_loss and val_acc of every epoch as Lightning's validation scores a ``flip_tta`` recipe: the mean logits of
    each validation image and its mirror (no shifts: per-epoch validation only picks the epoch). Keras' own
    validation would score plain images and so could pick another epoch. Before BestWeights and CSVLogger, which
    read what it adds."""

    def __init__(self, net: keras.Model, images: np.ndarray, labels: np.ndarray, label_smoothing: float) -> None:
        super().__init__()
        self.net, self.images, self.labels, self.label_smoothing = net, images, labels, label_smoothing

    def on_epoch_end(self, epoch, logs=None):
        logits = eval_logits(self.net, self.images, flip_tta=True)
        logs.update(val_loss=cross_entropy(logits, self.labels, self.label_smoothing),
                    val_acc=float((logits.argmax(axis=1) == self.labels).mean()))


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float) -> float:
    """The training loss's formula (torch's and Keras' cross-entropy with label smoothing), on float64 logits."""
    k = logits.shape[1]
    targets = np.eye(k)[labels] * (1 - label_smoothing) + label_smoothing / k
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(targets * log_probs).sum(axis=1).mean())


def for_display(images: np.ndarray, dm) -> np.ndarray:
    """Normalised NHWC images back to [0, 1] pixels, as the user sees them."""
    return np.clip(images * dm.std.numpy() + dm.mean.numpy(), 0.0, 1.0)


def save_for_prediction(run: Path, net: keras.Model, dm, shift_tta: int = 0, flip_tta: bool = False) -> None:
    """model.keras (the bare net with the selected weights; augmentation acts in training only) and
    model_card.json (what keras_ref.predict needs besides: normalisation, class names, image shape)."""
    save_atomically(net.save, run / "model.keras")
    card = {"task": "classifier", "dataset": dm.dataset_name, "classes": list(dm.spec.classes),
            "input_shape": list(dm.spec.shape), "mean": dm.mean.tolist(), "std": dm.std.tolist(), "model": "model.keras",
            "shift_tta": shift_tta, "flip_tta": flip_tta}
    write_json(run / "model_card.json", card)


def train(recipe: dict, data_dir: str | None = None, runs_dir: str | None = None, verbose: int = 2,
          limit_train: int | float | None = None, download: bool = True, resume: Path | None = None) -> dict:
    """Train on the Lightning split and normalisation, in Lightning's order of the images, keep the best epoch on
    validation, test it once. ``resume``: the run folder of an interrupted run, whose recipe this is."""
    recipe = {**recipe, "limit_train": limit_train}  # in recipe.yaml: a resumed run trains on the same images
    keras.utils.set_random_seed(recipe["seed"])
    dm = DatasetSplit(recipe["dataset"], data_dir=data_dir, val_fraction=recipe["val_fraction"],
                      split_seed=recipe["split_seed"], download=download)
    dm.prepare()
    dm.setup()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (dm.arrays(s) for s in ("train", "val", "test"))
    first = stem_images(x_train)  # before any limit: the whole split's first images, as in Lightning
    if isinstance(limit_train, float):  # a share of the split, as Lightning's limit_train_batches takes one
        limit_train = max(1, int(limit_train * len(x_train)))
    if limit_train is not None and limit_train < len(x_train):  # smoke runs: a seeded random subset of the split
        keep = np.random.default_rng(recipe["seed"]).permutation(len(x_train))[:limit_train]
        x_train, y_train = x_train[keep], y_train[keep]
    onehot = lambda y: np.eye(dm.num_classes, dtype="float32")[y]  # noqa: E731
    net, model = build(recipe, x_train.shape[1:], dm.num_classes, -(-len(x_train) // recipe["batch_size"]))
    if recipe["net"] == "WhitenedCNN":  # before the first step; a resumed run loads its own stem with its weights
        init_whitening(net, first)
    shift, flip = recipe.get("shift_tta", 0), recipe.get("flip_tta", False)

    tested: dict[str, np.ndarray] = {}  # each split's logits, computed once from the selected epoch's weights

    def logits(split: str) -> np.ndarray:
        if split not in tested:
            tested[split] = eval_logits(net, x_test if split == "test" else x_val, shift, flip)
        return tested[split]

    def test() -> dict:
        return {"test_acc": float((logits("test").argmax(axis=1) == y_test).mean()),
                "test_loss": cross_entropy(logits("test"), y_test, recipe["label_smoothing"])}

    def errors() -> dict:  # what lightning_impl.train records: the wrong images by position, the test confusions
        predicted = {split: logits(split).argmax(axis=1) for split in ("val", "test")}
        return {"val_errors": wrong_positions(predicted["val"], y_val),
                "test_errors": wrong_positions(predicted["test"], y_test),
                "confusion_matrix": plots.confusion_counts(y_test, predicted["test"], dm.num_classes).tolist()}

    def figures(folder: Path, title: str) -> None:
        probs = np.exp(logits("test") - logits("test").max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        pred, confidence, classes = probs.argmax(axis=1), probs.max(axis=1), list(dm.spec.classes)
        plots.confusion_matrix(plots.confusion_counts(y_test, pred, dm.num_classes), classes,
                               folder / "confusion_matrix.png", f"{title}, test")
        worst = plots.most_confidently_wrong(y_test, pred, confidence)
        plots.misclassified_gallery(for_display(x_test[worst], dm), y_test[worst], pred[worst], confidence[worst], classes,
                                    folder / "misclassified.png", f"{title}: most confidently wrong test images")

    validation = (dict(callbacks=[MirroredValidation(net, x_val, y_val, recipe["label_smoothing"])]) if flip else
                  dict(validation_data=(x_val, onehot(y_val)), validation_batch_size=1000))
    return fit_and_test(
        model, net, EpochBatches(x_train, onehot(y_train), recipe["batch_size"], recipe["seed"]), **validation,
        recipe=recipe, monitor="val_acc", train_images=len(x_train), test=test, runs_dir=runs_dir, resume=resume,
        verbose=verbose,
        after_best=lambda run: save_for_prediction(run, net, dm, shift, flip), figures=figures, errors=errors,
        describe={"dataset": recipe["dataset"], "model": recipe["net"], "val_images": len(x_val)},
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=CLASSIFIER_DEFAULT, help="a classifier's LightningCLI YAML (default: %(default)s)")
    flags.add(p, "epochs", "seed", "data_dir", "download", "runs_dir", "limit_train", "resume", "backend", "quiet",
              "verbose", runs_dir=None)
    args = backend.parse_args(p, argv)
    if args.resume is not None:
        return resume_args(p, args, argv)
    try:
        args.recipe = classifier_recipe(args.config)
    except (ValueError, OSError) as err:  # RecipeError, invalid YAML, a missing file
        p.error(f"--config {args.config}: {err}")
    args.recipe.update({k: v for k in ("epochs", "seed") if (v := getattr(args, k)) is not None})
    return args


def resume_args(p: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None) -> argparse.Namespace:
    """``--resume RUN_DIR``: the run's own recipe.yaml (its recipe, seed and training images); ``--epochs N``
    trains on, the data folder and the output flags may change, nothing else."""
    given = {a.split("=", 1)[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
    for fixed in ("--config", "--seed", "--limit-train", "--runs-dir"):
        if fixed in given:
            p.error(f"{fixed}: a resumed run keeps its own (recipe.yaml in {args.resume}); give only --epochs to train on")
    try:
        args.recipe = resumable_recipe(args.resume, args.epochs, "classification")
    except (ResumeError, OSError) as err:
        p.error(str(err))
    args.limit_train = args.recipe.get("limit_train")
    return args


def keras_verbosity(args: argparse.Namespace) -> int:
    return 0 if args.quiet else 1 if args.verbose else 2  # Keras: silent, a bar, a line per epoch


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with data_errors():
        metrics = train(args.recipe, args.data_dir, args.runs_dir, keras_verbosity(args), args.limit_train, args.download,
                        args.resume)
    print(json.dumps({k: metrics[k] for k in ("test_acc", "test_loss", "best_val_acc", "epochs")}))
    print(metrics["run_dir"])
    return metrics


if __name__ == "__main__":
    main()
