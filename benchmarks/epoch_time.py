"""Wall time per epoch and training images/s of the default recipe, in both frameworks.

    python benchmarks/epoch_time.py --epochs 2

Runs the real entry points (`lightning_impl.train`, `keras_ref.train`) on full MNIST and reads the per-epoch
timings they write to metrics.json (an epoch includes its validation pass). The first epoch carries start-up
costs, so the summary uses the later ones. Run it on an otherwise idle machine: timings are not tests.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile

import keras_ref.train
import lightning_impl.train
from core import flags


def run(epochs: int, runs_dir: str) -> dict[str, dict]:
    with contextlib.redirect_stdout(sys.stderr):
        lightning = lightning_impl.train.main([
            "--trainer.max_epochs", str(epochs), "--trainer.logger.init_args.save_dir", runs_dir,
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        ])
        keras = keras_ref.train.main(["--epochs", str(epochs), "--runs-dir", runs_dir, "--quiet"])
    return {"lightning": lightning, "keras": keras}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=flags.positive_int, default=2)
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as runs_dir:
        results = run(args.epochs, runs_dir)
    print("| framework | epochs | s/epoch (after the first) | images/s (after the first) |")
    print("|---|---|---|---|")
    for name, m in results.items():
        later = slice(1, None) if len(m["epoch_time_s"]) > 1 else slice(None)
        t, ips = m["epoch_time_s"][later], m["train_images_per_s"][later]
        print(f"| {name} | {len(m['epoch_time_s'])} | {statistics.fmean(t):.1f} | {statistics.fmean(ips):,.0f} |")


if __name__ == "__main__":
    main()
