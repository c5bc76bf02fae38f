"""Classify (or denoise) your own image files with a trained model; no dataset needed, only its checkpoint.

    python -m lightning_impl.predict runs/mnist_specified_cnn/version_0 digit.png photo.jpg
    python -m lightning_impl.predict runs/.../checkpoints/last.ckpt *.png --json predictions.json --quiet
    python -m lightning_impl.predict runs/.../version_0 garment.jpg --grey          # a colour photo, greyscale model
    python -m lightning_impl.predict runs/denoise_reference/version_0 noisy.png --out denoised.png

A run folder means its best checkpoint on validation (the one metrics.json names). Each file is read and
converted the way the training data looks (core.preprocess: greyscale, the model's size, light
object on a dark background -- a dark-on-light picture is inverted, and the output says so), normalised
with the statistics stored in the checkpoint, and classified: one line per file with the top-3 classes,
or a table with --json / --csv. A denoiser writes the restored PNG instead. A file that cannot be used
stops the run with one line naming it (exit status 2).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from core import flags
from lightning_impl.card import CheckpointError, load_model, normalise
from core.runs import fail
from core.preprocess import ImageInputError, Prepared, format_row, prediction_rows, prepare, write_restored, write_rows

BATCH = 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="a run folder (its best checkpoint) or a .ckpt file")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files, any size and colour mode")
    flags.add(p, "top", "grey", "invert", "json", "csv", "quiet")
    p.add_argument("--out", metavar="FILE", help="denoisers: where to write the restored PNG (one input image)")
    p.add_argument("--out-dir", metavar="DIR", help="denoisers: write <name>_denoised.png for each input here")
    args = p.parse_args(argv)
    if args.out and len(args.images) > 1:
        p.error("--out names one file: with several images use --out-dir DIR")
    return args


@torch.inference_mode()
def run_model(model, card: dict, prepared: list[Prepared]) -> np.ndarray:
    """predict_step over the files in batches: class probabilities, or restored images in [0, 1]."""
    images = torch.from_numpy(np.stack([item.array for item in prepared]))
    outputs = [model.predict_step(normalise(card, images[i : i + BATCH]), i // BATCH) for i in range(0, len(images), BATCH)]
    return torch.cat(outputs).numpy()


def classify(args: argparse.Namespace, model, card: dict, prepared: list[Prepared]) -> list[dict]:
    rows = prediction_rows(prepared, run_model(model, card, prepared), card["classes"], min(args.top, len(card["classes"])))
    write_rows(rows, args.json, args.csv)
    if not args.quiet:
        for row in rows:
            print(format_row(row))
    return rows


def denoise(args: argparse.Namespace, model, card: dict, prepared: list[Prepared]) -> list[dict]:
    if not (args.out or args.out_dir):
        fail("a denoiser writes images: pass --out FILE.png (one image) or --out-dir DIR")
    rows = write_restored(prepared, run_model(model, card, prepared), args.out, args.out_dir, args.quiet)
    write_rows(rows, args.json, args.csv)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    try:
        model, card, _ = load_model(args.checkpoint)
    except CheckpointError as err:
        fail(str(err))
    shape = tuple(card["input_shape"])
    denoiser = card["task"] == "denoiser"
    try:
        prepared = [prepare(path, card["dataset"], shape, args.invert, args.grey, reframe=not denoiser) for path in args.images]
    except ImageInputError as err:
        fail(str(err))
    return (denoise if denoiser else classify)(args, model, card, prepared)


if __name__ == "__main__":
    main()
