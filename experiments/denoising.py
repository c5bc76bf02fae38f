"""The denoising experiment on Fashion-MNIST: networks against tuned classical filters, per noise level.

    python -m experiments.denoising --jobs 2             # the experiment (--budget full): 96 min on 2 CPU cores
    python -m experiments.denoising --budget smoke       # tiny subsets, ~1 minute: what CI runs
    python -m experiments.denoising --budget standard    # one epoch on a sixth of the data: the practical's minutes
    python -m experiments.denoising --compare-losses     # the MSE-vs-BCE measurement (validation set)
    python -m experiments.denoising --resume runs/denoise/version_3   # after an interruption

The study is configs/experiments/denoising.yaml: the noise levels, the two networks and their recipes (each
network is one run of ``lightning_impl.train_denoiser``, the entry point's own path, on its recipe with the
study's overlays), how many images the filters are tuned on and every method is scored on. A budget
(configs/experiments/budgets.yaml) is an overlay on both. Steps: (1) tune every classical filter's parameters on
noisy *training* images, per sigma; (2) train the reference DenoisingAE and the improved UNetDAE, one model per
sigma plus one "blind" model trained on a range of sigma, each keeping its best epoch on validation; (3) run
every method on the same fixed, seeded noisy test copies and score all of them with one function
(core.image_quality.score). Writes into runs/denoise/version_N/: results.md and results.csv (methods x sigma,
PSNR/SSIM, tuned parameters, training times), results.json, grid_sigma*.png (clean / noisy / best classical /
reference / improved) and metrics_vs_sigma.png; every network's run folder (config.yaml, metrics.csv,
checkpoints/, metrics.json) under models/. The run folder's path is the last line printed.

Nothing finished is lost: the classical filters' tuned parameters (classical_tuning.json) and every trained
network (its run folder, finished when its metrics.json is) are kept as they finish, and ``--resume RUN_DIR``
reuses them, training only what is missing, with the study the folder was started with (budget.json).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import logging
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from core import budgets, configs, flags, plots, tables
from core import classical_denoisers as classical
from core.image_quality import paired_psnr, psnr_per_image, score
from core.noise import NOISE_SEEDS, fixed_noisy_copy, to_unit
from core.runs import UsageError, data_errors, new_run_dir, read_record, write_json, write_text
from experiments.numbers import plural
from lightning_impl.card import load_model
from lightning_impl.data.noise import NoisyDataModule
from lightning_impl.tasks.denoiser import Denoiser

STUDY_FILE = "experiments/denoising.yaml"
_DESIGN = configs.load(STUDY_FILE)
SIGMAS = tuple(_DESIGN["sigmas"])
BLIND_RANGE = tuple(_DESIGN["blind_range"])  # the blind model's training noise, drawn uniformly per image
ARCHITECTURES = tuple(_DESIGN["networks"])  # reference, improved
LABELS = {arch: network["label"] for arch, network in _DESIGN["networks"].items()}


@dataclass(frozen=True)
class Study:
    """The study at one budget: configs/experiments/denoising.yaml with the budget's overlays merged in. Each
    network is its recipe (a file of configs/) with ``overlays[arch]`` merged over it."""

    budget: str
    test_limit: int | None  # test images every method is scored on (None: all 10,000)
    tune_images: int  # training images the classical filters are tuned on
    figure_images: int
    recipes: dict  # arch -> recipe file
    overlays: dict  # arch -> the overlay on its recipe (the study's, the network's, the budget's)

    def config(self, arch: str) -> dict:
        """The network's whole recipe, as its run trains it."""
        return configs.merge(configs.load(self.recipes[arch]), self.overlays[arch])


def load_study(budget_name: str) -> Study:
    spec = budgets.budget("denoising", budget_name)
    design = configs.merge(configs.load(STUDY_FILE), {k: v for k, v in spec.get("study", {}).items()})
    overlays = {}
    for arch, network in design["networks"].items():
        overlay = configs.merge(design.get("overlay", {}), network.get("overlay", {}))
        overlay = configs.merge(overlay, spec.get("networks", {}))
        overlay = configs.merge(overlay, spec.get(arch, {}))
        overlays[arch] = configs.merge(overlay, {"data": {"test_limit": design["test_limit"]}})
    return Study(budget_name, design["test_limit"], design["tune_images"], design["figure_images"],
                 {arch: n["recipe"] for arch, n in design["networks"].items()}, overlays)


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


def tune_classical(data: NoisyDataModule, study: Study, n_jobs: int) -> dict[float, dict[str, dict]]:
    """{sigma: {method: {"params": ..., "tune_psnr": ...}}}, from training images only."""
    tuned: dict[float, dict[str, dict]] = {}
    for sigma in SIGMAS:
        clean, noisy = tuning_pairs(data, sigma, study.tune_images)
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


def network_args(arch: str, sigma, study: Study, run_dir: Path, data_dir: str | None, tag: str = "",
                 overlay: dict | None = None) -> list[str]:
    """The command line of one network's run of lightning_impl.train_denoiser: its recipe, the study's overlay
    (written beside the run folders, so that the command can be typed again), the noise level and where it goes."""
    root, name = run_dir / "models", model_name(arch, sigma, tag)
    root.mkdir(parents=True, exist_ok=True)
    overlay_file = root / f"{name}.overlay.yaml"
    write_text(overlay_file, yaml.safe_dump(configs.merge(study.overlays[arch], overlay or {}), sort_keys=False))
    args = ["--config", str(configs.find(study.recipes[arch])), "--config", str(overlay_file),
            "--data.sigma", json.dumps(list(sigma) if isinstance(sigma, tuple) else sigma), "--data.download", "false",
            "--trainer.logger.init_args.save_dir", str(root), "--trainer.logger.init_args.name", name,
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    return args + (["--data.data_dir", str(data_dir)] if data_dir else [])


def train_network(arch: str, sigma, study: Study, run_dir: Path, data_dir: str | None, tag: str = "",
                  overlay: dict | None = None) -> tuple[Denoiser, float]:
    """Train one network at a noise level (or range) through the entry point; returns its best checkpoint on
    validation and its wall-clock training time."""
    from lightning_impl import train_denoiser

    metrics = train_denoiser.main(network_args(arch, sigma, study, run_dir, data_dir, tag, overlay))
    log(f"trained {arch} at {sigma_tag(sigma)} ({metrics['loss']} loss) in {metrics['train_s']:.0f} s: "
        f"best val_psnr {metrics['best_val_psnr']:.2f} dB")
    return load_network(arch, sigma, run_dir, tag)


def model_name(arch: str, sigma, tag: str = "") -> str:
    return "_".join(filter(None, (arch, sigma_tag(sigma), tag)))


def finished_run(run_dir: Path, arch: str, sigma, tag: str = "") -> tuple[Path, dict] | None:
    """The network's finished run folder and its record (metrics.json says it finished), or None: an interrupted
    one is trained again."""
    for folder in sorted((run_dir / "models" / model_name(arch, sigma, tag)).glob("version_*"), reverse=True):
        metrics = folder / "metrics.json"
        if metrics.is_file() and (record := read_record(metrics, "run record")).get("finished"):
            return folder, record
    return None


def load_network(arch: str, sigma, run_dir: Path, tag: str = "") -> tuple[Denoiser, float]:
    """A network trained earlier in this run folder (by this process, a worker, or an interrupted run): its best
    checkpoint, and its training time."""
    found = finished_run(run_dir, arch, sigma, tag)
    if found is None:
        raise UsageError(f"{run_dir}: no finished run of {model_name(arch, sigma, tag)}")
    folder, record = found
    model, _, _ = load_model(folder)
    return model, record["train_s"]


def _train_job(arch: str, sigma, study: Study, run_dir: Path, data_dir: str | None, threads: int) -> tuple[str, object]:
    """One network in a worker process, with its share of the cores."""
    torch.set_num_threads(threads)
    setup_process()
    train_network(arch, sigma, study, run_dir, data_dir)
    return arch, sigma


def train_missing(jobs: list[tuple[str, object]], study: Study, run_dir: Path, data_dir: str | None, workers: int) -> None:
    """Train every (arch, sigma) in ``jobs``; ``workers`` > 1 trains that many at once in spawned processes,
    each with cores // workers threads (small networks on few cores use cores better side by side)."""
    if workers <= 1:
        for arch, sigma in jobs:
            train_network(arch, sigma, study, run_dir, data_dir)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    log(f"training {len(jobs)} networks in {workers} processes, {threads} thread(s) each")
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_train_job, arch, sigma, study, run_dir, data_dir, threads) for arch, sigma in jobs]
        for future in concurrent.futures.as_completed(futures):
            future.result()  # re-raises a worker's error here; finished networks stay on disk


@torch.no_grad()
def restore(model: Denoiser, noisy: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = model.device
    return torch.cat([model(noisy[i : i + batch_size].to(device)).clamp(0, 1).cpu() for i in range(0, len(noisy), batch_size)])


# ----------------------------------------------------------------------------- the experiment


def start_or_resume(budget_name: str | None, out_root: str, resume: str | Path | None) -> tuple[Path, str]:
    """A new run folder with its study recorded (default budget ``full``), or an existing one, whose budget is
    the one asked for (default: the folder's). Returns the folder and the budget's name."""
    def record(name: str) -> dict:
        return json.loads(json.dumps(asdict(load_study(name))))

    if resume is None:
        budget_name = budget_name or "full"
        run_dir = new_run_dir(out_root, "denoise")
        write_json(run_dir / "budget.json", record(budget_name))
        return run_dir, budget_name
    run_dir = Path(resume)
    if not (run_dir / "budget.json").is_file():
        raise UsageError(f"{run_dir} is not a run folder of this experiment (no budget.json)")
    stored = read_record(run_dir / "budget.json", "budget record")
    budget_name = budget_name or stored.get("budget")
    wanted = record(budget_name) if budget_name in budgets.NAMES else {}
    if stored != wanted:
        changed = sorted(k for k in {*stored, *wanted} if stored.get(k) != wanted.get(k))
        raise UsageError(f"{run_dir} was started with budget {stored.get('budget')!r}; resuming it as "
                         f"{budget_name!r} would change {', '.join(changed)} (pass --budget {stored.get('budget')})")
    return run_dir, budget_name


def run(budget_name: str | None = None, out_root: str = "runs", data_dir: str | None = None, n_jobs: int = 2,
        resume: str | Path | None = None, workers: int = 1) -> Path:
    setup_process()
    run_dir, budget_name = start_or_resume(budget_name, out_root, resume)
    study = load_study(budget_name)
    log(f"budget {budget_name}: {asdict(study)}; writing to {run_dir}")
    log(f"if interrupted, go on with: python -m experiments.denoising --budget {budget_name} --resume {run_dir}")

    data = NoisyDataModule(data_dir=data_dir, download=False, test_limit=study.test_limit)
    data.prepare_data()
    data.setup()
    test = {sigma: data.eval_pairs("test", sigma, study.test_limit) for sigma in SIGMAS}
    clean = to_unit(test[SIGMAS[0]].clean)
    rows: list[dict] = []
    restored_examples: dict[str, dict[float, torch.Tensor]] = {}
    shown = first_of_each_class(data.source.test_set.labels[: len(clean)], study.figure_images)

    per_image: dict[tuple[str, float], torch.Tensor] = {}  # (method, sigma) -> PSNR of each test image

    def record(method: str, kind: str, sigma: float, restored: torch.Tensor, **extra) -> None:
        metrics = score(restored, clean)
        per_image[method, sigma] = psnr_per_image(restored, clean)
        rows.append({"method": method, "kind": kind, "sigma": sigma, "n_test": len(clean), **metrics, **extra})
        restored_examples.setdefault(method, {})[sigma] = restored[shown]

    # 1. Classical filters: tuned on training images, then run once on the test copies.
    tuning_file = run_dir / "classical_tuning.json"
    if tuning_file.is_file():
        tuned = {float(s): v for s, v in json.loads(tuning_file.read_text()).items()}
        log(f"classical parameters from {tuning_file}")
    else:
        tuned = tune_classical(data, study, n_jobs)
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
    missing = [(a, s) for a, s in jobs if finished_run(run_dir, a, s) is None]
    if len(missing) < len(jobs):
        log(f"{len(jobs) - len(missing)} of {len(jobs)} networks already trained in {run_dir / 'models'}")
    train_missing(missing, study, run_dir, data_dir, workers)
    for arch in ARCHITECTURES:
        for sigma in (*SIGMAS, BLIND_RANGE):
            model, seconds = load_network(arch, sigma, run_dir)
            for eval_sigma in SIGMAS if isinstance(sigma, tuple) else (sigma,):
                label = LABELS[arch] + (" (blind)" if isinstance(sigma, tuple) else "")
                record(label, "network", eval_sigma, restore(model, test[eval_sigma].noisy),
                       train_s=round(seconds, 1), parameters=sum(p.numel() for p in model.net.parameters()))

    write_results(rows, run_dir, study, paired_tests(rows, per_image))
    plot_grids(run_dir, clean[shown], {s: test[s].noisy[shown] for s in SIGMAS}, restored_examples, rows)
    plots.metrics_vs_noise(rows, SIGMAS, run_dir / "metrics_vs_sigma.png")
    return run_dir


LOSS_STUDY_SIGMAS = (0.1, 0.5)  # the two ends of the range, where the losses could disagree
LOSS_STUDY_TRAIN_LIMIT = 16_384  # training images per model: a ranking, not a result, so a third of an epoch


def compare_losses(budget_name: str = "full", out_root: str = "runs", data_dir: str | None = None) -> Path:
    """MSE against binary cross-entropy for both architectures, scored on the *validation* copies.

    The loss is a training choice, so it is chosen on validation data; the test set is not touched.
    """
    study = load_study(budget_name)
    setup_process()
    run_dir = new_run_dir(out_root, "denoise_losses")
    rows = []
    for arch in ARCHITECTURES:
        limit = min(study.config(arch)["data"].get("train_limit") or LOSS_STUDY_TRAIN_LIMIT, LOSS_STUDY_TRAIN_LIMIT)
        for sigma in LOSS_STUDY_SIGMAS:
            for loss in ("mse", "bce"):
                overlay = {"model": {"loss": loss}, "data": {"train_limit": limit}}
                model, seconds = train_network(arch, sigma, study, run_dir, data_dir, tag=loss, overlay=overlay)
                val_limit = study.config(arch)["data"].get("val_limit")
                data = NoisyDataModule(sigma=sigma, data_dir=data_dir, download=False, val_limit=val_limit)
                data.prepare_data(), data.setup()
                metrics = score(restore(model, data.val_set.noisy), to_unit(data.val_set.clean))
                rows.append({"architecture": arch, "sigma": sigma, "loss": loss, **metrics, "train_s": round(seconds, 1),
                             "train_images": limit})
    epochs = {arch: study.config(arch)["trainer"]["max_epochs"] for arch in ARCHITECTURES}
    lines = [f"# MSE vs BCE on {len(data.val_set)} validation images (budget `{budget_name}`: "
             + ", ".join(f"{arch} {plural(epochs[arch], 'epoch')}" for arch in ARCHITECTURES)
             + f" on {rows[0]['train_images']} training images per model)", "",
             *tables.markdown(["architecture", "σ", "loss", "PSNR (dB)", "SSIM", "training (s)"],
                              [[r["architecture"], f"{r['sigma']:g}", r["loss"], f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                                f"{r['train_s']:.0f}"] for r in rows], align="lrlrrr")]
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


def paired_tests(rows: list[dict], per_image: dict[tuple[str, float], torch.Tensor]) -> list[dict]:
    """The study's two questions, image by image at each sigma: is the improved network better than the best tuned
    classical filter, and is the exercise's autoencoder better than its noisy input? (paired t-test over images)"""
    found = []
    for sigma in SIGMAS:
        for a, b in ((LABELS["improved"], best_classical(rows, sigma)["method"]), (LABELS["reference"], "noisy input")):
            if (a, sigma) in per_image and (b, sigma) in per_image:
                diff, p = paired_psnr(per_image[a, sigma], per_image[b, sigma])
                found.append({"sigma": sigma, "a": a, "b": b, "psnr_diff": diff, "p": p, "n": len(per_image[a, sigma])})
    return found


def write_results(rows: list[dict], run_dir: Path, study: Study, paired: list[dict] | None = None) -> None:
    trained = {arch: {"label": LABELS[arch], "epochs": c["trainer"]["max_epochs"],
                      "train_images": c["data"].get("train_limit") or 54000, "loss": c["model"]["loss"],
                      "batch_size": c["data"]["batch_size"], "lr": c["model"]["optimizer"]["init_args"]["lr"]}
               for arch, c in ((arch, study.config(arch)) for arch in ARCHITECTURES)}
    with open(run_dir / "results.csv", "w", newline="") as f:
        fields = ["method", "kind", "sigma", "psnr", "ssim", "params", "train_s", "parameters", "apply_s", "n_test"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: json.dumps(r.get(k)) if k == "params" else r.get(k, "") for k in fields})
    write_text(run_dir / "results.json",
               json.dumps({**asdict(study), "networks": trained, "rows": rows, "paired": paired or []}, indent=2) + "\n")

    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["sigma"]): r for r in rows}
    n_test = rows[0]["n_test"]
    sigmas = [f"σ={s:g}" for s in SIGMAS]
    networks = [m for m in methods if cell[m, SIGMAS[0]]["kind"] == "network"]
    tuned = [m for m in methods if cell[m, SIGMAS[0]]["kind"] == "classical" and cell[m, SIGMAS[0]]["params"]]
    best = {s: best_classical(rows, s) for s in SIGMAS}
    lines = [
        f"# Denoising Fashion-MNIST: PSNR (dB) / SSIM, mean over {n_test} test images (budget `{study.budget}`)",
        "",
        f"Every method is scored on the same fixed noisy copies of the first {n_test} test images (seed "
        f"{NOISE_SEEDS['test']}), by the same function. Classical parameters were tuned per sigma on "
        f"{study.tune_images} training images; networks trained "
        + "; ".join(f"{t['label']} {plural(t['epochs'], 'epoch')} on {t['train_images']} training images at batch "
                    f"{t['batch_size']}, peak lr {t['lr']:g}, loss `{t['loss']}`" for t in trained.values())
        + " (each network's whole recipe: models/*/version_*/config.yaml).",
        "",
        *tables.markdown(["method", *sigmas], [[m, *(f"{cell[m, s]['psnr']:.2f} / {cell[m, s]['ssim']:.3f}" for s in SIGMAS)]
                                               for m in methods]),
        "", "Margin over the best classical filter at each σ (ΔPSNR dB / ΔSSIM; target for the improved model: ≥ +4 dB and > 0):", "",
        *tables.markdown(["network", *(f"σ={s:g} (vs {best[s]['method']})" for s in SIGMAS)],
                         [[m, *(f"{cell[m, s]['psnr'] - best[s]['psnr']:+.2f} / {cell[m, s]['ssim'] - best[s]['ssim']:+.3f}"
                                for s in SIGMAS)] for m in networks]),
        "", "Tuned classical parameters (on training images):", "",
        *tables.markdown(["method", *sigmas], [[m, *(", ".join(f"{k}={v}" for k, v in cell[m, s]["params"].items())
                                                     for s in SIGMAS)] for m in tuned]),
        "", "Training time per model (wall clock, this machine):", "",
        *tables.markdown(["network", *sigmas, "blind"],
                         [[f"{label} ({cell[label, SIGMAS[0]]['parameters']:,} parameters)",
                           *(f"{cell[label, s]['train_s']:.0f} s" for s in SIGMAS),
                           f"{cell[label + ' (blind)', SIGMAS[0]]['train_s']:.0f} s"] for label in LABELS.values()]),
    ]
    write_text(run_dir / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def plot_grids(run_dir: Path, clean: torch.Tensor, noisy: dict, restored: dict, rows: list[dict]) -> None:
    for sigma in SIGMAS:
        best = best_classical(rows, sigma)["method"]
        panels = [("clean", clean), (f"noisy σ={sigma:g}", noisy[sigma]), (f"best classical: {best}", restored[best][sigma]),
                  (LABELS["reference"], restored[LABELS["reference"]][sigma]), (LABELS["improved"], restored[LABELS["improved"]][sigma])]
        plots.image_rows([(title, images[:, 0].numpy()) for title, images in panels], run_dir / f"grid_sigma{sigma:g}.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=budgets.NAMES,
                        help="configs/experiments/budgets.yaml: full (default) is the study as configs/experiments/"
                             "denoising.yaml states it; standard: one epoch on a sixth of the data; smoke: tiny subsets "
                             "for CI. Default with --resume: the folder's")
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
