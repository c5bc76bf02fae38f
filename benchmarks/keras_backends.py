"""The specified CNN's default recipe on every installed Keras backend beside Lightning: speed, accuracy, determinism.

    python benchmarks/keras_backends.py                      # 1 epoch, seed 0, each run twice, every installed backend
    python benchmarks/keras_backends.py --epochs 2 --frameworks lightning torch jax --repeats 1

One process per run (a Keras backend is fixed per process), one after the other in one sitting: Lightning
(``python -m lightning_impl.train``), then ``python -m keras_ref.train --backend NAME`` per backend, each with the
same seed, full MNIST. Reports the training images/s of the last epoch (validation included, as the trainers time
it), the test accuracy, and whether the repeats with the same seed gave bit-identical weights. Run it on an
otherwise idle machine: timings are not tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py

from keras_ref.backend import BACKENDS, installed
from lightning_impl.checkpoints import load
from core import flags


def weights_digest(metrics: dict) -> str:
    """sha256 of the selected epoch's weights, in a fixed order (Keras .weights.h5 or a Lightning .ckpt)."""
    path, h = Path(metrics["best_checkpoint"]), hashlib.sha256()
    if path.suffix == ".ckpt":
        for name, tensor in sorted(load(path)["state_dict"].items()):
            h.update(name.encode() + tensor.cpu().numpy().tobytes())
    else:
        with h5py.File(path) as f:
            f.visititems(lambda name, obj: h.update(name.encode() + obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None)
    return h.hexdigest()[:16]


def train(framework: str, epochs: int, seed: int, runs_dir: str) -> dict:
    if framework == "lightning":
        argv = ["lightning_impl.train", "--trainer.max_epochs", str(epochs), "--seed_everything", str(seed),
                "--trainer.logger.init_args.save_dir", runs_dir, "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false"]
    else:
        argv = ["keras_ref.train", "--backend", framework, "--epochs", str(epochs), "--seed", str(seed),
                "--runs-dir", runs_dir, "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    run = Path(done.stdout.strip().splitlines()[-1])
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics | {"digest": weights_digest(metrics)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=flags.positive_int, default=1)
    p.add_argument("--seed", type=flags.non_negative_int, default=0)
    p.add_argument("--repeats", type=flags.positive_int, default=2, help="runs per framework with the same seed (determinism)")
    p.add_argument("--frameworks", nargs="+", choices=("lightning", *BACKENDS), default=["lightning", *installed()],
                   help="lightning and the Keras backends to train (default: lightning and every installed backend)")
    p.add_argument("--json", type=Path, help="also write every run's figures here")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows, everything = [], {}
    with tempfile.TemporaryDirectory() as runs_dir:
        for framework in args.frameworks:
            runs = []
            for i in range(args.repeats):
                print(f"[bench] {framework} run {i + 1}/{args.repeats}", file=sys.stderr, flush=True)
                runs.append(train(framework, args.epochs, args.seed, runs_dir))
            everything[framework] = runs
            ips = [m["train_images_per_s"][-1] for m in runs]
            same = len({m["digest"] for m in runs}) == 1 and len({m["test_loss"] for m in runs}) == 1
            accs = ", ".join(f"{100 * m['test_acc']:.2f} %" for m in runs)
            name = "Lightning" if framework == "lightning" else f"Keras, {framework} backend"
            rows.append(f"| {name} | {max(ips):,.0f} ({', '.join(f'{x:,.0f}' for x in ips)}) | "
                        f"{accs} | "
                        f"{'yes' if same else 'no'} ({', '.join(m['digest'] for m in runs)}) |")
    print(f"| framework | training images/s, epoch {args.epochs} (best of {args.repeats}: runs) | test accuracy | "
          f"bit-identical weights, seed {args.seed} |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
