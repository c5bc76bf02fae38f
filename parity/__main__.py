"""Prove, model by model, that the Lightning and Keras implementations are the same models, on every Keras backend.

    python -m parity                                  # checks 1-4, every registered pair, every installed backend
    python -m parity --backends torch jax             # the backends to run (each in its own process)
    python -m parity --pairs specified_cnn --json parity.json
    python -m parity --accuracy --quick --backends jax   # + check 5 on the CI budget (1 seed, 1 epoch)
    python -m parity --accuracy --seeds 3 --seed 1 --baseline runs/<baseline run>/metrics.json
    python -m parity --pairs specified_cnn --accuracy --jobs 2 --baseline ...   # frameworks side by side

A Keras backend is fixed per process: the backend this process runs on (KERAS_BACKEND, torch by default) runs
here, every other one in a process of its own (``KERAS_BACKEND=<name> python -m parity ...``), one after the
other. Prints one table per pair (check, bound, then value and result per backend) and exits with status 1 if
any check fails on any backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras

from keras_ref.backend import BACKENDS, EXTRA, installed
from core import flags
from core.runs import write_text
from parity.accuracy import DEFAULT_SEEDS, baseline_from, check_accuracy
from parity.checks import CHECKS, Row, run_checks
from parity.registry import all_pairs
from parity.report import backend_tables, failed_backends, rows_from_json, to_json

# Checks 1-4 in a backend's own process run on one thread, as in this one (parity.checks.one_thread): the
# models and batches are tiny, and one thread fixes the summation order.
ONE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",  # JAX (XLA on the CPU)
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    pairs = all_pairs()
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pairs", nargs="+", default=sorted(pairs), choices=sorted(pairs), metavar="NAME",
                   help=f"model pairs to check, of: {', '.join(sorted(pairs))}")
    p.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS), help="checks 1-4 and 6 to run")
    p.add_argument("--backends", nargs="+", default=installed(), choices=BACKENDS, metavar="NAME",
                   help=f"Keras backends to run the checks on, each in its own process, of: {', '.join(BACKENDS)} "
                        "(default: every installed one)")
    p.add_argument("--accuracy", action="store_true", help="also run check 5 (trains every pair in both frameworks)")
    p.add_argument("--quick", action="store_true", help="check 5 on the CI budget: 1 seed, 1 epoch, the quick band")
    p.add_argument("--recipe", type=Path, metavar="FILE",
                   help="check 5 trains this recipe instead of the pair's own (e.g. configs/mnist_specified_cnn.yaml, "
                        "the default run, for --pairs specified_cnn)")

    p.add_argument("--baseline", action="append", default=[], metavar="FIGURE|PATH",
                   help="HOG+SVM test accuracy (0.9936 or 99.36) or its metrics.json (python -m parity.baseline); repeatable")
    flags.add(p, "seeds", "seed", "epochs", "runs_dir", "jobs", "verbose", "json", seeds=DEFAULT_SEEDS, seed=0, runs_dir=None)
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.jobs > 2:
        p.error(f"--jobs {args.jobs}: check 5 runs at most one process per framework (1 or 2)")
    if (args.quick or args.baseline or args.recipe) and not args.accuracy:
        p.error("--quick, --baseline and --recipe belong to check 5: add --accuracy")
    if args.recipe is not None and not args.recipe.is_file():
        p.error(f"--recipe {args.recipe}: no such file")
    missing = [b for b in args.backends if b not in installed()]
    if missing:
        p.error(f"--backends {missing[0]}: not installed here (pip install -e \".[{EXTRA[missing[0]]}]\")")
    args.backends = list(dict.fromkeys(args.backends))  # once each, in the order given
    try:
        args.baselines = [baseline_from(b) for b in args.baseline]
    except ValueError as err:
        p.error(str(err))
    return args


def run_here(args: argparse.Namespace) -> dict[str, list[Row]]:
    """Checks 1-4 (and 5) for every selected pair on this process' backend."""
    pairs = all_pairs()
    results = {}
    for name in args.pairs:
        print(f"[parity] {name} ({keras.backend.backend()}): checks {', '.join(args.checks)}", file=sys.stderr, flush=True)
        rows = run_checks(pairs[name], args.checks)
        if args.accuracy:
            pair = pairs[name] if args.recipe is None else dataclasses.replace(pairs[name], recipe=str(args.recipe))
            rows += check_accuracy(pair, args.seeds, args.epochs, args.quick, args.baselines, args.runs_dir, args.verbose,
                                   args.jobs == 2, args.seed)
        results[name] = rows
    return results


def _without(argv: list[str], option: str) -> list[str]:
    """argv without ``option`` and the values after it (up to the next option)."""
    out, skipping = [], False
    for arg in argv:
        if arg == option or arg.startswith(option + "="):
            skipping = arg == option
            continue
        if skipping and not arg.startswith("-"):
            continue
        skipping = False
        out.append(arg)
    return out


def run_elsewhere(backend: str, args: argparse.Namespace) -> dict[str, list[Row]]:
    """The same command in a process of its own on ``backend``; its rows, read back from its --json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{backend}.json"
        argv = _without(_without(args.argv, "--backends"), "--json") + ["--backends", backend, "--json", str(out)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        if not args.accuracy:  # training runs (check 5) keep every core
            env.update(ONE_THREAD_ENV)
        print(f"[parity] {backend}: KERAS_BACKEND={backend} python -m parity {' '.join(argv)}", file=sys.stderr, flush=True)
        with subprocess.Popen([sys.executable, "-m", "parity", *argv], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as done:
            for line in done.stdout:  # its tables and progress: progress here (stdout holds the merged table)
                print(f"  [{backend}] {line}", end="", file=sys.stderr, flush=True)
        if out.is_file():
            return rows_from_json(json.loads(out.read_text()), backend)
    why = f"the {backend} process ended with status {done.returncode} before writing its results (its output is above)"
    return {name: [Row("process", why, "-", False)] for name in args.pairs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    here = keras.backend.backend()
    results = {b: run_here(args) if b == here else run_elsewhere(b, args) for b in args.backends}
    print(backend_tables(results), flush=True)
    if args.json:
        write_text(args.json, to_json(results) + "\n")
    bad = failed_backends(results)
    print(f"{len(bad)} failed: " + "; ".join(bad) if bad else f"all checks passed on {', '.join(args.backends)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
