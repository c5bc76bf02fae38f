"""Prove, model by model, that the Lightning and Keras implementations are the same models.

    python -m parity                                  # checks 1-4 for every registered pair (seconds)
    python -m parity --pairs specified_cnn --json parity.json
    python -m parity --accuracy --quick               # + check 5 on the CI budget (1 seed, 1 epoch)
    python -m parity --accuracy --seeds 3 --seed 1 --baseline runs/<baseline run>/metrics.json
    python -m parity --pairs specified_cnn --accuracy --jobs 2 --baseline ...   # frameworks side by side

Prints one table per pair (check, value, bound, result) and exits with status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_impl import flags
from parity.accuracy import DEFAULT_SEEDS, baseline_from, check_accuracy
from parity.checks import CHECKS, run_checks
from parity.registry import all_pairs
from parity.report import failed, table, to_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    pairs = all_pairs()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pairs", nargs="+", default=sorted(pairs), choices=sorted(pairs), metavar="NAME",
                   help=f"model pairs to check, of: {', '.join(sorted(pairs))}")
    p.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS), help="checks 1-4 to run")
    p.add_argument("--accuracy", action="store_true", help="also run check 5 (trains every pair in both frameworks)")
    p.add_argument("--quick", action="store_true", help="check 5 on the CI budget: 1 seed, 1 epoch, the quick band")

    p.add_argument("--baseline", action="append", default=[], metavar="FIGURE|PATH",
                   help="HOG+SVM test accuracy (0.9936 or 99.36) or its metrics.json (python -m parity.baseline); repeatable")
    flags.add(p, "seeds", "seed", "epochs", "runs_dir", "jobs", "verbose", "json", seeds=DEFAULT_SEEDS, seed=0, runs_dir=None)
    args = p.parse_args(argv)
    if args.jobs > 2:
        p.error(f"--jobs {args.jobs}: check 5 runs at most one process per framework (1 or 2)")
    if (args.quick or args.baseline) and not args.accuracy:
        p.error("--quick and --baseline belong to check 5: add --accuracy")
    try:
        args.baselines = [baseline_from(b) for b in args.baseline]
    except ValueError as err:
        p.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = all_pairs()
    results = {}
    for name in args.pairs:
        print(f"[parity] {name}: checks {', '.join(args.checks)}", file=sys.stderr, flush=True)
        rows = run_checks(pairs[name], args.checks)
        if args.accuracy:
            rows += check_accuracy(pairs[name], args.seeds, args.epochs, args.quick, args.baselines, args.runs_dir, args.verbose,
                                   args.jobs == 2, args.seed)
        results[name] = rows
        print(table(name, rows) + "\n", flush=True)
    if args.json:
        args.json.write_text(to_json(results) + "\n")
    bad = failed(results)
    print(f"{len(bad)} failed: " + "; ".join(bad) if bad else "all checks passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
