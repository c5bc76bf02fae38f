"""The one-change-at-a-time ablation ladder: from the specified CNN to the improved recipe.

    python -m experiments.ablation --dataset mnist --budget smoke          # minutes: does every step run?
    python -m experiments.ablation --dataset mnist --budget standard       # all the data, each step's own epochs
    python -m experiments.ablation --dataset mnist --budget full           # 3 seeds (0, 1, 2), full epochs
    python -m experiments.ablation --dataset cifar10 --budget full --seeds 1   # ~3 h on 2 CPU cores
    python -m experiments.ablation --dataset mnist --framework keras --budget smoke
    python -m experiments.ablation --resume runs/ablation/mnist_full_lightning   # go on after an interruption

A ladder is the folder configs/ablation/<dataset>/: ``00_base.yaml`` is a complete LightningCLI config and
every later file changes one thing (its first comment line says what). Step k trains the base with the
overlays of the steps kept so far plus its own, for every seed, through lightning_impl.train.main (or the
Keras twin, keras_ref.train.train).

The keep rule (``decide``): each run of a step is paired with the run of the same seed of the last kept step;
both were selected and scored on the same validation images, so McNemar's exact test on the images only one of
them gets right (pooled over the seeds, core.paired) says whether the step changed anything beyond noise. A
step is kept when it gets more of those images right and p < ALPHA; a positive or negative difference with
p >= ALPHA is "within noise" and the tie goes to the last kept step (the simpler, cheaper recipe: the step is
dropped). ``--keep-all`` keeps every step. Test accuracy is read once per run, for the report only. Speed-only
changes (precision, memory layout) are no steps: they change no accuracy, so a ladder could only credit them with
noise; every step leaves them to the machine and docs/performance.md measures them.

Writes, in <runs-dir>/ablation/<dataset>_<budget>_<framework>/: ladder.md, ladder.csv, ladder.png,
results.json (every run), ladder.json (the options it was started with) and configs/ (the merged config of
every step). The same ladder also writes the improved recipes: ``--resume LADDER_DIR --write-config FILE`` saves
the merged config of the steps that ladder kept, its header naming them and why each other step is left out;
``--steps 0,1,... --write-config FILE`` writes a chain of chosen steps instead (its header says so).

results.json is rewritten after every run, so an interrupted ladder loses at most the run in progress:
``--resume LADDER_DIR`` goes on in that folder with its own options, reusing every finished run whose step,
seed, merged config, epochs and share of the data are unchanged (a ladder of hours, over several sittings).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from core import budgets, configs, flags, plots, tables
from core.datasets import SPECS
from core.runs import UsageError, data_errors, fail, read_record, write_json, write_text
from core.paired import Paired, mcnemar
from experiments.numbers import mean_std, p_text, plural, pp_mean_std


def ladders() -> Path:
    return configs.folder() / "ablation"


@dataclass(frozen=True)
class Step:
    name: str  # file stem, e.g. 04_depth_width
    change: str  # the file's first comment line
    overlay: dict


def load_ladder(dataset: str) -> list[Step]:
    folder = ladders() / dataset
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UsageError(f"no ladder for {dataset!r} (expected YAML files in {folder})")
    steps = []
    for f in files:
        text = f.read_text()
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        change = first.lstrip("# ").strip() if first.startswith("#") else f.stem
        overlay = yaml.safe_load(text) or {}
        if "ablation" in overlay:
            raise UsageError(f"{f}: a step has no 'ablation' section: every step is judged by the one "
                             "paired rule (experiments.ablation), and a speed-only change (precision, memory layout) is no step at all "
                             "(docs/performance.md measures those)")
        steps.append(Step(f.stem, change, overlay))
    return steps


def merged_config(steps: list[Step]) -> dict:
    config: dict = {}
    for step in steps:
        config = configs.merge(config, step.overlay)
    return config


def run_lightning(config_path: Path, seed: int, epochs: int | None, train_fraction: float, out: Path, name: str) -> dict:
    from lightning_impl.train import main as train_main

    args = [
        "--config", str(config_path),
        "--seed_everything", str(seed),
        "--trainer.logger.init_args.save_dir", str(out / "runs"),
        "--trainer.logger.init_args.name", name,
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]
    if epochs is not None:
        args += ["--trainer.max_epochs", str(epochs)]
    if train_fraction < 1.0:
        args += ["--trainer.limit_train_batches", str(train_fraction)]
    return train_main(args)


def run_keras(config: dict, seed: int, epochs: int | None, train_fraction: float, out: Path, name: str) -> dict:
    from keras_ref.recipes import classifier_recipe
    from keras_ref.train import train

    recipe = {**classifier_recipe(config), "seed": seed, "name": name}
    if epochs is not None:
        recipe["epochs"] = epochs
    return train(recipe, runs_dir=str(out / "runs"), verbose=0, limit_train=train_fraction if train_fraction < 1 else None)


def same_in_keras(config: dict, previous: dict) -> bool:
    from keras_ref.recipes import classifier_recipe

    return classifier_recipe(config) == classifier_recipe(previous)


def same_on_this_machine(config: dict, previous: dict) -> bool:
    """Does ``config`` train exactly what ``previous`` trains here, once an unset precision is resolved for this
    machine? (The bf16 step asks for bf16 only where it is native: elsewhere it is the previous step.)"""
    from core.precision import resolve

    def effective(c: dict) -> dict:
        trainer = c.get("trainer", {})
        precision = resolve(trainer.get("precision"), trainer.get("accelerator")) if "precision" in trainer else "32-true"
        return {**c, "trainer": {**trainer, "precision": precision}}

    return effective(config) == effective(previous)


def run_key(step: str, seed: int, config: dict, epochs: int | None, train_fraction: float, framework: str) -> str:
    """What makes two runs the same run: a finished one with this key is reused by --resume."""
    text = json.dumps([step, seed, config, epochs, train_fraction, framework], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_runs(out: Path, resume: bool) -> dict[str, dict]:
    path = out / "results.json"
    if not path.is_file():
        return {}
    if not resume:
        raise UsageError(f"{out} already holds a ladder (results.json); go on with it with --resume {out} "
                         "(finished runs are reused), or pass another --runs-dir")
    return {r["key"]: r for r in ladder_runs(out) if "key" in r}


def ladder_runs(out: Path) -> list[dict]:
    """Every run a ladder folder's results.json records, in the order they ran (none: an empty list)."""
    path = out / "results.json"
    if not path.is_file():
        return []
    try:
        runs = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}: not JSON ({err}); delete it to run the ladder's steps again") from None
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise UsageError(f"{path}: not a list of runs; delete it to run the ladder's steps again")
    return runs


ALPHA = 0.05  # the keep rule's significance level: a step must beat the last kept step with p below it
RULE = ("each step's runs are paired with the last kept step's runs of the same seeds on the validation images, and "
        "McNemar's exact test on the images only one of them gets right (pooled over seeds) decides: a step is kept "
        f"when it gets more of them right with p < {ALPHA:g}; otherwise it is within noise (or worse) and the last kept "
        "step stays, the tie going to the simpler recipe.")


def paired_cells(row: dict) -> list[str]:
    """A ladder row's paired test as table cells: images right only in this step / only in the kept one, and p."""
    new, old, p = (row.get(k, "") for k in ("val_right_only_new", "val_right_only_kept", "p_value"))
    try:
        new, old, p = float(new), float(old), float(p)
    except (TypeError, ValueError):
        return ["", ""]
    if p != p:
        return ["", ""]
    return [f"{new:.0f} / {old:.0f}", p_text(p)]


def is_kept(decision: str) -> bool:
    """Is a ladder row's step in the chain (the first, a kept one, one that changes nothing here)?"""
    return decision == "first" or decision.startswith("kept") or decision.startswith("same")


def decide(step: Step, results: list[dict], parent: list[dict], val_images: int) -> tuple[str, Paired]:
    """The keep rule: this step's runs against the last kept step's runs of the same seeds, paired on the
    validation images (McNemar, pooled over the seeds). Returns the decision (kept, within noise, worse) and the
    test: a step is kept only when it is better beyond noise; within noise the last kept step stays (the tie goes
    to the simpler recipe)."""
    by_seed = {r["seed"]: r for r in parent}
    pairs = [(by_seed[r["seed"]], r) for r in results if r["seed"] in by_seed]
    missing = [r["step"] for pair in pairs for r in pair if "val_errors" not in r]
    if not pairs or missing:
        raise UsageError(f"step {step.name}: the paired keep rule needs runs of the same seeds that record their "
                         f"validation errors ({'no seed in common' if not pairs else 'not recorded by ' + ', '.join(sorted(set(missing)))}); "
                         "runs of an older version of the project: start a new ladder with another --runs-dir")
    test = mcnemar([a["val_errors"] for a, _ in pairs], [b["val_errors"] for _, b in pairs], val_images)
    significant = test.p < ALPHA
    if significant and test.gain < 0:
        return "worse", test
    if significant and test.gain > 0:
        return "kept", test
    return "within noise", test


def validation_images(dataset: str, config: dict, results: list[dict]) -> int:
    """The size of the validation split the step's runs were selected on: as recorded by the runs, else derived."""
    recorded = [r["val_images"] for r in results if r.get("val_images")]
    if recorded:
        return min(recorded)
    if dataset not in SPECS:
        raise UsageError(f"the runs of this {dataset} ladder do not record val_images; rerun them "
                         "(a folder of earlier runs: start a new one with another --runs-dir)")
    fraction = config.get("data", {}).get("init_args", {}).get("val_fraction", 0.1)
    return math.ceil(SPECS[dataset].train_size * fraction)  # sklearn's stratified split rounds the held-out part up


ROW_NUMBERS = ("test_acc_mean", "test_acc_std", "val_acc_mean", "val_acc_std", "delta_val", "val_right_only_new",
               "val_right_only_kept", "p_value", "s_per_epoch")


def run_ladder(dataset: str, budget: str, seeds: int, epochs: int | None, framework: str, keep_all: bool,
               out: Path, only: list[int] | None = None, resume: bool = False, first_seed: int = 0) -> list[dict]:
    steps = load_ladder(dataset)
    spec = budgets.ladder(budget, dataset)
    epochs = epochs if epochs is not None else spec["epochs"]
    done = finished_runs(out, resume)
    (out / "configs").mkdir(parents=True, exist_ok=True)
    kept: list[Step] = []
    best: tuple[float, float] | None = None  # (mean, std) validation accuracy of the last kept step that was run
    best_runs: list[dict] = []  # and its runs, one per seed: each step is paired with them (decide)
    rows, runs = [], []
    started = time.perf_counter()
    for i, step in enumerate(steps):
        chain = kept + [step]
        config = merged_config(chain)
        config_path = out / "configs" / f"{step.name}.yaml"
        write_text(config_path, yaml.safe_dump(config, sort_keys=False))
        if only is not None and i not in only:
            kept.append(step)  # skipped steps are assumed kept, so later steps still build on them
            continue
        same = (same_in_keras if framework == "keras" else same_on_this_machine)
        if kept and same(config, merged_config(kept)):
            where = "in Keras" if framework == "keras" else "on this machine"
            print(f"[ablation] {dataset} {framework} step {i}/{len(steps) - 1} {step.name}: changes nothing that trains "
                  f"{where} (the precision it asks for resolves to the same), not run", flush=True)
            kept.append(step)
            rows.append({**{k: float("nan") for k in ROW_NUMBERS}, "step": step.name, "change": step.change,
                         "parameters": rows[-1]["parameters"] if rows else 0, "seeds": 0, "epochs": epochs or 0,
                         "decision": f"same {where}", "wall_s": 0.0})
            write_reports(rows, dataset, budget, framework, epochs, spec["train_fraction"], out)
            continue
        results = []
        for seed in range(first_seed, first_seed + seeds):
            key = run_key(step.name, seed, config, epochs, spec["train_fraction"], framework)
            if key in done:
                print(f"[ablation] {dataset} {framework} step {i}/{len(steps) - 1} {step.name} seed {seed}: "
                      "finished earlier, reused", flush=True)
                results.append(done[key])
                runs.append(done[key])
                continue
            print(f"[ablation] {dataset} {framework} step {i}/{len(steps) - 1} {step.name} seed {seed} "
                  f"({time.perf_counter() - started:.0f} s elapsed)", flush=True)
            t0 = time.perf_counter()
            if framework == "lightning":
                m = run_lightning(config_path, seed, epochs, spec["train_fraction"], out, step.name)
            else:
                m = run_keras(config, seed, epochs, spec["train_fraction"], out, step.name)
            m = {**m, "step": step.name, "seed": seed, "key": key, "wall_s": time.perf_counter() - t0}
            results.append(m)
            runs.append(m)
            write_runs(runs, done, out)
        val_mean, val_std = mean_std([r["best_val_acc"] for r in results])
        test_mean, test_std = mean_std([r["test_acc"] for r in results])
        first = best is None
        decision, paired = "first", None
        if not first:
            decision, paired = decide(step, results, best_runs, validation_images(dataset, config, results))
            if keep_all and decision != "kept":
                decision = f"kept (--keep-all; {decision})"
        delta = float("nan") if first else val_mean - best[0]
        if decision.startswith("kept") or first:
            kept, best, best_runs = chain, (val_mean, val_std), results
        epoch_times = [t for r in results for t in r["epoch_time_s"]]
        rows.append({
            "step": step.name, "change": step.change, "parameters": results[0]["parameters"],
            "seeds": len(results), "epochs": results[0]["epochs"],
            "test_acc_mean": test_mean, "test_acc_std": test_std, "val_acc_mean": val_mean, "val_acc_std": val_std,
            "delta_val": delta,
            # the paired test against the last kept step: images right only in this step's runs, only in its
            # runs, and McNemar's p (decide)
            "val_right_only_new": paired.new_only if paired else float("nan"),
            "val_right_only_kept": paired.old_only if paired else float("nan"),
            "p_value": paired.p if paired else float("nan"),
            "decision": decision,
            # the median: one epoch slowed by another job on a shared machine should not move it
            "s_per_epoch": statistics.median(epoch_times) if epoch_times else float("nan"),
            "wall_s": sum(r["wall_s"] for r in results),
        })
        write_reports(rows, dataset, budget, framework, epochs, spec["train_fraction"], out)
    return rows


def write_runs(runs: list[dict], earlier: dict[str, dict], out: Path) -> None:
    """Every run so far, plus earlier finished ones not (yet) reused; replaced atomically."""
    keys = {r.get("key") for r in runs}
    everything = runs + [r for k, r in earlier.items() if k not in keys]
    write_json(out / "results.json", everything)


def write_reports(rows: list[dict], dataset: str, budget: str, framework: str,
                  epochs: int | None, train_fraction: float, out: Path) -> None:
    with open(out / "ladder.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Ablation ladder: {dataset}, {framework}, budget {budget}",
        "",
        f"Epochs per run: {epochs if epochs is not None else 'as in each config'}; share of the training split "
        f"per epoch: {train_fraction:g}. Test accuracy of the checkpoint with the best validation accuracy; "
        f"decisions use validation only: {RULE} Mean ± sample std over seeds; s/epoch is the median over every "
        "epoch of every seed.",
        "",
    ]
    lines += tables.markdown(
        ["step", "change", "params", "test acc %", "val acc %", "Δ val (pp)", "right only here / in kept (val)",
         "McNemar p", "decision", "epochs", "s/epoch", "wall s"],
        [[r["step"], r["change"], f"{r['parameters']:,}", pp_mean_std(r["test_acc_mean"], r["test_acc_std"]),
          pp_mean_std(r["val_acc_mean"], r["val_acc_std"]), "" if r["delta_val"] != r["delta_val"] else f"{100 * r['delta_val']:+.2f}",
          *paired_cells(r), r["decision"], r["epochs"], "—" if r["s_per_epoch"] != r["s_per_epoch"] else f"{r['s_per_epoch']:.1f}",
          f"{r['wall_s']:.0f}"] for r in rows], align="llrrrrrrlrrr")
    write_text(out / "ladder.md", "\n".join(lines) + "\n")
    plots.ladder(rows, [is_kept(r["decision"]) for r in rows], out / "ladder.png", f"{dataset} ({framework}, {budget})")


OPTIONS = ("dataset", "budget", "seeds", "seed", "epochs", "framework", "keep_all", "steps")  # kept in ladder.json


STEPS_LINE = "# steps: "  # the header line of a generated recipe that names the steps it holds


def kept_steps(ladder_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The steps a finished ladder kept, in order, and why each other step is left out (from its ladder.csv)."""
    path = ladder_dir / "ladder.csv"
    if not path.is_file():
        raise UsageError(f"{ladder_dir}: no ladder.csv (not a ladder folder, or no step finished yet)")
    kept, left_out = [], {}
    for row in csv.DictReader(open(path)):
        if is_kept(row["decision"]):
            kept.append(row["step"])
        else:
            delta = float(row["delta_val"])
            p = paired_cells(row)[1]
            left_out[row["step"]] = (f"{row['decision']}, {100 * delta:+.2f} pp validation"
                                     + (f", McNemar p {p}" if p else "") + f", {plural(row['seeds'], 'seed')}")
    return kept, left_out


def steps_of(config_text: str) -> list[str]:
    """The steps a generated recipe names in its header (STEPS_LINE)."""
    for line in config_text.splitlines():
        if line.startswith(STEPS_LINE):
            return line[len(STEPS_LINE):].split()
    raise UsageError(f"no '{STEPS_LINE.strip()}' line: not a recipe written by --write-config")


def write_final_config(dataset: str, path: Path, ladder_dir: Path | None = None, chosen: list[int] | None = None) -> None:
    """The improved recipe: the merged config of the steps the ladder in ``ladder_dir`` kept, or of the ``chosen``
    step indices, or (neither) of every step; headed by the steps it holds and why the others are left out."""
    steps = load_ladder(dataset)
    names = [s.name for s in steps]
    if ladder_dir is not None:
        kept, left_out = kept_steps(ladder_dir)
    elif chosen is not None:
        kept = [names[i] for i in chosen]
        left_out = {n: "not chosen: --steps" for n in names if n not in kept}
    else:
        kept, left_out = names, {}
    unknown = [k for k in kept + list(left_out) if k not in names]
    if unknown or len(kept) + len(left_out) != len(steps):
        raise UsageError(f"{ladder_dir} is a ladder of other steps than configs/ablation/{dataset}/ "
                         f"({', '.join(unknown) or 'steps missing'}): run it again on this ladder")
    source = (f"--resume {ladder_dir}" if ladder_dir is not None else
              f"--steps {','.join(map(str, chosen))}" if chosen is not None else "--keep-all")
    header = (f"# The improved {dataset} recipe: the steps of the ablation ladder configs/ablation/{dataset}/ named below, merged.\n"
              f"# Generated, not edited: python -m experiments.ablation --dataset {dataset} {source} --write-config {path}\n"
              f"#   python -m lightning_impl.train --config {path}\n"
              f"#   python -m keras_ref.train --config {path}      # the Keras twin, same recipe\n"
              f"{STEPS_LINE}{' '.join(kept)}\n"
              + "".join(f"# left out: {name} ({why})\n" for name, why in left_out.items()))
    chain = [s for s in steps if s.name in kept]
    write_text(path, header + yaml.safe_dump(merged_config(chain), sort_keys=False))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(d.name for d in ladders().iterdir() if d.is_dir()))
    p.add_argument("--budget", choices=budgets.NAMES, help="configs/experiments/budgets.yaml (default: full)")
    p.add_argument("--framework", choices=("lightning", "keras"), help="default: lightning")
    p.add_argument("--keep-all", action="store_true", default=None, help="keep every step, whatever validation says")
    p.add_argument("--steps", help="comma-separated step indices to run (others are assumed kept), e.g. 0,5")
    p.add_argument("--write-config", type=Path, metavar="FILE",
                   help="write the recipe of the steps the ladder --resume LADDER_DIR kept (or of --steps, or with "
                        "--keep-all of every step) to FILE and stop")
    flags.add(p, "seeds", "seed", "epochs", "runs_dir", "resume")
    args = p.parse_args(argv)
    if args.steps is not None:
        try:
            args.steps = sorted({int(s) for s in args.steps.split(",")})
        except ValueError:
            p.error(f"--steps {args.steps}: expected comma-separated step indices, e.g. 0,5")
    stored = {}
    if args.resume is not None:
        path = args.resume / "ladder.json"
        if not path.is_file():
            p.error(f"--resume {args.resume}: not a ladder folder (no ladder.json)")
        try:
            stored = read_record(path, "ladder record")
        except UsageError as err:
            p.error(str(err))
        clash = [k for k in ("dataset", "budget", "framework") if getattr(args, k) not in (None, stored[k])]
        if clash:
            p.error(f"--{clash[0]} {getattr(args, clash[0])}: the ladder in {args.resume} was started with {stored[clash[0]]}")
    for key in OPTIONS:  # given > stored > default
        if getattr(args, key) is None:
            setattr(args, key, stored.get(key))
    args.budget, args.framework, args.seed = args.budget or "full", args.framework or "lightning", args.seed or 0
    args.keep_all = bool(args.keep_all)
    if args.dataset is None:
        p.error("--dataset is required (or --resume LADDER_DIR)")
    steps = load_ladder(args.dataset)
    if args.steps and not all(0 <= i < len(steps) for i in args.steps):
        p.error(f"--steps: the {args.dataset} ladder has steps 0..{len(steps) - 1}")
    if args.seeds is None:
        args.seeds = budgets.ladder(args.budget, args.dataset)["seeds"]
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    with data_errors():
        return _main(argv)


def _main(argv: list[str] | None) -> list[dict]:
    args = parse_args(argv)
    if args.write_config:
        if args.resume is None and not args.keep_all and args.steps is None:
            fail("--write-config needs the ladder whose decisions it writes (--resume LADDER_DIR), the steps to "
                 "hold (--steps 0,1,...), or --keep-all")
        write_final_config(args.dataset, args.write_config, args.resume, None if args.resume else args.steps)
        print(args.write_config.resolve())
        return []
    out = args.resume or Path(args.runs_dir) / "ablation" / f"{args.dataset}_{args.budget}_{args.framework}"
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume and (out / "results.json").is_file():
        fail(f"{out} already holds a ladder; go on with it with --resume {out}, or pass another --runs-dir")
    write_json(out / "ladder.json", {k: getattr(args, k) for k in OPTIONS})
    rows = run_ladder(args.dataset, args.budget, args.seeds, args.epochs, args.framework, args.keep_all, out,
                      args.steps, args.resume is not None, args.seed)
    print((out / "ladder.md").read_text())
    print(out.resolve())
    return rows


if __name__ == "__main__":
    main()
