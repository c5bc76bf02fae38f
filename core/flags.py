"""The command-line vocabulary every argparse entry point of the project speaks (LightningCLI ones keep their
dotted names): one concept, one spelling, one meaning. README.md lists them in one table.

    p = argparse.ArgumentParser(...)
    add(p, "data_dir", "runs_dir", "seed", "quiet")
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from core.ranges import MAX_INT  # no count, size or seed of the project is larger


class Parser(argparse.ArgumentParser):
    """The argparse parser of every entry point: a refusal is one line, ``error: <the option, the value, what is
    accepted>`` and exit status 2 -- the usage is what ``--help`` is for, not a dump above every error."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")



def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text}") from None
    if not low <= value <= MAX_INT:
        raise argparse.ArgumentTypeError(f"must lie in [{low}, {MAX_INT}], got {text}")
    return value


def positive_int(text: str) -> int:
    return _int(text, 1)


def non_negative_int(text: str) -> int:
    return _int(text, 0)


def _float(text: str, low: float, high: float, what: str, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if not (math.isfinite(value) and (low < value if low_open else low <= value) and value <= high):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (a learning rate, a noise level's scale)."""
    return _float(text, 0.0, 1e30, "positive", low_open=True)


def unit_float(text: str) -> float:
    """A finite number in [0, 1] (a noise level of [0, 1] pixels, a share)."""
    return _float(text, 0.0, 1.0, "in [0, 1]")


def output_file(text: str) -> Path:
    """A file to write, checked before any work starts: not a folder, and not below a file (a missing folder is
    created when the file is written)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    output_folder(str(path.parent))
    return path


def output_folder(text: str) -> str:
    """A folder to write into (created when missing): refused when it is a file, or below one."""
    path = Path(text)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {part} is a file, not a folder")
            break
    return text


# name -> (flags, argparse keywords). Seeds are numbered from --seed: --seeds 3 --seed 1 runs seeds 1, 2, 3.
FLAGS: dict[str, tuple[tuple[str, ...], dict]] = {
    "data_dir": (("--data-dir",), dict(metavar="DIR", default=None,
                 help="dataset folder (default: $LIGHTNING_IMPL_DATA, else ~/.cache/lightning_impl/data)")),
    "runs_dir": (("--runs-dir",), dict(metavar="DIR", type=output_folder, default="runs",
                 help="folder the run folders go into")),
    "resume": (("--resume",), dict(metavar="RUN_DIR", type=Path, default=None,
               help="go on with an interrupted run in its own folder, reusing what it finished")),
    "seed": (("--seed",), dict(type=non_negative_int, default=None, help="training seed (initialisation, order, noise)")),
    "seeds": (("--seeds",), dict(type=positive_int, default=None, metavar="N",
              help="number of seeds, numbered from --seed (default 0)")),
    "epochs": (("--epochs",), dict(type=positive_int, default=None, help="epochs per run (default: the recipe's)")),
    "jobs": (("--jobs",), dict(type=positive_int, default=1, metavar="N", help="processes working at once")),
    "limit_train": (("--limit-train",), dict(type=positive_int, default=None, metavar="N",
                    help="smoke runs: N training images only")),
    "limit_val": (("--limit-val",), dict(type=positive_int, default=None, metavar="N",
                  help="smoke runs: N validation images only")),
    "limit_test": (("--limit-test",), dict(type=positive_int, default=None, metavar="N",
                   help="smoke runs: N test images only")),
    "download": (("--no-download",), dict(action="store_false", default=True, help="never download missing data")),
    "sigma": (("--sigma",), dict(type=unit_float, nargs="+", metavar="SIGMA", default=None,
              help="the training noise: one level, or LOW HIGH for a blind model (LightningCLI: --data.sigma)")),
    "eval_sigma": (("--eval-sigma",), dict(type=unit_float, nargs="+", metavar="SIGMA", default=None,
                   help="the noise of the fixed validation/test copies (LightningCLI: --data.eval_sigma)")),
    "batch_size": (("--batch-size",), dict(type=positive_int, default=None, metavar="N",
                   help="training batch size (default: the recipe's; LightningCLI: --data.batch_size)")),
    "json": (("--json",), dict(type=output_file, default=None, metavar="FILE", help="also write the results to FILE as JSON")),
    "csv": (("--csv",), dict(type=output_file, default=None, metavar="FILE", help="also write the results to FILE as CSV")),
    "top": (("--top",), dict(type=positive_int, default=3, metavar="K", help="how many classes to report per image")),
    "grey": (("--grey",), dict(action="store_true",
             help="convert colour pictures to greyscale for a greyscale model (refused otherwise)")),
    "invert": (("--invert",), dict(choices=("auto", "always", "never"), default="auto",
               help="auto: invert dark-on-light greyscale pictures (decided from the border)")),
    "backend": (("--backend",), dict(choices=("torch", "jax", "tensorflow"), default=None,
                help="Keras backend (default: $KERAS_BACKEND, else torch); fixed per process")),
    "quiet": (("-q", "--quiet"), dict(action="store_true", help="no progress output, only results")),
    "verbose": (("-v", "--verbose"), dict(action="store_true", help="more progress output (every step)")),
}


def add(parser: argparse.ArgumentParser, *names: str, **defaults) -> argparse.ArgumentParser:
    """Add the named flags of the vocabulary; ``defaults`` overrides a flag's default (``jobs=2``)."""
    for name in names:
        flags, kwargs = FLAGS[name]
        kwargs = dict(kwargs)
        if name in defaults:
            kwargs["default"] = defaults[name]
        parser.add_argument(*flags, dest=name, **kwargs)
    return parser
