"""Classify (or denoise) your own image files with a Keras twin's saved model, through the Lightning side's
preprocessing.

    python -m keras_ref.predict runs/mnist_specified_cnn_keras/version_0 digit.png photo.jpg
    python -m keras_ref.predict runs/mnist_specified_cnn_keras/version_0 *.png --csv predictions.csv --quiet
    python -m keras_ref.predict runs/denoise_reference_keras/version_0 noisy.png --out denoised.png

The run folder holds model.keras (the architecture with the weights selected on validation) and
model_card.json (a classifier's training normalisation and class names, the image shape), both written by
keras_ref.train and keras_ref.train_denoiser. Files are read by core.preprocess -- the very code
lightning_impl.predict uses -- and the output has the same form. Nothing of Lightning is imported: only the
framework-neutral preprocessing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np

from keras_ref import backend
from keras_ref import models  # noqa: F401  (registers the twins' own layers, e.g. BatchNorm: model.keras files name them)
from keras_ref.train import eval_logits
from core import flags
from core.preprocess import (ImageInputError, format_row, prediction_rows, prepare, softmax, write_restored,
                                      write_rows)
from core.runs import UsageError, fail, read_record


class RunError(ValueError):
    """A run folder keras_ref.predict cannot use; the message is one line."""


def load_run(path: str | Path) -> tuple[keras.Model, dict]:
    """(model, card) from a Keras run folder, or from its model_card.json."""
    path = Path(path)
    card_file = path if path.suffix == ".json" else path / "model_card.json"
    if not card_file.is_file():
        hint = " (runs saved before keras_ref wrote it cannot be used: train again)" if path.is_dir() else ""
        raise RunError(f"{path}: no model_card.json there{hint}")
    try:
        card = read_record(card_file, "model card")
        model_file = card_file.parent / card["model"]
    except (UsageError, KeyError, TypeError) as err:
        raise RunError(f"{card_file}: a damaged model card ({err}); convert or train the model again") from None
    try:  # safe_mode (the default) refuses a file whose layers would run arbitrary code
        model = keras.saving.load_model(model_file, compile=False)
    except (OSError, ValueError, TypeError) as err:  # TypeError: a layer class Keras cannot find
        raise RunError(f"{model_file}: cannot be loaded as a Keras model ({str(err).splitlines()[0]})") from None
    return model, card


def probabilities(model: keras.Model, card: dict, arrays: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> class probabilities: normalised as in training, NHWC for Keras, softmax of the logits."""
    c = arrays.shape[1]
    x = (arrays.astype(np.float32) / 255.0 - np.float32(card["mean"]).reshape(1, c, 1, 1)) / np.float32(card["std"]).reshape(1, c, 1, 1)
    return softmax(eval_logits(model, x.transpose(0, 2, 3, 1), int(card.get("shift_tta", 0)),  # as it was tested
                               bool(card.get("flip_tta", False))))


def restored(model: keras.Model, arrays: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> a denoiser's restorations in [0, 1], NCHW (as lightning_impl's predict_step)."""
    x = (arrays.astype(np.float32) / 255.0).transpose(0, 2, 3, 1)
    out = keras.ops.convert_to_numpy(model.predict(x, batch_size=256, verbose=0)).astype(np.float32)
    return np.clip(out, 0.0, 1.0).transpose(0, 3, 1, 2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", metavar="RUN_DIR", help="a keras_ref run folder (holding model.keras and model_card.json)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files, any size and colour mode")
    flags.add(p, "top", "grey", "invert", "json", "csv", "quiet", "backend")
    p.add_argument("--out", metavar="FILE", type=flags.output_file, help="denoisers: where to write the restored PNG (one input image)")
    p.add_argument("--out-dir", metavar="DIR", type=flags.output_folder, help="denoisers: write <name>_denoised.png for each input here")
    args = backend.parse_args(p, argv)
    if args.out and len(args.images) > 1:
        p.error("--out names one file: with several images use --out-dir DIR")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    try:
        model, card = load_run(args.run)
        denoiser = card.get("task") == "denoiser"
        if denoiser and not (args.out or args.out_dir):
            raise RunError("a denoiser writes images: pass --out FILE.png (one image) or --out-dir DIR")
        prepared = [prepare(path, card["dataset"], tuple(card["input_shape"]), args.invert, args.grey, reframe=not denoiser)
                    for path in args.images]
    except (RunError, ImageInputError) as err:
        fail(str(err))
    if denoiser:
        rows = write_restored(prepared, restored(model, np.stack([item.array for item in prepared])), args.out,
                              args.out_dir, args.quiet)
        write_rows(rows, args.json, args.csv)
        return rows
    probs = probabilities(model, card, np.stack([item.array for item in prepared]))
    rows = prediction_rows(prepared, probs, card["classes"], min(args.top, len(card["classes"])))
    write_rows(rows, args.json, args.csv)
    if not args.quiet:
        for row in rows:
            print(format_row(row))
    return rows


if __name__ == "__main__":
    main()
