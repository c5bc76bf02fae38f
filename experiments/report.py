"""The practical's report, built from the finished parts' own output files and nothing typed by hand.

    python -m experiments.practical --report-only --budget smoke     # rebuild it from the finished parts
    python -m experiments.report --update-docs results/practical_standard.json   # README's results table from a results file

Writes into the report folder: results.json (every number the report states, each with the command and configs that
produced it, and the environment), report.md, index.html (standalone: figures embedded) and figures/.
Every figure in the text goes through `Numbers.add`, which is what puts it in results.json; the discussion
(experiments.discussion) reads only those numbers.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
from pathlib import Path

from experiments import discussion
from experiments import notebook
from experiments.document import Cell, Code, Document, Figure, Heading, Para, Table, markdown, to_html
from core.runs import UsageError, read_record, write_json, write_text
from core import budgets, flags


class Numbers:
    """Every number the report states: key -> value, the text shown, and the command and configs behind it."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}

    def add(self, key: str, value: float | int, text: str, record: dict | None = None, unit: str = "") -> str:
        self.entries[key] = {"value": value, "text": text, "unit": unit,
                             "command": record["command"] if record else None,
                             "configs": record.get("configs", []) if record else []}
        return text

    def value(self, key: str) -> float:
        return self.entries[key]["value"]

    def text(self, key: str) -> str:
        return self.entries[key]["text"]


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f} %"


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def pct_mean_std(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{100 * m:.2f} ± {100 * s:.2f} %" if s == s else f"{100 * m:.2f} %"


def seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s / 60:.1f} min"


# --- reading the parts -----------------------------------------------------------------------------------------


def finished_records(home: Path, seeds: int | None = None) -> list[dict]:
    """The records of the finished parts in <runs>/practical/<budget>/parts, in the order the practical runs them."""
    from experiments.practical import parts

    runs, budget = home.parent.parent, home.name
    records = []
    for part in parts(budget, runs, seeds):
        path = home / "parts" / f"{part.name}.json"
        if not path.is_file():
            raise UsageError(f"{part.name} has not finished ({path} missing): run python -m experiments.practical "
                             f"--budget {budget} --runs-dir {runs}")
        records.append(read_record(path, "part record"))
    return records


def read_json(path: Path) -> dict:
    return read_record(path, "results file")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- environment -------------------------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import torch

    versions = {}
    for name in ("torch", "torchvision", "lightning", "torchmetrics", "keras", "sklearn", "skimage", "numpy", "jax", "bm3d"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            continue
    gpu = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "keras_backend": os.environ.get("KERAS_BACKEND", "torch"),
        "packages": versions,
    }


# --- architecture tables from the live models ------------------------------------------------------------------


def recipe_net(recipe: str) -> dict:
    """A recipe's ``model.net`` (class_path + init_args); the specified CNN when the recipe leaves the default."""
    from core import configs

    return configs.load(recipe)["model"].get("net") or {
        "class_path": "lightning_impl.models.specified_cnn.SpecifiedCNN", "init_args": {}}


def build_pair(net_config: dict, input_shape: tuple[int, int, int], num_classes: int = 10):
    """The torch net of a recipe's ``model.net`` and its Keras twin, built as the trainers build them."""
    import torch

    from keras_ref.models import TWINS

    module, _, cls = net_config["class_path"].rpartition(".")
    args = dict(net_config.get("init_args") or {})
    torch_net = getattr(importlib.import_module(module), cls)(**args)
    torch_net.eval()
    c, h, w = input_shape
    keras_args = {k: v for k, v in args.items() if k not in ("in_channels", "input_size", "num_classes")}
    keras_net = TWINS[cls]((h, w, c), num_classes, **keras_args) if cls in ("SpecifiedCNN", "ImprovedCNN") else \
        TWINS[cls]((h, w, c), **keras_args)
    with torch.no_grad():
        torch_net(torch.zeros(1, *input_shape))
    return torch_net, keras_net


def architecture_table(torch_net, keras_net, input_shape: tuple[int, int, int]) -> Table:
    """Layer by layer, read from both live models: type, output shape, parameters."""
    import numpy as np
    import torch

    from parity.shapes import corresponding_layers, keras_trace, torch_trace

    pairs = corresponding_layers(torch_net, keras_net)
    x = torch.zeros(2, *input_shape)
    t_out = torch_trace(torch_net.eval(), x, [p.torch_name for p in pairs])
    k_out = keras_trace(keras_net, np.zeros((2, *input_shape[1:], input_shape[0]), dtype="float32"))

    def shape(s) -> str:
        return "×".join(str(d) for d in s[1:])

    rows = []
    for p in pairs:
        t_params = sum(q.numel() for q in p.torch_layer.parameters())
        k_params = sum(int(np.prod(w.shape)) for w in p.keras_layer.trainable_weights)
        rows.append([p.name, type(p.torch_layer).__name__, shape(t_out[p.torch_name][1].shape), f"{t_params:,}",
                     type(p.keras_layer).__name__, shape(k_out[p.name].shape), f"{k_params:,}"])
    t_total = sum(q.numel() for q in torch_net.parameters())
    k_total = sum(int(np.prod(w.shape)) for w in keras_net.trainable_weights)
    rows.append(["**total**", "", "", f"**{t_total:,}**", "", "", f"**{k_total:,}**"])
    return Table(["layer", "torch module", "torch output (C×H×W)", "params", "Keras layer", "Keras output (H×W×C)", "params"],
                 rows, align="lllrllr")


# --- figures -------------------------------------------------------------------------------------------------------


def hog_figure(path: Path) -> Path:
    """Four test digits, deskewed as the baseline deskews them, beside their HOG features (the finest cell size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.feature import hog

    from core.datasets import ensure_available, load_split
    from parity.baseline import CHOSEN
    from parity.hog import deskew

    images, labels = load_split("mnist", ensure_available("mnist"), train=False)
    params = CHOSEN["mnist"]["hog"]
    picks = [int((labels == d).nonzero()[0][0]) for d in (0, 3, 7, 8)]
    cell = min(params["pixels_per_cell"])
    fig, axes = plt.subplots(2, len(picks), figsize=(2.2 * len(picks), 4.6))
    for i, k in enumerate(picks):
        image = images[k, 0].numpy().astype("float64")
        image = deskew(image) if params["deskew"] else image
        _, picture = hog(image, orientations=params["orientations"], pixels_per_cell=(cell, cell),
                         cells_per_block=(params["cells_per_block"],) * 2, block_norm=params["block_norm"], visualize=True)
        axes[0][i].imshow(image, cmap="gray"), axes[0][i].set_title(f"digit {int(labels[k])}", fontsize=9)
        axes[1][i].imshow(picture, cmap="magma"), axes[1][i].set_title(f"HOG, {cell}-pixel cells", fontsize=9)
        for ax in (axes[0][i], axes[1][i]):
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(", ".join(f"{k}={v}" for k, v in params.items()), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def seeds_figure(groups: dict[str, list[float]], path: Path, title: str) -> Path:
    """Test accuracy per seed and mean ± std per group (framework, method)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, (label, values) in enumerate(groups.items()):
        m, s = mean_std(values)
        ax.errorbar([i], [100 * m], yerr=[100 * s] if s == s else None, fmt="o", capsize=6, color="C%d" % i)
        ax.scatter([i] * len(values), [100 * v for v in values], marker="x", color="grey", zorder=3)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel("test accuracy (%)"), ax.set_title(title, fontsize=10), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def copy_figure(source: Path, figures: Path, name: str) -> Path | None:
    if not Path(source).is_file():
        return None
    target = figures / name
    shutil.copyfile(source, target)
    return target


# --- the sections ----------------------------------------------------------------------------------------------------


class Context:
    def __init__(self, records: list[dict], budget: str, out: Path, command: str) -> None:
        self.records, self.budget, self.out, self.command = records, budget, out, command
        self.figures = out / "figures"
        self.numbers = Numbers()
        self.claims: list[str] = []  # the discussion's paragraphs, as written into results.json
        self.tables: dict[str, dict] = {}  # named tables, kept in results.json for the docs (DOC_TABLES)
        self.doc = Document(f"The deep-learning practical: report ({budget} budget)")

    def table(self, name: str, table: Table, command: str) -> Table:
        """A table of the report that docs/ pages also show: kept in results.json with the command behind it."""
        self.tables[name] = {"header": table.header, "rows": table.rows, "caption": table.caption,
                             "align": table.align, "command": command}
        return table

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


def section_overview(ctx: Context, env: dict) -> None:
    total = sum(r["wall_s"] for r in ctx.records)
    ctx.doc.add(Para(
        f"Generated {env['date']} by `{ctx.command}` from {len(ctx.records)} finished parts "
        f"(their own wall time: {ctx.numbers.add('total_part_s', total, seconds(total), {'command': ctx.command})}). Every number below "
        "is in results.json beside the command and the configs that produced it; the figures come from the runs "
        "themselves. Each part is one command of the project and can be re-run alone."))
    if ctx.budget == "smoke":
        ctx.doc.add(Para("**The smoke budget checks that every part runs and the report builds.** Its networks see a "
                         "small share of one epoch, so their accuracies say nothing about the methods; "
                         "`--budget standard` trains the recipes themselves."))
    ctx.doc.add(Heading("Environment"))
    rows = [["CPU", f"{env['cpu']} ({env['cpu_cores']} cores, torch threads {env['torch_threads']})"],
            ["GPU", ", ".join(env["gpu"]) or "none"], ["Python", env["python"]], ["platform", env["platform"]],
            ["Keras backend", env["keras_backend"]]]
    rows += [[name, version] for name, version in env["packages"].items()]
    ctx.doc.add(Table(["what", "version / value"], rows, align="ll"))
    ctx.doc.add(Heading("Parts and their commands", 3),
                Table(["part", "command", "wall time"],
                      [[r["title"], f"`{r['command']}`", seconds(r["wall_s"])] for r in ctx.records], align="llr"))


def over_seeds(records: list[dict]) -> dict:
    """One record standing for the same command run over several seeds: the seed written S, the seeds listed."""
    import re

    seeds = [r["meta"]["seed"] for r in records]
    if len(seeds) == 1:
        return records[0]
    command = re.sub(r"(--seed(?:_everything)?) \d+", r"\1 S", records[0]["command"])
    return {**records[0], "command": f"{command}  (S = {', '.join(map(str, seeds))})"}


def section_specified(ctx: Context) -> dict:
    from core import configs, plots

    runs = ctx.of_kind("specified")
    by_fw: dict[str, list[tuple[dict, dict]]] = {}
    for r in runs:
        by_fw.setdefault(r["meta"]["framework"], []).append((r, read_json(Path(r["output"]) / "metrics.json")))
    ctx.doc.add(Heading("Specified CNN on MNIST"))
    torch_net, keras_net = build_pair(recipe_net("mnist_specified_cnn.yaml"), (1, 28, 28))
    ctx.doc.add(Para("The network the exercise gives, built from its recipe in both frameworks as the trainers build "
                     "it (configs/mnist_specified_cnn.yaml; lightning_impl/models/specified_cnn.py and its Keras twin):"),
                Cell('notebook.summarise("mnist_specified_cnn.yaml", (1, 28, 28))'),
                Para("The architecture, read layer by layer from the live models of both frameworks (a batch of "
                     "zeros through each; shapes without the batch axis):"),
                architecture_table(torch_net, keras_net, (1, 28, 28)))
    rows, accs, summary = [], {}, {}
    for fw, items in by_fw.items():
        label = {"lightning": "Lightning", "keras": "Keras"}[fw]
        values = [m["test_acc"] for _, m in items]
        accs[label] = values
        n = ctx.numbers
        mean, std = mean_std(values)
        n.add(f"specified_{fw}_test_acc_mean", mean, pct_mean_std(values), over_seeds([r for r, _ in items]))
        if std == std:
            n.add(f"specified_{fw}_test_acc_std", std, f"{100 * std:.2f}", items[0][0])
        n.add(f"specified_{fw}_seeds", len(values), str(len(values)), items[0][0])
        train = statistics.fmean(m["train_s"] for _, m in items)
        n.add(f"specified_{fw}_train_s", train, seconds(train), over_seeds([r for r, _ in items]))
        test_s = [m["test_s"] for _, m in items if "test_s" in m]
        if test_s:
            n.add(f"specified_{fw}_test_s", statistics.fmean(test_s), seconds(statistics.fmean(test_s)), items[0][0])
        n.add(f"specified_{fw}_parameters", items[0][1]["parameters"], f"{items[0][1]['parameters']:,}", items[0][0])
        n.add(f"specified_{fw}_epochs", items[0][1]["epochs"], str(items[0][1]["epochs"]), items[0][0])
        m0 = items[0][1]  # images seen per epoch: throughput × time, as the run measured them
        per_epoch = round(statistics.fmean(r * t for r, t in zip(m0["train_images_per_s"], m0["epoch_time_s"])))
        n.add(f"specified_{fw}_images_per_epoch", per_epoch, f"{per_epoch:,}", items[0][0])
        summary[fw] = {"values": values, "record": items[0][0], "metrics": items[0][1]}
        rows.append([label, str(len(values)), ", ".join(pct(v) for v in values), n.text(f"specified_{fw}_test_acc_mean"),
                     n.text(f"specified_{fw}_epochs"), n.text(f"specified_{fw}_train_s"),
                     n.text(f"specified_{fw}_test_s") if test_s else "—"])
    ctx.doc.add(ctx.table("specified_seeds", Table(
        ["framework", "seeds", "test accuracy per seed", "mean ± std", "epochs", "training time (mean)",
         "test-set prediction time"], rows, caption="The checkpoint with the best validation accuracy of each run, tested once."),
        "; ".join(over_seeds([r for r, _ in items])["command"] for items in by_fw.values())))
    ctx.doc.add(Figure(seeds_figure(accs, ctx.figures / "specified_seeds.png", "specified CNN: test accuracy per seed"),
                       "Test accuracy per seed (crosses) and mean ± std over seeds."))
    tables = {}
    for fw, items in by_fw.items():
        run = Path(items[0][0]["output"])
        tables["Lightning" if fw == "lightning" else "Keras"] = plots.epoch_table(run / "metrics.csv")
    curves = plots.learning_curves(tables, ctx.figures / "specified_learning_curves.png",
                                   "specified CNN: both frameworks, first seed")
    ctx.doc.add(Figure(curves, "Learning curves of both frameworks (first seed): loss and accuracy per epoch, training vs validation."))
    first = Path(by_fw["lightning"][0][0]["output"]) / "figures"
    for name, caption in (("confusion_matrix.png", "Confusion matrix on the test set (Lightning, first seed)."),
                          ("misclassified.png", "The test digits it got wrong with the highest confidence (Lightning, first seed).")):
        copied = copy_figure(first / name, ctx.figures, f"specified_{name}")
        if copied:
            ctx.doc.add(Figure(copied, caption))
    return summary


def section_baseline(ctx: Context, specified: dict) -> None:
    (record,) = ctx.of_kind("baseline")
    m = read_json(Path(record["output"]) / "metrics.json")
    n = ctx.numbers
    ctx.doc.add(Heading("HOG + SVM against the CNN"))
    n.add("baseline_test_acc", m["test_acc"], pct(m["test_acc"]), record)
    n.add("baseline_fit_s", m["fit_time_s"], seconds(m["fit_time_s"]), record)
    n.add("baseline_predict_s", m["predict_time_s"], seconds(m["predict_time_s"]), record)
    n.add("baseline_features", m["feature_length"], f"{m['feature_length']:,}", record)
    n.add("baseline_n_fit", m["n_fit"], f"{m['n_fit']:,}", record)
    n.add("baseline_support_vectors", m["n_support_vectors"], f"{m['n_support_vectors']:,}", record)
    rows = [["HOG + SVM (RBF)", n.text("baseline_test_acc"), n.text("baseline_fit_s"), n.text("baseline_predict_s"),
             f"{n.text('baseline_features')} HOG features, {n.text('baseline_support_vectors')} support vectors",
             n.text("baseline_n_fit")]]
    cnn = specified.get("lightning")
    if cnn:
        rows.append(["specified CNN (Lightning, mean over seeds)", n.text("specified_lightning_test_acc_mean"),
                     n.text("specified_lightning_train_s"),
                     n.text("specified_lightning_test_s") if "specified_lightning_test_s" in n.entries else "—",
                     f"{n.text('specified_lightning_parameters')} parameters",
                     f"{n.text('specified_lightning_images_per_epoch')} × {n.text('specified_lightning_epochs')} epochs"])
    ctx.doc.add(Para("The classical baseline: histogram-of-oriented-gradient features of each deskewed digit, scaled, "
                     "into an RBF-kernel SVM (scikit-learn pipeline; parameters chosen on the validation split, "
                     "parity/baseline.py). Time to train and to predict the 10,000 test images on this machine:"),
                ctx.table("baseline_vs_cnn", Table(["method", "test accuracy", "training time", "test-set prediction time",
                                                    "size", "training images"], rows),
                          record["command"] + (f"; {n.entries['specified_lightning_train_s']['command']}" if cnn else "")))
    ctx.doc.add(Figure(hog_figure(ctx.figures / "hog_features.png"), "What the SVM sees: HOG features of four test digits."))
    copied = copy_figure(Path(record["output"]) / "confusion_matrix.png", ctx.figures, "baseline_confusion_matrix.png")
    if copied:
        ctx.doc.add(Figure(copied, "HOG + SVM confusion matrix on the test set."))


LADDER_HEADER = ["step", "change", "params", "test acc %", "val acc %", "Δ val (pp)", "decision", "s/epoch"]


def section_ladders(ctx: Context) -> None:
    from core import configs

    ladders = ctx.of_kind("ladder")
    if not ladders:
        return
    ctx.doc.add(Heading("Improved CNN: the ablation ladders"))
    ctx.doc.add(Para("From the specified CNN to the improved recipe one change at a time (configs/ablation/<dataset>/). "
                     "A step is kept when its mean validation accuracy beats the last kept step's; a speed step "
                     "(bf16) unless it loses more than the noise. Test accuracy is read for the report only."))
    n = ctx.numbers
    for record in ladders:
        out = Path(record["output"])
        dataset, fw = record["meta"]["dataset"], record["meta"]["framework"]
        spec = read_json(out / "ladder.json")
        rows = read_csv(out / "ladder.csv")
        ctx.doc.add(Heading(f"{ {'mnist': 'MNIST', 'cifar10': 'CIFAR-10'}[dataset]}, {fw.capitalize()}", 3))
        table = []
        for r in rows:
            tag = f"ladder_{dataset}_{fw}_{r['step']}"
            test, val = float(r["test_acc_mean"]), float(r["val_acc_mean"])
            if test != test:
                table.append([r["step"], r["change"], f"{int(r['parameters']):,}", "—", "—", "", r["decision"], "—"])
                continue
            ts, vs = float(r["test_acc_std"]), float(r["val_acc_std"])
            n.add(f"{tag}_test_acc", test, f"{100 * test:.2f}" + (f" ± {100 * ts:.2f}" if ts == ts else ""), record)
            n.add(f"{tag}_val_acc", val, f"{100 * val:.2f}" + (f" ± {100 * vs:.2f}" if vs == vs else ""), record)
            delta = float(r["delta_val"])
            if delta == delta:
                n.add(f"{tag}_delta_val", delta, f"{100 * delta:+.2f}", record)
            n.add(f"{tag}_s_per_epoch", float(r["s_per_epoch"]), f"{float(r['s_per_epoch']):.1f}", record)
            table.append([r["step"], r["change"], f"{int(r['parameters']):,}", n.text(f"{tag}_test_acc"),
                          n.text(f"{tag}_val_acc"), n.text(f"{tag}_delta_val") if delta == delta else "",
                          r["decision"], n.text(f"{tag}_s_per_epoch")])
        ran = [r for r in rows if r["decision"] in ("first", "kept")]
        for name, r in (("first", ran[0]), ("final", ran[-1])):  # the first step, and the last one kept
            key = f"ladder_{dataset}_{fw}_{r['step']}_test_acc"
            n.add(f"ladder_{dataset}_{fw}_{name}_test_acc", n.value(key), n.text(key), record)
        seeds, epochs = int(rows[0]["seeds"]), rows[0]["epochs"]
        n.add(f"ladder_{dataset}_{fw}_seeds", seeds, str(seeds), record)
        ctx.doc.add(ctx.table(f"ladder_{dataset}_{fw}", Table(
            LADDER_HEADER, table, align="llrrrrlr",
            caption=f"{dataset}, {fw}, budget {spec['budget']}: {seeds} seed(s), {epochs} epoch(s) per run; mean ± std over seeds"),
            record["command"]))
        png = copy_figure(out / "ladder.png", ctx.figures, f"ladder_{dataset}_{fw}.png")
        if png:
            ctx.doc.add(Figure(png, f"{dataset} ladder ({fw}): accuracy per step (mean ± std over seeds), time per epoch."))
        discussion.ladder(ctx, dataset, fw, rows)
    for dataset, shape in (("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))):
        if not any(r["meta"]["dataset"] == dataset for r in ladders):
            continue
        net = configs.load(f"{dataset}_improved.yaml")["model"]["net"]
        torch_net, keras_net = build_pair(net, shape)
        ctx.doc.add(Heading(f"Final architecture, {'MNIST' if dataset == 'mnist' else 'CIFAR-10'} (configs/{dataset}_improved.yaml)", 3),
                    architecture_table(torch_net, keras_net, shape))


def section_denoiser(ctx: Context) -> None:
    """The exercise's denoising autoencoder trained by both frameworks on the same recipe."""
    from core import plots

    runs = ctx.of_kind("denoiser")
    if not runs:
        return
    n = ctx.numbers
    ctx.doc.add(Heading("Denoising autoencoder in both frameworks"))
    rows, tables = [], {}
    for r in runs:
        fw = r["meta"]["framework"]
        m = read_json(Path(r["output"]) / "metrics.json")
        label = "Lightning" if fw == "lightning" else "Keras"
        n.add(f"denoiser_{fw}_test_psnr", m["test_psnr"], f"{m['test_psnr']:.2f}", r, "dB")
        n.add(f"denoiser_{fw}_test_ssim", m["test_ssim"], f"{m['test_ssim']:.3f}", r)
        n.add(f"denoiser_{fw}_train_s", m["train_s"], seconds(m["train_s"]), r)
        n.add(f"denoiser_{fw}_parameters", m["parameters"], f"{m['parameters']:,}", r)
        rows.append([label, n.text(f"denoiser_{fw}_test_psnr"), n.text(f"denoiser_{fw}_test_ssim"),
                     n.text(f"denoiser_{fw}_parameters"), str(m["epochs"]), n.text(f"denoiser_{fw}_train_s")])
        tables[label] = plots.epoch_table(Path(r["output"]) / "metrics.csv")
    sigma = read_json(Path(runs[0]["output"]) / "metrics.json").get("sigma")
    ctx.doc.add(Para(f"configs/denoise_reference.yaml (the exercise's convolutional autoencoder, MSE loss) on "
                     f"Fashion-MNIST with Gaussian noise σ {sigma}, the same recipe read by both trainers; the test "
                     "score is on the fixed noisy test copy. The network in both frameworks:"),
                Cell('notebook.summarise("denoise_reference.yaml", (1, 28, 28))'),
                Table(["framework", "test PSNR (dB)", "test SSIM", "parameters", "epochs", "training time"], rows))
    ctx.doc.add(Figure(plots.learning_curves(tables, ctx.figures / "denoiser_learning_curves.png",
                                             "reference denoiser: both frameworks"),
                       "Learning curves (loss per epoch, training vs validation) of both frameworks."))
    lightning = next((r for r in runs if r["meta"]["framework"] == "lightning"), None)
    grid = lightning and copy_figure(Path(lightning["output"]) / "figures" / "denoise_grid.png", ctx.figures,
                                     "denoiser_grid.png")
    if grid:
        ctx.doc.add(Figure(grid, "Test images: clean, noisy, denoised (Lightning)."))


def section_denoise(ctx: Context) -> None:
    (record,) = ctx.of_kind("denoise")
    out = Path(record["output"])
    result = read_json(out / "results.json")
    rows, n = result["rows"], ctx.numbers
    sigmas = sorted({r["sigma"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["sigma"]): r for r in rows}
    ctx.doc.add(Heading("Denoising Fashion-MNIST"))
    n.add("denoise_n_test", rows[0]["n_test"], f"{rows[0]['n_test']:,}", record)
    ctx.doc.add(Para(f"Every method restores the same fixed noisy copies of {n.text('denoise_n_test')} test images "
                     "(Gaussian noise, clipped to [0, 1]) and is scored by one function; classical filters are tuned "
                     "per σ on training images, networks are trained per σ (and one blind model over a range of σ). "
                     f"Budget `{result['budget']}`: "
                     + "; ".join(f"{t['label']} {t['epochs']} epoch(s) on {t['train_images']:,} training images"
                                 for t in result["networks"].values()) + " per noise level."))
    table = []
    for m in methods:
        line = [m]
        for s in sigmas:
            r = cell.get((m, s))
            if r is None:
                line.append("—")
                continue
            key = f"denoise_{m}_{s:g}".replace(" ", "_")
            n.add(f"{key}_psnr", r["psnr"], f"{r['psnr']:.2f}", record, "dB")
            n.add(f"{key}_ssim", r["ssim"], f"{r['ssim']:.3f}", record)
            line.append(f"{n.text(key + '_psnr')} / {n.text(key + '_ssim')}")
        table.append(line)
    ctx.doc.add(ctx.table("denoise_study", Table(
        ["method"] + [f"σ = {s:g}" for s in sigmas], table,
        caption=f"PSNR (dB) / SSIM, mean over {n.text('denoise_n_test')} test images, budget {result['budget']}"),
        record["command"]))
    for s in sigmas:
        n.add(f"denoise_sigma_{s:g}", s, f"{s:g}", record)
    curves = copy_figure(out / "metrics_vs_sigma.png", ctx.figures, "denoise_metrics_vs_sigma.png")
    if curves:
        ctx.doc.add(Figure(curves, "PSNR and SSIM against the noise level, every method."))
    for s in sigmas:
        grid = copy_figure(out / f"grid_sigma{s:g}.png", ctx.figures, f"denoise_grid_sigma{s:g}.png")
        if grid:
            ctx.doc.add(Figure(grid, f"σ = {s:g}: clean, noisy, the best classical filter, the reference autoencoder, the U-Net."))
    discussion.denoise(ctx, rows, sigmas, record)


def section_parity(ctx: Context) -> None:
    (record,) = ctx.of_kind("parity")
    payload = read_json(Path(record["output"]))
    ctx.doc.add(Heading("Parity: the two frameworks implement the same models"))
    backends = list(payload["backends"])
    pairs = list(dict.fromkeys(p for b in backends for p in payload["backends"][b]["pairs"]))

    def tally(rows: list[dict]) -> str:
        run = [r for r in rows if r["result"] != "skip"]
        skipped = len(rows) - len(run)
        return f"{sum(r['result'] == 'pass' for r in run)} / {len(run)} pass" + (f", {skipped} not run" if skipped else "")

    ctx.doc.add(Para("Checks 1–4 and 6 of parity/ for every registered model pair, on each Keras backend: "
                     "parameters, per-layer output shapes, outputs with shared weights, training steps, and the "
                     "recipe around the model (initialisation, optimiser, learning rate at every step, steps of "
                     "each framework's own optimiser; not run where Keras does not translate the recipe) "
                     "(docs/parity.md)."),
                ctx.table("parity_summary", Table(
                    ["model pair", *[f"Keras on {b}" for b in backends]],
                    [[p, *[tally(payload["backends"][b]["pairs"].get(p, [])) for b in backends]] for p in pairs],
                    align="l" * (1 + len(backends))), record["command"]))
    checks = passed = 0
    for backend, result in payload["backends"].items():
        for pair, rows in result["pairs"].items():
            ctx.doc.add(Heading(f"{pair} (Keras on {backend})", 3))
            ctx.doc.add(Table(["check", "value", "bound", "result"],
                              [[r["check"], r["value"], r["bound"], r["result"]] for r in rows], align="llll"))
            checks += sum(r["result"] != "skip" for r in rows)
            passed += sum(r["result"] == "pass" for r in rows)
    ctx.numbers.add("parity_checks", checks, str(checks), record)
    ctx.numbers.add("parity_passed", passed, str(passed), record)
    ctx.numbers.add("parity_backends", len(payload["backends"]), str(len(payload["backends"])), record)


def section_running(ctx: Context, runs_dir: str, seeds: int, data_dir: str | None) -> None:
    """How to run it: the notebook's two first code cells (the parameters, then every part run or reused)."""
    ctx.doc.add(Heading("Running it"),
                Para(f"The whole practical is one command, `{ctx.command}`; in the notebook (practical.ipynb, beside "
                     "this page) it is the two cells below: the parameters, fixed once, then every part, each one "
                     "command of the project run in a process of its own. A part whose command and configs are "
                     "unchanged since it finished is reused, so re-running takes seconds; an interrupted practical "
                     "goes on where it stopped."),
                notebook.parameters_cell(ctx.budget, runs_dir, seeds, data_dir), notebook.RUN_CELL)


def build(records: list[dict], budget: str, out: Path, command: str, runs_dir: str = "runs",
          with_notebook: bool = False, seeds: int | None = None, data_dir: str | None = None) -> Path:
    """Write the report folder from the parts' records; the path of index.html. ``with_notebook``: also
    practical.ipynb, executed (``runs_dir`` is the runs folder as the practical was given it)."""
    final = Path(out)
    # Built beside the old report and swapped in at the end: a failure leaves the previous report whole, and a
    # stale figure never survives into the new one (the folder is generated, never edited).
    out = final.with_name(final.name + ".partial")
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    env = environment()
    ctx = Context(records, budget, out, command)
    section_overview(ctx, env)

    section_running(ctx, runs_dir, seeds or budgets.budget("practical", budget)["seeds"], data_dir)
    specified = section_specified(ctx)
    section_baseline(ctx, specified)
    section_ladders(ctx)
    section_denoiser(ctx)
    section_denoise(ctx)
    section_parity(ctx)
    discussion.summary(ctx, specified)
    headline = [Heading("Headline results"), Table(["what", "figure", "command"], [list(r) for r in headline_rows(ctx.numbers.entries)], align="lll")]
    first = next(i for i, b in enumerate(ctx.doc.blocks) if isinstance(b, Heading))
    ctx.doc.blocks[first:first] = headline  # before the environment: what a reader looks for first
    write_json(out / "results.json", {"budget": budget, "command": command, "environment": env,
                                      "parts": records, "numbers": ctx.numbers.entries, "discussion": ctx.claims,
                                      "tables": ctx.tables})
    write_text(out / "report.md", markdown(ctx.doc, out))
    write_text(out / "index.html", to_html(ctx.doc))
    if with_notebook:
        try:
            notebook.write(ctx.doc, out)
        except notebook.NotebookError as err:
            raise UsageError(f"{err} (the previous report, if any, is kept; the one being built is in {out})") from None
    if final.exists():
        shutil.rmtree(final)
    out.rename(final)
    return final / "index.html"


# --- docs rendered from a committed results file ---------------------------------------------------------------------

BEGIN, END = "<!-- results table: generated by python -m experiments.report --update-docs; do not edit -->", "<!-- end of results table -->"


def headline_rows(num: dict) -> list[tuple[str, str, str]]:
    """(what, figure, command) for the headline figures found in a results.json's ``numbers``."""

    def row(what: str, keys: list[str], joiner: str = " / ") -> tuple[str, str, str] | None:
        if not all(k in num for k in keys):
            return None
        figure = joiner.join(num[k]["text"] for k in keys)
        return what, figure, "; ".join(dict.fromkeys(f"`{num[k]['command']}`" for k in keys))

    seeds = num.get("specified_lightning_seeds", {}).get("text", "?")
    candidates = [
        row(f"specified CNN, test accuracy over {seeds} seed(s), Lightning / Keras",
            ["specified_lightning_test_acc_mean", "specified_keras_test_acc_mean"]),
        row("specified CNN, training time per run, Lightning / Keras", ["specified_lightning_train_s", "specified_keras_train_s"]),
        row("HOG + SVM, test accuracy / training time", ["baseline_test_acc", "baseline_fit_s"]),
        row("reference denoiser, test PSNR (dB), Lightning / Keras", ["denoiser_lightning_test_psnr", "denoiser_keras_test_psnr"]),
    ]
    for dataset in ("mnist", "cifar10"):
        for fw in ("lightning", "keras"):
            candidates.append(row(f"improved-CNN ladder, {dataset}, {fw}: test accuracy (%), first step / last kept step",
                                  [f"ladder_{dataset}_{fw}_first_test_acc", f"ladder_{dataset}_{fw}_final_test_acc"]))
    gains = sorted((k for k in num if k.startswith("denoise_gain_")), key=lambda k: float(k.rsplit("_", 1)[1]))
    if gains:
        sigmas = " / ".join(k.rsplit("_", 1)[1] for k in gains)
        candidates.append(row(f"denoising U-Net over the best classical filter (dB) at σ {sigmas}", gains))
    candidates.append(row("parity checks passed / run", ["parity_passed", "parity_checks"]))
    return [c for c in candidates if c]


def readme_table(results: dict) -> str:
    """The README's results table from a results.json: figure and command per row."""
    env = results["environment"]
    lines = [BEGIN, "",
             f"Budget `{results['budget']}` of `python -m experiments.practical` (report built {env['date']}), on {env['cpu']} "
             f"({env['cpu_cores']} cores{', GPU ' + ', '.join(env['gpu']) if env['gpu'] else ', no GPU'})"
             + (f"; its {len(results['parts'])} parts took {results['numbers']['total_part_s']['text']} in all"
                if "total_part_s" in results["numbers"] else "")
             + "; every figure with its own command (from the report's results.json).", "",
             "| what | figure | command |", "|---|---|---|"]
    lines += [f"| {what} | {figure} | {command} |" for what, figure, command in headline_rows(results["numbers"])]
    return "\n".join(lines + ["", END])


# docs/ pages and the named tables (Context.table) each shows between its generated markers.
DOC_TABLES = {
    "docs/baseline.md": ["baseline_vs_cnn"],
    "docs/improved.md": ["ladder_mnist_lightning", "ladder_mnist_keras", "ladder_cifar10_lightning"],
    "docs/denoise.md": ["denoise_study"],
    "docs/parity.md": ["parity_summary"],
    "docs/performance.md": ["specified_seeds"],
}
DOC_BEGIN = "<!-- generated tables: python -m experiments.report --update-docs; do not edit -->"
DOC_END = "<!-- end of generated tables -->"


def doc_tables(results: dict, names: list[str]) -> str:
    """A docs page's generated block: the named tables of a results.json, each with its command."""
    from experiments.document import Document, markdown

    env = results["environment"]
    lines = [DOC_BEGIN, "",
             f"From the committed results of `python -m experiments.practical --budget {results['budget']}` "
             f"(report built {env['date']}, {env['cpu']}, {env['cpu_cores']} cores"
             f"{', GPU ' + ', '.join(env['gpu']) if env['gpu'] else ', no GPU'}):", ""]
    for name in names:
        t = results["tables"].get(name)
        if t is None:
            continue
        rendered = markdown(Document("", [Table(t["header"], t["rows"], t["caption"], t["align"])]), Path("."))
        lines += [rendered.split("\n", 2)[2].rstrip(), "", f"Command: `{t['command']}`", ""]
    return "\n".join(lines + [DOC_END])


def _replaced_block(path: Path, begin: str, end: str, block: str) -> str:
    text = path.read_text()
    if begin not in text or end not in text:
        raise UsageError(f"{path}: no generated block (the lines {begin!r} ... {end!r})")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def update_docs(results_file: Path, root: Path = Path(".")) -> list[Path]:
    """Rewrite README.md's results table and every docs page's generated tables; the files that changed.

    All or nothing: every page's new text is made first (a missing block or a damaged results file is refused
    before any page is touched), then each changed page is replaced atomically."""
    results = read_json(results_file)
    pages = {root / "README.md": (BEGIN, END, readme_table(results))}
    pages |= {root / page: (DOC_BEGIN, DOC_END, doc_tables(results, names)) for page, names in DOC_TABLES.items()}
    new = {path: _replaced_block(path, *spec) for path, spec in pages.items()}
    changed = [path for path, text in new.items() if text != path.read_text()]
    for path in changed:
        write_text(path, new[path])
    return changed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(prog="python -m experiments.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--update-docs", type=Path, metavar="RESULTS_JSON", required=True,
                   help="render README.md's results table and the docs/ pages' generated tables from this results file")
    p.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    changed = update_docs(args.update_docs, args.root)
    print("updated: " + (", ".join(map(str, changed)) if changed else "nothing (the docs agree with the results)"))


if __name__ == "__main__":
    sys.exit(main())
