"""The whole practical in one command: every exercise in both frameworks, then the report.

    python -m experiments.practical                      # --budget smoke: every part, small (does it all run?)
    python -m experiments.practical --budget standard    # the recipes' own runs, short ladders (README: its time)
    python -m experiments.practical --budget full        # 3-seed ladders, the full denoising study: many hours
    python -m experiments.practical --jobs 1             # one part at a time (default: the budget's jobs, 2)

Each part is one command of the project (the same you would type), run in a process of its own: the specified
CNN and the shipped improved recipe (configs/mnist_improved.yaml) over seeds in Lightning and in Keras, HOG + SVM,
the improved-CNN ladders (MNIST, CIFAR-10), the denoising study, the parity checks. Its record (command, the
configs it reads, where its output went) is kept in <runs-dir>/practical/<budget>/parts/, so a second call reuses
every part whose command and configs are unchanged and runs only the rest: an interrupted practical goes on where
it stopped. Then experiments.report writes the report folder (index.html, report.md, figures/, results.json;
<runs-dir>/practical/<budget>/report unless --report DIR). What each budget runs is in
configs/experiments/budgets.yaml, one place for every command's budgets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core import budgets, configs, flags
from core.datasets import DATA_ENV
from core.runs import UsageError, data_errors, fail, read_record, write_json
from experiments.numbers import duration

@dataclass
class Part:
    """One command of the practical. ``kind`` says what it produces (and how the report reads it); ``output``
    is where: a run folder printed on the command's last line, or a file the command is told to write."""

    name: str
    kind: str  # specified | improved | denoiser | baseline | ladder | denoise | parity
    title: str
    argv: list[str]
    configs: list[str] = field(default_factory=list)  # files under configs/ whose text the run depends on
    output_file: str | None = None  # the command writes here (else: the run folder on its last line)
    meta: dict = field(default_factory=dict)
    reads: dict = field(default_factory=dict)  # the budget sections the command reads (configs/experiments/budgets.yaml)

    @property
    def command(self) -> str:
        return shlex.join(["python", "-m", *self.argv])

    runs: str = ""  # the runs folder as written into argv: the key leaves its spelling out

    def key(self) -> str:
        """Same command, same config texts and same budget sections read: the same run (a finished one is reused).
        The runs folder is left out, so the same runs reached as `runs` or by its full path (the notebook) are the
        same runs."""
        texts = [(c, (configs.folder() / c).read_text()) for c in sorted(self.configs)]
        argv = [_placeholder(a, self.runs) for a in self.argv]
        read = [json.dumps(self.reads, sort_keys=True)] if self.reads else []  # none: the key it always had
        return hashlib.sha256(json.dumps([argv, texts, *read]).encode()).hexdigest()[:16]


# How much longer a part takes beside another than alone, before any part has finished to tell (the standard budget
# on the 2-core AMD EPYC: its parts' own times summed to 1 h 52 min two at a time, 1 h 37 min one at a time)
SHARED_PACE = 1.15
SITTING = "sitting.json"  # <runs>/practical/<budget>/: the last call that ran every part (run_all)

def _placeholder(arg: str, runs: str) -> str:
    if runs and (arg == runs or arg.startswith(runs + os.sep)):
        return "<runs>" + arg[len(runs):]
    if arg.endswith(".yaml"):  # a recipe, however it was spelt from the working folder (config_arg)
        shipped = configs.folder().resolve()
        if Path(arg).resolve().is_relative_to(shipped):
            return "<configs>/" + Path(arg).resolve().relative_to(shipped).as_posix()
    return arg


def config_arg(name: str) -> str:
    """A recipe as a command names it: configs/<name> from the repository root (as README writes it), else its full
    path, so the command runs from wherever the practical was started."""
    path = (configs.folder() / name).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parts(budget: str, runs: Path, seeds: int | None = None) -> list[Part]:
    """The budget's parts; ``seeds``: how many seeds the specified CNN trains in each framework (default: the
    budget's)."""
    spec, out = budgets.budget("practical", budget), str(runs)
    found: list[Part] = []
    default = ["mnist_specified_cnn.yaml"]
    count = seeds or spec["seeds"]
    for seed in range(count):
        found.append(Part(
            f"specified_lightning_seed{seed}", "specified", f"specified CNN, Lightning, seed {seed}",
            ["lightning_impl.train", "--seed_everything", str(seed), *spec["specified"]["lightning"],
             "--trainer.logger.init_args.save_dir", out, "--trainer.enable_progress_bar", "false"],
            default, meta={"framework": "lightning", "seed": seed, "seed_flag": "--seed_everything"}))
        found.append(Part(
            f"specified_keras_seed{seed}", "specified", f"specified CNN, Keras, seed {seed}",
            ["keras_ref.train", "--seed", str(seed), *spec["specified"]["keras"], "--runs-dir", out, "--quiet"],
            default, meta={"framework": "keras", "seed": seed, "seed_flag": "--seed"}))
    # The shipped improved recipes at their own size, over the same seeds as the specified CNN: what the ladder's
    # chain delivers when trained as a user trains it, paired image by image with the specified CNN of each seed.
    # An entry [dataset, framework] trains configs/<dataset>_improved.yaml; a third item names another recipe of
    # that dataset (configs/<name>.yaml), e.g. CIFAR-10's whitened net, which no ladder step reaches; a fourth, how
    # many seeds that recipe trains when it costs too much for the budget's own (at most the budget's).
    improved = spec.get("improved") or {"recipes": []}
    for dataset, framework, *named in improved["recipes"]:
        recipe = f"{named[0] if named else dataset + '_improved'}.yaml"
        for seed in range(min(count, named[1]) if len(named) > 1 else count):
            argv = (["lightning_impl.train", "--config", config_arg(recipe), "--seed_everything", str(seed),
                     *improved["lightning"], "--trainer.logger.init_args.save_dir", out,
                     "--trainer.enable_progress_bar", "false"] if framework == "lightning" else
                    ["keras_ref.train", "--config", config_arg(recipe), "--seed", str(seed), *improved["keras"],
                     "--runs-dir", out, "--quiet"])
            found.append(Part(
                f"improved_{dataset}_{framework}_seed{seed}", "improved",
                f"improved CNN ({recipe}), {framework.capitalize()}, seed {seed}", argv, [recipe],
                meta={"dataset": dataset, "framework": framework, "seed": seed,
                      "seed_flag": "--seed_everything" if framework == "lightning" else "--seed"}))
    for framework, module, seed_flag, where in (("lightning", "lightning_impl.train_denoiser", "--seed_everything",
                                                 "--trainer.logger.init_args.save_dir"),
                                                ("keras", "keras_ref.train_denoiser", "--seed", "--runs-dir")):
        quiet = ["--trainer.enable_progress_bar", "false"] if framework == "lightning" else ["--quiet"]
        found.append(Part(
            f"denoiser_{framework}", "denoiser", f"reference denoising autoencoder, {framework.capitalize()}",
            [module, seed_flag, "0", *spec["denoiser"][framework], where, out, *quiet],
            ["denoise_reference.yaml"], meta={"framework": framework}))
    size = spec["baseline_train_size"]
    found.append(Part("baseline", "baseline", "HOG + SVM on MNIST",
                      ["parity.baseline", "--dataset", "mnist", *(["--limit-train", str(size)] if size else []),
                       "--jobs", str(os.cpu_count() or 1), "--runs-dir", out, "--quiet"]))
    for dataset, framework in spec["ladders"]:
        ladder = sorted(str(p.relative_to(configs.folder())) for p in (configs.folder() / "ablation" / dataset).glob("*.yaml"))
        found.append(Part(
            f"ladder_{dataset}_{framework}", "ladder", f"improved-CNN ladder, {dataset}, {framework}",
            ["experiments.ablation", "--dataset", dataset, "--budget", budget,
             "--framework", framework, "--runs-dir", out],
            ladder, meta={"dataset": dataset, "framework": framework},
            reads={"ablation": budgets.ladder(budget, dataset)}))
    found.append(Part("denoise", "denoise", "denoising study, Fashion-MNIST",
                      ["experiments.denoising", "--budget", budget, "--runs-dir", out,
                       "--jobs", str(os.cpu_count() or 1)],
                      ["denoise_reference.yaml", "denoise_unet.yaml", "experiments/denoising.yaml"],
                      reads={"denoising": budgets.budget("denoising", budget)}))
    backends = ["--backends", *spec["parity_backends"]] if spec["parity_backends"] else []
    # The pairs by name, so that a newly registered pair changes the command and the checks run again.
    from parity.registry import all_pairs

    from parity.checks import CHECKS

    chosen = spec.get("parity_pairs")  # null: every registered pair
    pairs = chosen or sorted(all_pairs())
    found.append(Part("parity", "parity", "parity checks 1-4 and 6, " + (", ".join(pairs) if chosen else "every model pair"),
                      ["parity", "--pairs", *pairs, "--checks", *CHECKS, *backends,
                       "--json", str(runs / "parity.json")],
                      output_file=str(runs / "parity.json")))
    for part in found:
        part.runs = out
    return found


def estimate(budget: str, part: Part) -> float:
    table = budgets.budget("practical", budget)["estimate_s"]
    prefixes = [p for p in table if part.name.startswith(p)]
    return table[max(prefixes, key=len)] if prefixes else 60


class Progress:
    """One line per part with what remains; while a part runs, a line every `every` seconds so long work shows."""

    def __init__(self, budget: str, todo: list[Part], quiet: bool, every: float = 60.0, jobs: int = 1) -> None:
        self.budget, self.quiet, self.every, self.jobs = budget, quiet, every, jobs
        self.left = {p.name: estimate(budget, p) for p in todo}
        self.spent_estimate = self.spent_actual = 0.0
        self.started, self.begun, self.total, self.lock = time.perf_counter(), 0, len(todo), threading.Lock()

    def remaining(self) -> float:
        # The estimates are for one part at a time on an idle 2-core machine: scale them by how the finished parts
        # compared (parts sharing the CPU each run slower), and share what is left out over the parts running at once.
        pace = (self.spent_actual / self.spent_estimate if self.spent_estimate else
                SHARED_PACE if self.jobs > 1 else 1.0)
        return sum(self.left.values()) * pace / self.jobs

    def say(self, message: str) -> None:
        if not self.quiet:
            with self.lock:  # parts running side by side report from their own threads: one whole line each
                sys.stdout.write(f"[practical {duration(time.perf_counter() - self.started)}] {message}\n")
                sys.stdout.flush()

    def begin(self, part: Part) -> None:
        self.begun += 1  # in the order the parts start (with --jobs, longest first)
        self.say(f"{self.begun}/{self.total} {part.title}: {part.command}  (~{duration(self.remaining())} left in all)")

    def done(self, part: Part, seconds: float) -> None:
        self.spent_estimate += self.left.pop(part.name)
        self.spent_actual += seconds


def run_part(part: Part, log: Path, progress: Progress, verbose: bool, threads: int | None = None) -> str:
    """Run the part's command, its output into `log` (and the terminal with --verbose); its output's path.
    ``threads``: the CPU threads the command's torch may use (parts sharing the machine)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    start, lines = time.perf_counter(), []
    with open(log, "w") as f, subprocess.Popen([sys.executable, "-m", *part.argv], stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True, env=env) as proc:
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(progress.every):
                progress.say(f"  {part.name} running, {duration(time.perf_counter() - start)} so far "
                             f"(~{duration(estimate(progress.budget, part))} expected); log: {log}")

        beat = threading.Thread(target=heartbeat, daemon=True)
        beat.start()
        try:
            for line in proc.stdout:
                f.write(line)
                f.flush()
                lines.append(line.rstrip("\n"))
                if verbose:
                    print(f"  | {line}", end="", flush=True)
        except KeyboardInterrupt:
            proc.terminate()
            raise
        finally:
            stop.set()
    if proc.returncode != 0:
        tail = "\n".join(f"  | {l}" for l in lines[-15:])
        raise UsageError(f"{part.name} failed (exit {proc.returncode}): {part.command}\n{tail}\n"
                         f"whole output: {log}; finished parts are kept: run the same command again to go on")
    if part.output_file:
        return part.output_file
    output = next((l.strip() for l in reversed(lines) if l.strip()), "")
    if not Path(output).exists():
        raise UsageError(f"{part.name}: expected its output folder on the last line, got {output!r} (log: {log})")
    return output


def resumable(part: Part, runs: Path) -> Part:
    """A ladder whose folder already holds runs goes on in that folder (its own --resume) instead of refusing."""
    if part.kind != "ladder":
        return part
    folder = runs / "ablation" / f"{part.meta['dataset']}_{part.argv[part.argv.index('--budget') + 1]}_{part.meta['framework']}"
    if (folder / "ladder.json").is_file():
        return Part(part.name, part.kind, part.title, ["experiments.ablation", "--resume", str(folder)],
                    part.configs, part.output_file, part.meta)
    return part


def cost(part: Part, output: str, seconds: float) -> float:
    """What the part costs when run from scratch (the report's wall time per part): its command's seconds, except
    for a ladder that went on in its folder (--resume) and reused runs finished by an earlier call, whose cost is
    the sum of its runs' own wall times (results.json keeps each run's)."""
    if part.kind != "ladder":
        return seconds
    runs = json.loads((Path(output) / "results.json").read_text())
    return max(seconds, sum(r.get("wall_s", 0.0) for r in runs))


def _part_record(path: Path) -> dict | None:
    """A part's record, or None when there is none; a damaged one (cut short, edited) means the part is done again."""
    if not path.is_file():
        return None
    try:
        return read_record(path, "part record")
    except UsageError as err:
        print(f"[practical] {err}: that part runs again", file=sys.stderr, flush=True)
        return None


def finished_records(home: Path, seeds: int | None = None) -> list[dict]:
    """The records of the finished parts in <runs>/practical/<budget>/parts, in the order the practical runs them."""
    runs, budget = home.parent.parent, home.name
    records = []
    for part in parts(budget, runs, seeds):
        path = home / "parts" / f"{part.name}.json"
        if not path.is_file():
            raise UsageError(f"{part.name} has not finished ({path} missing): run python -m experiments.practical "
                             f"--budget {budget} --runs-dir {runs}")
        records.append({**read_record(path, "part record"), "meta": part.meta})
    return records


def run_all(budget: str, runs: Path, quiet: bool = False, verbose: bool = False, seeds: int | None = None,
            jobs: int | None = None) -> list[dict]:
    """Every part of the budget, reusing finished ones; their records, in order. ``jobs`` > 1: that many parts at
    once, the CPU's threads shared out between them (their wall times then overlap: the report says so); None: the
    budget's own ``jobs``, at most one part a CPU core."""
    if jobs is None:
        jobs = max(1, min(budgets.budget("practical", budget).get("jobs", 1), os.cpu_count() or 1))
    home = runs / "practical" / budget
    (home / "parts").mkdir(parents=True, exist_ok=True)
    todo = parts(budget, runs, seeds)
    records, fresh = [], []
    for part in todo:
        path = home / "parts" / f"{part.name}.json"
        record = _part_record(path)
        if record and record.get("finished") and record.get("key") == part.key() and Path(str(record.get("output"))).exists():
            records.append({**record, "meta": part.meta})  # what the part is (its seed, framework) is the part's
        else:
            fresh.append(part)
            records.append(None)
    progress = Progress(budget, fresh, quiet, jobs=jobs)
    reused = len(todo) - len(fresh)
    progress.say(f"budget {budget}: {len(todo)} parts, {reused} finished earlier and reused, {len(fresh)} to run "
                 f"(~{duration(progress.remaining())} on an idle 2-core CPU)")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    lock = threading.Lock()

    def one(i: int) -> None:
        part = todo[i]
        with lock:
            progress.begin(part)
        start = time.perf_counter()
        output = run_part(resumable(part, runs), home / "logs" / f"{part.name}.log", progress, verbose, threads)
        seconds = time.perf_counter() - start
        record = {"name": part.name, "kind": part.kind, "title": part.title, "command": part.command,
                  "configs": part.configs, "key": part.key(), "output": str(Path(output).resolve()),
                  "wall_s": cost(part, output, seconds), "command_s": seconds, "jobs": jobs, "meta": part.meta,
                  "finished": True}
        with lock:
            progress.done(part, seconds)
            records[i] = record
            write_json(home / "parts" / f"{part.name}.json", record)
            progress.say(f"  {part.name} done in {duration(seconds)}")

    waiting = [i for i, r in enumerate(records) if r is None]
    started = time.perf_counter()
    if jobs == 1:
        for i in waiting:
            one(i)
    else:
        # Longest first (the budget's estimates), so that no long part is left running alone at the end.
        waiting.sort(key=lambda i: -estimate(budget, todo[i]))
        with ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(one, i) for i in waiting]
            try:
                for future in futures:
                    future.result()  # the first failure stops the practical; the parts already finished are kept
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    if todo and len(waiting) == len(todo):  # every part ran in this call: its elapsed time is the budget's cost
        command = shlex.join(["python", "-m", "experiments.practical", "--budget", budget, "--runs-dir", str(runs),
                              *(["--seeds", str(seeds)] if seeds else []), "--jobs", str(jobs)])
        write_json(home / SITTING, {"jobs": jobs, "elapsed_s": time.perf_counter() - started, "command": command,
                                    "keys": [r["key"] for r in records],  # each part's, as its record holds it
                                    "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return records


def last_sitting(home: Path, records: list[dict]) -> dict | None:
    """The last call that ran every part from scratch (``SITTING``), if it ran exactly these parts: the elapsed time
    of the whole budget, which with --jobs is less than the sum of its parts' times."""
    path = home / SITTING
    if not path.is_file():
        return None
    sitting = read_record(path, "sitting record")
    return sitting if sitting.get("keys") == [r.get("key") for r in records] else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(prog="python -m experiments.practical", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=budgets.NAMES, default="smoke",
                   help="how much to run, configs/experiments/budgets.yaml (default: %(default)s)")
    p.add_argument("--report", type=Path, metavar="DIR", help="report folder (default: <runs-dir>/practical/<budget>/report)")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the finished parts; run nothing")
    p.add_argument("--notebook", action="store_true",
                   help="also write practical.ipynb beside index.html, executed by a Jupyter kernel (pip install -e '.[notebook]')")
    # --jobs unset: the budget's own (configs/experiments/budgets.yaml: jobs), at most one part a CPU core
    flags.add(p, "runs_dir", "data_dir", "seeds", "quiet", "verbose", "jobs", jobs=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    from experiments import report

    args = parse_args(argv)
    runs = Path(args.runs_dir)  # as given: the commands the report shows stay short and portable
    out = args.report or runs / "practical" / args.budget / "report"
    started = time.perf_counter()
    try:
        with data_errors():
            if args.data_dir is not None:  # every part is a process of its own: it finds the data through this
                os.environ[DATA_ENV] = str(Path(args.data_dir).resolve())
            if args.report_only:
                records = finished_records(runs / "practical" / args.budget, args.seeds)
            else:
                records = run_all(args.budget, runs, args.quiet, args.verbose, args.seeds, args.jobs)
            command = shlex.join(["python", "-m", "experiments.practical", *(sys.argv[1:] if argv is None else argv)])
            index = report.build(records, args.budget, out, command, runs_dir=args.runs_dir, with_notebook=args.notebook,
                                 sitting=last_sitting(runs / "practical" / args.budget, records),
                                 seeds=args.seeds or budgets.budget("practical", args.budget)["seeds"], data_dir=args.data_dir)
    except UsageError as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted: the finished parts are kept; run the same command again to go on", status=130)
    if not args.quiet:
        print(f"[practical] report written in {duration(time.perf_counter() - started)}:")
    print(index.resolve())
    return index


if __name__ == "__main__":
    main()
