"""The denoising experiment on Fashion-MNIST: networks against tuned classical filters, per noise level.

    python -m experiments.denoising --jobs 2             # the experiment (--budget large): 96 min on 2 CPU cores
    python -m experiments.denoising --budget quick       # tiny subsets, ~1 minute: what CI runs
    python -m experiments.denoising --budget full        # 2 epochs, the 32-64-128 U-Net (0.25 dB short at sigma 0.1)
    python -m experiments.denoising --compare-losses     # the MSE-vs-BCE measurement (validation set)
    python -m experiments.denoising --resume runs/denoise/version_3   # after an interruption

Steps: (1) tune every classical filter's parameters on noisy *training* images, per sigma; (2) train the
reference DenoisingAE and the improved UNetDAE, one model per sigma plus one "blind" model trained on a
range of sigma; (3) run every method on the same fixed, seeded noisy test copies and score all of them
with one function (core.image_quality.score). Writes into runs/denoise/version_N/: results.md and
results.csv (methods x sigma, PSNR/SSIM, tuned parameters, training times), results.json, grid_sigma*.png
(clean / noisy / best classical / reference / improved) and metrics_vs_sigma.png; per-model training
logs and weights under models/. The run folder's path is the last line printed.

Nothing finished is lost: the classical filters' tuned parameters (classical_tuning.json) and every trained
network (models/<name>/weights.pt + train.json) are kept as they finish, and ``--resume RUN_DIR`` reuses them,
training only what is missing, with the budget the folder was started with (budget.json).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import logging
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger

from core import classical_denoisers as classical
from core import configs, flags
from lightning_impl import checkpoints
from core.precision import resolve as resolve_precision
from core.image_quality import score
from core.runs import UsageError, data_errors, new_run_dir, read_record, write_json, write_text
from lightning_impl.tasks.denoiser import Denoiser
from lightning_impl.models.denoising import DenoisingAE, UNetDAE
from core.noise import NOISE_SEEDS, fixed_noisy_copy, to_unit
from lightning_impl.data.noise import NoisyDataModule

SIGMAS = (0.1, 0.2, 0.3, 0.5)
BLIND_RANGE = (0.05, 0.55)  # the blind model's training noise, drawn uniformly per image
ARCHITECTURES = {"reference": DenoisingAE, "improved": UNetDAE}
LABELS = {"reference": "reference AE", "improved": "improved U-Net"}


@dataclass(frozen=True)
class Budget:
    """How much of everything one run uses. The recipe's own values (epochs, batch, lr, loss, precision, seed,
    widths) come from configs/denoise_unet.yaml (``recipe_budget``); the smaller budgets change the named ones."""

    epochs: int
    train_limit: int | None  # training images per model (None: the whole 54,000-image split)
    val_limit: int | None
    test_limit: int | None  # test images every method is scored on (None: all 10,000)
    tune_images: int  # training images the classical filters are tuned on
    batch_size: int
    lr: float
    loss: str
    precision: str | None  # None: bf16 where native, else float32 (core.precision)
    seed: int
    improved_widths: tuple[int, int, int]  # UNetDAE's (28x28, 14x14, 7x7) channels
    figure_images: int = 10  # test images shown in the grids: the first of each class


def recipe_budget(name: str = "denoise_unet.yaml") -> Budget:
    """The experiment's recipe is the YAML it names: configs/denoise_unet.yaml (epochs, batch, lr, loss, precision,
    the U-Net's widths, seed), read here so that the file and the experiment cannot drift apart."""
    recipe = configs.load(name)
    model, data = recipe["model"], recipe["data"]
    return Budget(
        epochs=recipe["trainer"]["max_epochs"], train_limit=data.get("train_limit"), val_limit=2000, test_limit=None,
        tune_images=500, batch_size=data["batch_size"], lr=model["optimizer"]["init_args"]["lr"], loss=model["loss"],
        precision=recipe["trainer"].get("precision", "32-true"), seed=recipe["seed_everything"],
        improved_widths=tuple(model["net"]["init_args"]["widths"]),
    )


LARGE = recipe_budget()  # the default: meets the 4 dB target at every sigma (docs/denoise.md)
BUDGETS = {
    "quick": replace(LARGE, epochs=1, train_limit=128, val_limit=32, test_limit=100, tune_images=8, batch_size=64,
                     improved_widths=(32, 64, 128)),
    # A sixth of the data for one epoch, scored on 1,000 test images: the practical's standard budget (minutes).
    "short": replace(LARGE, epochs=1, train_limit=8192, val_limit=500, test_limit=1000, tune_images=100,
                     improved_widths=(32, 64, 128)),
    "full": replace(LARGE, epochs=2, improved_widths=(32, 64, 128)),  # 0.25 dB short at sigma 0.1
    "large": LARGE,
}


def setup_process() -> None:
    """What every process of the experiment sets: bf16-friendly matmuls, and one log line per model (ours)."""
    torch.set_float32_matmul_precision("high")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def log(message: str) -> None:
    print(f"[denoise {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sigma_tag(sigma) -> str:
    return "blind" if isinstance(sigma, tuple) else f"sigma{sigma:g}"


# ----------------------------------------------------------------------------- classical baselines


def tuning_pairs(data: NoisyDataModule, sigma: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n *training* images and their fixed noisy copy: what the classical filters are tuned on."""
    clean = to_unit(data.source.train_set.images[:n])
    noisy = fixed_noisy_copy(clean, sigma, NOISE_SEEDS["tune"])
    return clean[:, 0].numpy(), noisy[:, 0].numpy()


def tune_classical(data: NoisyDataModule, budget: Budget, n_jobs: int) -> dict[float, dict[str, dict]]:
    """{sigma: {method: {"params": ..., "tune_psnr": ...}}}, from training images only."""
    tuned: dict[float, dict[str, dict]] = {}
    for sigma in SIGMAS:
        clean, noisy = tuning_pairs(data, sigma, budget.tune_images)
        tuned[sigma] = {}
        for method in classical.METHODS.values():
            start = time.perf_counter()
            params, psnr = classical.tune(method, clean, noisy, sigma, n_jobs=n_jobs)
            tuned[sigma][method.name] = {"params": params, "tune_psnr": psnr, "tune_s": time.perf_counter() - start}
            edge = classical.on_grid_edge(method, params)
            note = f"  (warning: {', '.join(edge)} on the edge of the grid)" if edge else ""
            log(f"tuned {method.name} at sigma={sigma}: {params} -> {psnr:.2f} dB on {len(clean)} training images{note}")
    return tuned


# ----------------------------------------------------------------------------- networks


def train_network(arch: str, sigma, budget: Budget, run_dir: Path, data_dir: str | None, tag: str = "") -> tuple[Denoiser, float]:
    """Train one network at a noise level (or range); returns it and its wall-clock training time."""
    L.seed_everything(budget.seed, verbose=False)
    data = NoisyDataModule(
        sigma=sigma, data_dir=data_dir, batch_size=budget.batch_size, download=False,
        train_limit=budget.train_limit, val_limit=budget.val_limit, test_limit=budget.test_limit,
    )
    net = build_net(arch, budget)
    model = Denoiser(
        net, loss=budget.loss, optimizer=lambda p: torch.optim.Adam(p, lr=budget.lr)
    )
    trainer = L.Trainer(
        max_epochs=budget.epochs, accelerator="auto", devices=1, precision=resolve_precision(budget.precision), enable_checkpointing=False, log_every_n_steps=10,
        enable_model_summary=False, enable_progress_bar=sys.stderr.isatty(),
        logger=CSVLogger(run_dir, name="models", version=model_dir(run_dir, arch, sigma, tag).name),
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    val = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
    log(f"trained {arch} at {sigma_tag(sigma)} ({budget.loss} loss) in {seconds:.0f} s: {val}")
    checkpoints.save(model.net.state_dict(), Path(trainer.log_dir) / "weights.pt")
    # Written last: its presence marks the network as finished (see --resume).
    write_text(Path(trainer.log_dir) / "train.json", json.dumps({"train_s": seconds, "val": val}) + "\n")
    return model.eval(), seconds


def model_dir(run_dir: Path, arch: str, sigma, tag: str = "") -> Path:
    """Where train_network leaves a network's log, weights.pt and train.json."""
    return run_dir / "models" / "_".join(filter(None, (arch, sigma_tag(sigma), tag)))


def build_net(arch: str, budget: Budget) -> torch.nn.Module:
    return ARCHITECTURES[arch](widths=budget.improved_widths) if arch == "improved" else ARCHITECTURES[arch]()


def load_network(arch: str, sigma, budget: Budget, run_dir: Path) -> tuple[Denoiser, float]:
    """A network trained earlier in this run folder (by this process, a worker, or an interrupted run)."""
    folder = model_dir(run_dir, arch, sigma)
    net = build_net(arch, budget)
    net.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    seconds = json.loads((folder / "train.json").read_text())["train_s"]
    return Denoiser(net, loss=budget.loss).eval(), seconds


def _train_job(arch: str, sigma, budget: Budget, run_dir: Path, data_dir: str | None, threads: int) -> tuple[str, object]:
    """One network in a worker process, with its share of the cores."""
    torch.set_num_threads(threads)
    setup_process()
    train_network(arch, sigma, budget, run_dir, data_dir)
    return arch, sigma


def train_missing(jobs: list[tuple[str, object]], budget: Budget, run_dir: Path, data_dir: str | None, workers: int) -> None:
    """Train every (arch, sigma) in ``jobs``; ``workers`` > 1 trains that many at once in spawned processes,
    each with cores // workers threads (small networks on few cores use cores better side by side)."""
    if workers <= 1:
        for arch, sigma in jobs:
            train_network(arch, sigma, budget, run_dir, data_dir)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    log(f"training {len(jobs)} networks in {workers} processes, {threads} thread(s) each")
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_train_job, arch, sigma, budget, run_dir, data_dir, threads) for arch, sigma in jobs]
        for future in concurrent.futures.as_completed(futures):
            future.result()  # re-raises a worker's error here; finished networks stay on disk


@torch.no_grad()
def restore(model: Denoiser, noisy: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = model.device
    return torch.cat([model(noisy[i : i + batch_size].to(device)).clamp(0, 1).cpu() for i in range(0, len(noisy), batch_size)])


# ----------------------------------------------------------------------------- the experiment


def start_or_resume(budget_name: str | None, out_root: str, resume: str | Path | None) -> tuple[Path, str]:
    """A new run folder with its budget recorded (default ``large``), or an existing one, whose budget is
    the one asked for (default: the folder's). Returns the folder and the budget's name."""
    def record(name: str) -> dict:
        return json.loads(json.dumps({"budget": name, **asdict(BUDGETS[name])}))

    if resume is None:
        budget_name = budget_name or "large"
        run_dir = new_run_dir(out_root, "denoise")
        write_json(run_dir / "budget.json", record(budget_name))
        return run_dir, budget_name
    run_dir = Path(resume)
    if not (run_dir / "budget.json").is_file():
        raise UsageError(f"{run_dir} is not a run folder of this experiment (no budget.json)")
    stored = read_record(run_dir / "budget.json", "budget record")
    budget_name = budget_name or stored.get("budget")
    wanted = record(budget_name) if budget_name in BUDGETS else {}
    if stored != wanted:
        changed = sorted(k for k in {*stored, *wanted} if stored.get(k) != wanted.get(k))
        raise UsageError(f"{run_dir} was started with budget {stored.get('budget')!r}; resuming it as "
                         f"{budget_name!r} would change {', '.join(changed)} (pass --budget {stored.get('budget')})")
    return run_dir, budget_name


def run(budget_name: str | None = None, out_root: str = "runs", data_dir: str | None = None, n_jobs: int = 2,
        resume: str | Path | None = None, workers: int = 1) -> Path:
    setup_process()
    run_dir, budget_name = start_or_resume(budget_name, out_root, resume)
    budget = BUDGETS[budget_name]
    log(f"budget {budget_name}: {asdict(budget)}; writing to {run_dir}")
    log(f"if interrupted, go on with: python -m experiments.denoising --budget {budget_name} --resume {run_dir}")

    data = NoisyDataModule(data_dir=data_dir, download=False, test_limit=budget.test_limit)
    data.prepare_data()
    data.setup()
    test = {sigma: data.eval_pairs("test", sigma, budget.test_limit) for sigma in SIGMAS}
    clean = to_unit(test[SIGMAS[0]].clean)
    rows: list[dict] = []
    restored_examples: dict[str, dict[float, torch.Tensor]] = {}
    shown = first_of_each_class(data.source.test_set.labels[: len(clean)], budget.figure_images)

    def record(method: str, kind: str, sigma: float, restored: torch.Tensor, **extra) -> None:
        metrics = score(restored, clean)
        rows.append({"method": method, "kind": kind, "sigma": sigma, "n_test": len(clean), **metrics, **extra})
        restored_examples.setdefault(method, {})[sigma] = restored[shown]

    # 1. Classical filters: tuned on training images, then run once on the test copies.
    tuning_file = run_dir / "classical_tuning.json"
    if tuning_file.is_file():
        tuned = {float(s): v for s, v in json.loads(tuning_file.read_text()).items()}
        log(f"classical parameters from {tuning_file}")
    else:
        tuned = tune_classical(data, budget, n_jobs)
        write_text(tuning_file, json.dumps({str(s): v for s, v in tuned.items()}, indent=2) + "\n")
    for sigma in SIGMAS:
        noisy = test[sigma].noisy[:, 0].numpy()
        for name, method in classical.METHODS.items():
            start = time.perf_counter()
            out = classical.apply(method, noisy, sigma, tuned[sigma][name]["params"], n_jobs=n_jobs)
            record(name, "classical", sigma, torch.from_numpy(out).unsqueeze(1), params=tuned[sigma][name]["params"],
                   apply_s=round(time.perf_counter() - start, 2))
        log(f"classical filters scored at sigma={sigma}")

    # 2. Networks: one per sigma, and one blind model scored at every sigma. The improved ones first: they
    #    take longest, which balances the workers.
    jobs = [(arch, sigma) for arch in reversed(ARCHITECTURES) for sigma in (*SIGMAS, BLIND_RANGE)]
    missing = [(a, s) for a, s in jobs if not (model_dir(run_dir, a, s) / "train.json").is_file()]
    if len(missing) < len(jobs):
        log(f"{len(jobs) - len(missing)} of {len(jobs)} networks already trained in {run_dir / 'models'}")
    train_missing(missing, budget, run_dir, data_dir, workers)
    for arch in ARCHITECTURES:
        for sigma in (*SIGMAS, BLIND_RANGE):
            model, seconds = load_network(arch, sigma, budget, run_dir)
            for eval_sigma in SIGMAS if isinstance(sigma, tuple) else (sigma,):
                label = LABELS[arch] + (" (blind)" if isinstance(sigma, tuple) else "")
                record(label, "network", eval_sigma, restore(model, test[eval_sigma].noisy),
                       train_s=round(seconds, 1), parameters=sum(p.numel() for p in model.net.parameters()))

    write_results(rows, run_dir, budget_name, budget)
    plot_grids(run_dir, clean[shown], {s: test[s].noisy[shown] for s in SIGMAS}, restored_examples, rows)
    plot_curves(run_dir, rows)
    return run_dir


LOSS_STUDY_SIGMAS = (0.1, 0.5)  # the two ends of the range, where the losses could disagree
LOSS_STUDY_TRAIN_LIMIT = 16_384  # training images per model: a ranking, not a result, so a third of an epoch


def compare_losses(budget_name: str = "full", out_root: str = "runs", data_dir: str | None = None) -> Path:
    """MSE against binary cross-entropy for both architectures, scored on the *validation* copies.

    The loss is a training choice, so it is chosen on validation data; the test set is not touched.
    """
    budget = BUDGETS[budget_name]
    budget = replace(budget, train_limit=min(budget.train_limit or LOSS_STUDY_TRAIN_LIMIT, LOSS_STUDY_TRAIN_LIMIT))
    setup_process()
    run_dir = new_run_dir(out_root, "denoise_losses")
    rows = []
    for arch in ARCHITECTURES:
        for sigma in LOSS_STUDY_SIGMAS:
            for loss in ("mse", "bce"):
                model, seconds = train_network(arch, sigma, replace(budget, loss=loss), run_dir, data_dir, tag=loss)
                data = NoisyDataModule(sigma=sigma, data_dir=data_dir, download=False, val_limit=budget.val_limit)
                data.prepare_data(), data.setup()
                metrics = score(restore(model, data.val_set.noisy), to_unit(data.val_set.clean))
                rows.append({"architecture": arch, "sigma": sigma, "loss": loss, **metrics, "train_s": round(seconds, 1)})
    lines = [f"# MSE vs BCE on {len(data.val_set)} validation images (budget `{budget_name}`: {budget.epochs} epoch(s) "
             f"on {budget.train_limit} training images per model)", "",
             "| architecture | σ | loss | PSNR (dB) | SSIM | training (s) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['architecture']} | {r['sigma']:g} | {r['loss']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['train_s']:.0f} |" for r in rows]
    write_text(run_dir / "losses.md", "\n".join(lines) + "\n")
    write_text(run_dir / "losses.json", json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines), flush=True)
    return run_dir


def first_of_each_class(labels: torch.Tensor, n: int) -> torch.Tensor:
    firsts = [int(torch.nonzero(labels == c)[0]) for c in labels.unique().tolist()]
    return torch.tensor(sorted(firsts)[:n])


def best_classical(rows: list[dict], sigma: float) -> dict:
    return max((r for r in rows if r["kind"] == "classical" and r["sigma"] == sigma and r["method"] != "noisy input"),
               key=lambda r: r["psnr"])


def write_results(rows: list[dict], run_dir: Path, budget_name: str, budget: Budget) -> None:
    with open(run_dir / "results.csv", "w", newline="") as f:
        fields = ["method", "kind", "sigma", "psnr", "ssim", "params", "train_s", "parameters", "apply_s", "n_test"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: json.dumps(r.get(k)) if k == "params" else r.get(k, "") for k in fields})
    write_text(run_dir / "results.json", json.dumps({"budget": budget_name, **asdict(budget), "rows": rows}, indent=2) + "\n")

    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["sigma"]): r for r in rows}
    n_test = rows[0]["n_test"]
    lines = [
        f"# Denoising Fashion-MNIST: PSNR (dB) / SSIM, mean over {n_test} test images (budget `{budget_name}`)",
        "",
        f"Every method is scored on the same fixed noisy copies of the first {n_test} test images (seed "
        f"{NOISE_SEEDS['test']}), by the same function. Classical parameters were tuned per sigma on "
        f"{budget.tune_images} training images; networks trained {budget.epochs} epoch(s) on "
        f"{budget.train_limit or 54000} training images, loss `{budget.loss}`.",
        "",
        "| method | " + " | ".join(f"σ={s:g}" for s in SIGMAS) + " |",
        "|---|" + "---|" * len(SIGMAS),
    ]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{cell[m, s]['psnr']:.2f} / {cell[m, s]['ssim']:.3f}" for s in SIGMAS) + " |")
    lines += ["", "Margin over the best classical filter at each σ (ΔPSNR dB / ΔSSIM; target for the improved model: ≥ +4 dB and > 0):", "",
              "| network | " + " | ".join(f"σ={s:g} (vs {best_classical(rows, s)['method']})" for s in SIGMAS) + " |",
              "|---|" + "---|" * len(SIGMAS)]
    for m in (m for m in methods if cell[m, SIGMAS[0]]["kind"] == "network"):
        deltas = [(cell[m, s]["psnr"] - best_classical(rows, s)["psnr"], cell[m, s]["ssim"] - best_classical(rows, s)["ssim"]) for s in SIGMAS]
        lines.append(f"| {m} | " + " | ".join(f"{dp:+.2f} / {ds:+.3f}" for dp, ds in deltas) + " |")
    lines += ["", "Tuned classical parameters (on training images):", "", "| method | " + " | ".join(f"σ={s:g}" for s in SIGMAS) + " |",
              "|---|" + "---|" * len(SIGMAS)]
    for m in (m for m in methods if cell[m, SIGMAS[0]]["kind"] == "classical" and cell[m, SIGMAS[0]]["params"]):
        lines.append(f"| {m} | " + " | ".join(", ".join(f"{k}={v}" for k, v in cell[m, s]["params"].items()) for s in SIGMAS) + " |")
    lines += ["", "Training time per model (wall clock, this machine):", "", "| network | " + " | ".join(f"σ={s:g}" for s in SIGMAS) + " | blind |",
              "|---|" + "---|" * (len(SIGMAS) + 1)]
    for arch, label in LABELS.items():
        times = [f"{cell[label, s]['train_s']:.0f} s" for s in SIGMAS] + [f"{cell[label + ' (blind)', SIGMAS[0]]['train_s']:.0f} s"]
        lines.append(f"| {label} ({cell[label, SIGMAS[0]]['parameters']:,} parameters) | " + " | ".join(times) + " |")
    write_text(run_dir / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def plot_grids(run_dir: Path, clean: torch.Tensor, noisy: dict, restored: dict, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for sigma in SIGMAS:
        best = best_classical(rows, sigma)["method"]
        panels = [("clean", clean), (f"noisy σ={sigma:g}", noisy[sigma]), (f"best classical: {best}", restored[best][sigma]),
                  (LABELS["reference"], restored[LABELS["reference"]][sigma]), (LABELS["improved"], restored[LABELS["improved"]][sigma])]
        n = len(clean)
        fig, axes = plt.subplots(len(panels), n, figsize=(1.1 * n, 1.25 * len(panels)), squeeze=False)
        for r, (title, images) in enumerate(panels):
            for c in range(n):
                ax = axes[r][c]
                ax.imshow(images[c, 0].numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
            axes[r][0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        fig.tight_layout()
        fig.savefig(run_dir / f"grid_sigma{sigma:g}.png", dpi=110)
        plt.close(fig)


def plot_curves(run_dir: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        points = sorted((r["sigma"], r["psnr"], r["ssim"]) for r in rows if r["method"] == method)
        style = "-o" if points and rows[[r["method"] for r in rows].index(method)]["kind"] == "network" else "--."
        for ax, k in zip(axes, (1, 2)):
            ax.plot([p[0] for p in points], [p[k] for p in points], style, label=method)
    for ax, name in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xlabel("noise σ"), ax.set_ylabel(name), ax.set_xticks(SIGMAS), ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run_dir / "metrics_vs_sigma.png", dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BUDGETS),
                        help="large (default): the experiment, configs/denoise_unet.yaml; full: 32-64-128, 2 epochs; quick: "
                             "tiny subsets for CI. Default with --resume: the folder's; with --compare-losses: full")
    parser.add_argument("--compare-losses", action="store_true", help="measure MSE vs BCE on validation data instead")
    flags.add(parser, "runs_dir", "data_dir", "jobs", "resume")
    args = parser.parse_args(argv)
    if args.resume and args.compare_losses:
        parser.error("--resume applies to the experiment, not to --compare-losses")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    with data_errors():
        if args.compare_losses:
            run_dir = compare_losses(args.budget or "full", args.runs_dir, args.data_dir)
        else:
            run_dir = run(args.budget, args.runs_dir, args.data_dir, args.jobs, args.resume, args.jobs)
    print(run_dir.resolve())
    return run_dir


if __name__ == "__main__":
    main()
