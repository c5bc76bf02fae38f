"""Test score and wall time of whole training runs, recipe by recipe, seed by seed: the fast-recipe benchmark.

    python benchmarks/recipes.py                                                  # mnist_improved, Lightning, seeds 0 1 2
    python benchmarks/recipes.py --recipes mnist_improved --frameworks lightning keras --json results/benchmarks/recipes.json
    python benchmarks/recipes.py --recipes cifar10_whitened --seed 1 --seeds 2 --add --json results/benchmarks/recipes.json
    python benchmarks/recipes.py --recipes denoise_reference --frameworks lightning keras --json results/benchmarks/recipes.json
    python benchmarks/recipes.py --recipes mnist_improved --frameworks keras --backend jax --seeds 1
    python benchmarks/recipes.py --recipes mnist_specified_cnn --epochs 1 --limit-train 640 --seeds 1   # smoke run

Each run is what a user types: ``python -m lightning_impl.train --config configs/<recipe>.yaml --seed_everything S``
(or ``python -m keras_ref.train --config ... --seed S``; a denoiser's recipe, the one with noise in its data
section, runs ``lightning_impl.train_denoiser`` and ``keras_ref.train_denoiser``), in its own process, one after
the other, and ``wall_s`` is that process' wall time from start to exit: imports, data loading, training,
validation, the test of the best checkpoint and the figures. ``train_s`` and images/s are the run's own record
(metrics.json). The table gives mean ± sample std of the test score over the seeds (accuracy; PSNR in dB for a
denoiser), the mean wall time per run and the machine: the CPU model, whether it computes bf16 natively (AMX) and
the precision the run resolved to.

Timings depend on everything else running on the machine: run it alone, compare figures from one sitting,
and never assert on them in a test (tests/test_benchmarks.py runs it on a tiny budget for its plumbing only).
``--json`` appends every run to the file's ``runs``: a re-measured recipe replaces its earlier runs, or with
``--add`` only the earlier runs of the seeds it measured again (seeds measured in several sittings). So the
README's and docs' figures are rendered from one committed file: ``--update-docs`` rewrites the table in
docs/performance.md (between its markers) from the JSON file, without training.

    python benchmarks/recipes.py --json results/benchmarks/recipes.json --update-docs   # render only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core import configs, flags, tables
from core.precision import cpu_has_native_bf16, resolve
from core.runs import write_json
from experiments.docs_sync import rewrite_block
from experiments.numbers import mean_std, pp_mean_std
from experiments.records import environment

ROOT = Path(__file__).resolve().parent.parent
ENTRY = {"lightning": "lightning_impl.train", "keras": "keras_ref.train"}
DENOISER_ENTRY = {"lightning": "lightning_impl.train_denoiser", "keras": "keras_ref.train_denoiser"}
# What a run of each task is scored by (metrics.json), and how the table writes a mean and std of it.
SCORE = {"classifier": "test_acc", "denoiser": "test_psnr"}


def task_of(recipe: str) -> str:
    """A denoiser's recipe has noise in its data section (data.sigma); every other recipe trains a classifier."""
    return "denoiser" if "sigma" in configs.load(f"{recipe}.yaml").get("data", {}) else "classifier"


def entry(recipe: str, framework: str) -> str:
    return (DENOISER_ENTRY if task_of(recipe) == "denoiser" else ENTRY)[framework]


def machine() -> dict:
    """Where the runs ran: the report's environment (experiments.records), with whether bf16 is native here."""
    env = environment()
    return {"cpu": env["cpu"], "native_bf16": cpu_has_native_bf16(), "cores": env["cpu_cores"],
            "threads": env["torch_threads"], "torch": env["packages"]["torch"], "python": env["python"],
            "gpu": env["gpu"][0] if env["gpu"] else None}


def command(recipe: str, framework: str, seed: int, runs_dir: str, backend: str | None = None,
            epochs: int | None = None, limit_train: int | None = None) -> list[str]:
    """The command line of one run; ``epochs`` and ``limit_train`` (images) shorten it, for smoke runs."""
    config = str(configs.folder() / f"{recipe}.yaml")
    cmd = [sys.executable, "-m", entry(recipe, framework), "--config", config]
    if framework == "lightning":
        cmd += ["--seed_everything", str(seed), "--trainer.logger.init_args.save_dir", runs_dir,
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
        cmd += ["--trainer.max_epochs", str(epochs)] if epochs else []
        if limit_train and task_of(recipe) == "denoiser":  # the denoisers' DataModule takes a count of images
            cmd += ["--data.train_limit", str(limit_train)]
        elif limit_train:
            batch = configs.load(f"{recipe}.yaml")["data"]["init_args"]["batch_size"]
            cmd += ["--trainer.limit_train_batches", str(max(1, limit_train // batch))]
    else:
        cmd += ["--seed", str(seed), "--runs-dir", runs_dir, "--quiet"] + (["--backend", backend] if backend else [])
        cmd += (["--epochs", str(epochs)] if epochs else []) + (["--limit-train", str(limit_train)] if limit_train else [])
    return cmd


def run_once(cmd: list[str], log: Path) -> tuple[dict, float]:
    """Run one training process; (its metrics.json, wall seconds). Its output goes to ``log``; a failure says where."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - t0
    lines = [ln.strip() for ln in log.read_text().splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines or not (Path(lines[-1]) / "metrics.json").is_file():
        tail = "\n".join(lines[-15:])
        raise SystemExit(f"benchmark run failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}\nfull log: {log}")
    return json.loads((Path(lines[-1]) / "metrics.json").read_text()), wall


def precision_of(recipe: str, framework: str) -> str:
    """What the run computes in: Lightning's resolved precision, or the Keras twin's dtype policy."""
    config = configs.load(f"{recipe}.yaml")
    if framework == "keras":
        from keras_ref.recipes import classifier_recipe, denoiser_recipe

        return (denoiser_recipe if task_of(recipe) == "denoiser" else classifier_recipe)(config)["dtype_policy"]
    trainer = config.get("trainer", {})
    return resolve(trainer.get("precision"), trainer.get("accelerator"))


def where(m: dict) -> str:
    """A machine as the tables name it: CPU model, whether it computes bf16 natively, threads, GPU."""
    return f"{m['cpu']}, {'AMX' if m['native_bf16'] else 'no AMX'}, {m['threads']} threads" + (f", {m['gpu']}" if m.get("gpu") else "")


def key(r: dict) -> tuple:
    """What one row of the table stands for: a recipe in one framework (and backend) on one kind of machine. The
    same recipe timed on an AMX CPU and on one without is two rows, never one mean of both."""
    return r["recipe"], r["framework"], r.get("backend") or "", where(r["machine"])


def summarise(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(key(r), []).append(r)
    rows = []
    for (recipe, framework, backend, _), rs in groups.items():
        metric = score_of(rs[0])
        acc = [r[metric] for r in rs]
        rows.append({"metric": metric,
            "recipe": recipe, "framework": framework + (f" ({backend})" if backend else ""), "parameters": rs[0]["parameters"],
            "epochs": rs[0]["epochs"], "seeds": [r["seed"] for r in rs], "test_mean": statistics.fmean(acc),
            "test_std": statistics.stdev(acc) if len(acc) > 1 else None, "test_min": min(acc),
            "wall_s": statistics.fmean(r["wall_s"] for r in rs), "wall_max_s": max(r["wall_s"] for r in rs),
            "images_per_s": statistics.median(r["images_per_s"] for r in rs), "precision": rs[0]["precision"],
            "machine": rs[0]["machine"]})
    return rows


def score_of(run: dict) -> str:
    """The metrics.json key a run is scored by: test PSNR for a denoiser, test accuracy for a classifier."""
    return "test_psnr" if "test_psnr" in run else "test_acc"


def compared(lightning: dict[int, dict], keras: dict[int, dict]):
    """One recipe's runs in each framework, by seed (each run: test_acc, dataset, test_errors when it kept them):
    the cells [Lightning, Keras, Δ (Keras − Lightning, pp), Welch's p over seeds], the seeds both ran with their
    errors kept, and McNemar's exact test pooled over those seed pairs (core.paired; None without a pair). A seed's
    two runs share the epoch order, so they are a pair on the same test images."""
    from scipy import stats

    from core.datasets import SPECS
    from core.paired import mcnemar

    acc = {fw: [r["test_acc"] for r in rs.values()] for fw, rs in (("lightning", lightning), ("keras", keras))}
    welch = (f"{stats.ttest_ind(acc['lightning'], acc['keras'], equal_var=False).pvalue:.2f}"
             if min(len(a) for a in acc.values()) > 1 else "—")
    seeds = [s for s in lightning if s in keras
             and lightning[s].get("test_errors") is not None and keras[s].get("test_errors") is not None]
    test = mcnemar([lightning[s]["test_errors"] for s in seeds], [keras[s]["test_errors"] for s in seeds],
                   SPECS[lightning[seeds[0]]["dataset"]].test_size) if seeds else None
    (ml, sl), (mk, sk) = mean_std(acc["lightning"]), mean_std(acc["keras"])
    cells = [acc_text(ml, sl, len(acc["lightning"])), acc_text(mk, sk, len(acc["keras"])), f"{100 * (mk - ml):+.2f}", welch]
    return cells, seeds, test


def gaps(runs: list[dict]) -> list[list[str]]:
    """Per recipe trained in both frameworks on one machine: Lightning's and Keras' test accuracy over seeds, their
    difference, a Welch test over seeds (scipy.stats.ttest_ind, unequal variances; two runs a side at least) and
    McNemar's exact test on the same test images, pooled over the seeds both frameworks ran (``compared``): is the
    gap more than noise?"""
    out = []
    for recipe, machine in dict.fromkeys((r["recipe"], where(r["machine"])) for r in runs):
        same = [r for r in runs if r["recipe"] == recipe and where(r["machine"]) == machine and not r.get("backend")
                and score_of(r) == "test_acc"]  # classifiers: paired on the test images they get right
        by = {fw: {r["seed"]: r for r in same if r["framework"] == fw} for fw in ("lightning", "keras")}
        if not all(by.values()):
            continue
        cells, seeds, test = compared(by["lightning"], by["keras"])
        paired = ([f"{test.old_only} / {test.new_only} (seeds {', '.join(map(str, seeds))})", f"{test.p:.2f}"]
                  if test else ["—", "—"])
        out.append([recipe, machine, *cells, *paired])
    return out


def acc_text(mean: float, std: float | None, n: int) -> str:
    """Test accuracy over n seeds as the tables write it: '99.60 ± 0.14 (n=2)' (no spread for one seed)."""
    return f"{pp_mean_std(mean, float('nan') if std is None else std)} (n={n})"


def score_text(row: dict) -> str:
    """A row's test score over its seeds: accuracy in % ('99.60 ± 0.14 % (n=2)'), PSNR in dB ('19.31 ± 0.05 dB')."""
    n = len(row["seeds"])
    if row.get("metric", "test_acc") == "test_acc":
        return acc_text(row["test_mean"], row["test_std"], n).replace(" (n=", " % (n=", 1)
    spread = "" if row["test_std"] is None else f" ± {row['test_std']:.2f}"
    return f"{row['test_mean']:.2f}{spread} dB (n={n})"


def table(rows: list[dict]) -> list[str]:
    return tables.markdown(
        ["recipe", "framework", "params", "epochs", "test score (mean ± std)", "wall per run", "images/s", "precision", "machine"],
        [[r["recipe"], r["framework"], f"{r['parameters']:,}", r["epochs"], score_text(r),
          f"{r['wall_s'] / 60:.1f} min (max {r['wall_max_s'] / 60:.1f})", f"{r['images_per_s']:,.0f}", r["precision"],
          where(r["machine"])] for r in rows], align="llrrrrrll")


DOCS = ROOT / "docs" / "performance.md"
def markers(json_path: Path) -> tuple[str, str]:
    """The page's begin and end lines of the block rendered from ``json_path``: one block per committed file, so a
    sitting measured apart (e.g. results/benchmarks/keras_backends.json, every Keras backend in one sitting) keeps
    its own table instead of mixing its rows into another sitting's."""
    name = Path(json_path).name
    return (f"<!-- recipe benchmark: generated by python benchmarks/recipes.py --json results/benchmarks/{name} "
            f"--update-docs -->", f"<!-- end of recipe benchmark {name} -->")


def docs_block(results: dict, json_name: str = "recipes.json") -> str:
    """The page's table of the committed benchmark file, with the command behind every row."""
    rows = results["summary"]
    commands = sorted({r["command"] for r in results["runs"]})
    gap = gaps(results["runs"])
    gap_lines = ["", "Lightning against its Keras twin, same recipe, seeds and machine (Δ = Keras − Lightning, pp; "
                 "test images right only in Lightning / only in Keras, pooled over the seeds both ran, and McNemar's "
                 "exact test on them):", "",
                 *tables.markdown(["recipe", "machine", "Lightning", "Keras", "Δ", "p (Welch)",
                                   "right only L / only K", "p (McNemar)"], gap, align="llrrrrrr")] if gap else []
    now = {recipe: config_sha(recipe) for recipe in {r["recipe"] for r in results["runs"]}}  # each file hashed once
    older = sorted({r["recipe"] for r in results["runs"] if r.get("config_sha") != now[r["recipe"]]})
    older_lines = ["", "Measured on an earlier text of " + ", ".join(f"`configs/{r}.yaml`" for r in older)
                   + ": the recipe has changed since, and its rows are not what it trains now; re-measure them."] if older else []
    begin, end = markers(json_name)
    return "\n".join([begin, "", *table(rows), *older_lines, *gap_lines, "",
                      "Each run is one process of its command with `--seed_everything S` (Lightning) or `--seed S` "
                      "(Keras; `--backend B` where the framework column names one), measured by `python "
                      f"benchmarks/recipes.py --recipes ... --frameworks ... --seeds N --json results/benchmarks/{json_name}`:",
                      "", *[f"- `{c}`" for c in commands], "", end])


def update_docs(json_path: Path, page: Path = DOCS) -> bool:
    """Rewrite the page's generated block from ``json_path`` (atomically, as the report's --update-docs does);
    whether the page changed."""
    begin, end = markers(json_path)
    return rewrite_block(page, begin, end, docs_block(json.loads(json_path.read_text()), Path(json_path).name))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=["mnist_improved"], help="config names in configs/ (default: %(default)s)")
    p.add_argument("--frameworks", nargs="+", choices=sorted(ENTRY), default=["lightning"])
    p.add_argument("--update-docs", action="store_true",
                   help="render docs/performance.md's table from --json FILE and stop (no training)")
    p.add_argument("--add", action="store_true",
                   help="add these seeds' runs to the row's earlier runs in --json FILE (an earlier run of the same "
                        "seed is replaced) instead of replacing the row: seeds measured in several sittings")
    flags.add(p, "seeds", "seed", "backend", "epochs", "limit_train", "json")
    args = p.parse_args(argv)
    if args.add and not args.json:
        p.error("--add adds runs to a benchmark file's: give --json FILE")
    args.seeds = 3 if args.seeds is None else args.seeds
    args.seed = 0 if args.seed is None else args.seed
    for recipe in args.recipes:
        if not (configs.folder() / f"{recipe}.yaml").is_file():
            p.error(f"--recipes {recipe}: no configs/{recipe}.yaml")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.update_docs:
        if not args.json or not Path(args.json).is_file():
            raise SystemExit("--update-docs renders from a benchmark file: --json FILE (an existing one)")
        print(f"{DOCS}: {'updated' if update_docs(Path(args.json)) else 'unchanged'}")
        return []
    info = machine()
    runs = []
    earlier = json.loads(Path(args.json).read_text()).get("runs", []) if args.json and Path(args.json).is_file() else []
    with tempfile.TemporaryDirectory(prefix="recipes_bench_") as tmp:
        for recipe in args.recipes:
            for framework in args.frameworks:
                backend = args.backend if framework == "keras" else None
                precision = precision_of(recipe, framework)
                for seed in range(args.seed, args.seed + args.seeds):
                    cmd = command(recipe, framework, seed, tmp, backend, args.epochs, args.limit_train)
                    shown = " ".join(["python"] + cmd[1:4] + [f"configs/{recipe}.yaml"] + cmd[5:])
                    print(f"[recipes] {recipe} {framework} seed {seed}: {shown}", flush=True)
                    m, wall = run_once(cmd, Path(tmp) / f"{recipe}_{framework}_{seed}.log")
                    ips = m.get("train_images_per_s") or [float("nan")]
                    metric = SCORE[task_of(recipe)]
                    runs.append({"recipe": recipe, "framework": framework, "backend": backend, "seed": seed,
                                 "dataset": m.get("dataset"), "test_errors": m.get("test_errors"),
                                 metric: m[metric], **({"test_ssim": m["test_ssim"]} if "test_ssim" in m else {}),
                                 "parameters": m["parameters"], "epochs": m["epochs"],
                                 "wall_s": wall, "train_s": m.get("train_s"), "images_per_s": statistics.median(ips),
                                 "precision": precision, "machine": info,
                                 "shortened": {"epochs": args.epochs, "limit_train": args.limit_train},
                                 "config_sha": config_sha(recipe),
                                 "command": " ".join(["python", "-m", entry(recipe, framework), "--config",
                                                      f"configs/{recipe}.yaml"])})
                    score = f"{100 * m[metric]:.2f} %" if metric == "test_acc" else f"{m[metric]:.2f} dB PSNR"
                    print(f"[recipes]   test {score}, {wall:.0f} s wall, "
                          f"{statistics.median(ips):,.0f} images/s ({precision})", flush=True)
                    if args.json:  # after every run: an interrupted benchmark keeps what it measured
                        stale = save(Path(args.json), runs, earlier, add=args.add)
                        if stale and len(runs) == 1:
                            names = ", ".join(sorted({r["recipe"] for r in stale}))
                            print(f"[recipes] {args.json}: {len(stale)} earlier run(s) of {names} measured another "
                                  "text of the recipe: dropped", flush=True)
    rows = summarise(runs)
    print("\n".join(table(rows)))
    if args.json:
        print(Path(args.json).resolve())
    return rows


def config_sha(recipe: str) -> str:
    """The recipe's text as it is now, hashed: a run measured another text measured another recipe."""
    return hashlib.sha256((configs.folder() / f"{recipe}.yaml").read_bytes()).hexdigest()[:16]


def save(path: Path, runs: list[dict], earlier: list[dict], add: bool = False) -> list[dict]:
    """The file's earlier runs, but those of a recipe and framework measured now on this kind of machine (with
    ``add``, only those of a seed measured now), and those of an earlier text of a recipe measured now (on any
    machine: they measured another recipe under the same name), plus this benchmark's runs (another machine's runs
    of the same recipe text stay: a row each). Returns the earlier runs dropped because their recipe has changed
    since."""
    def replaced_by(r: dict) -> tuple:  # what a new run replaces: its row's runs, or with ``add`` its seed's run
        return (key(r), r["seed"]) if add else key(r)

    measured = {replaced_by(r) for r in runs}
    current = {r["recipe"]: r["config_sha"] for r in runs}
    stale = [r for r in earlier if r["recipe"] in current and r.get("config_sha") != current[r["recipe"]]]
    kept = [r for r in earlier if replaced_by(r) not in measured and r not in stale]
    write_json(path, {"runs": kept + runs, "summary": summarise(kept + runs)})
    return stale


if __name__ == "__main__":
    main()
