"""The figures every training run draws, in both frameworks: learning curves, confusion matrix, most confidently
misclassified test images, a denoising grid. Plain functions over numpy arrays; each writes one PNG and returns
its path.

Framework-neutral (matplotlib only, Agg backend), so keras_ref draws with the same functions as Lightning.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# The per-epoch keys a learning-curve table may hold; "epoch" counts from 0, as both frameworks log it.
CURVE_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc", "train_psnr", "val_psnr")

# Column names either framework writes -> the neutral key. Lightning logs a metric taken both per step and per
# epoch as <name>_step / <name>_epoch; only the epoch value belongs on a per-epoch curve.
_ALIASES = {
    "train_loss_epoch": "train_loss", "train_acc_epoch": "train_acc",
    "loss": "train_loss", "acc": "train_acc", "accuracy": "train_acc", "psnr": "train_psnr",
    "val_accuracy": "val_acc",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, and no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def epoch_table(metrics_csv: str | Path) -> list[dict[str, float]]:
    """A metrics.csv of either framework as one dict per epoch, keys ``epoch`` and those of CURVE_KEYS found.

    Lightning's CSVLogger writes step rows and epoch rows with empty cells (and a test row after training);
    Keras' CSVLogger one full row per epoch. Test metrics, step values and timings are left out."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    by_epoch: dict[int, dict[str, float]] = {}
    for i, row in enumerate(rows):
        epoch = int(float(row["epoch"])) if row.get("epoch") not in (None, "") else i
        for column, cell in row.items():
            key = _ALIASES.get(column, column)
            if key in CURVE_KEYS and cell not in (None, ""):
                by_epoch.setdefault(epoch, {})[key] = float(cell)
    # A row that holds only test metrics (Lightning logs the test at epoch max_epochs) has no curve keys: dropped.
    return [{"epoch": e, **values} for e, values in sorted(by_epoch.items())]


def learning_curves(runs: Mapping[str, Sequence[Mapping[str, float]]] | Sequence[Mapping[str, float]],
                    path: str | Path, title: str = "") -> Path:
    """Loss, and accuracy (else PSNR) where present, per epoch, training solid and validation dashed; side by side.

    ``runs``: one epoch table (see epoch_table) or several by label (``{"Lightning": t1, "Keras": t2}``),
    each label one colour."""
    if not isinstance(runs, Mapping):
        runs = {"": runs}
    present = {k for table in runs.values() for row in table for k in row}
    panels = [("loss", "loss")]
    if present & {"train_acc", "val_acc"}:
        panels.append(("acc", "accuracy"))
    elif present & {"train_psnr", "val_psnr"}:
        panels.append(("psnr", "PSNR (dB)"))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for colour, (label, table) in enumerate(runs.items()):
        for ax, (metric, _) in zip(axes[0], panels):
            for stage, style in (("train", "-o"), ("val", "--s")):
                points = [(row["epoch"] + 1, row[f"{stage}_{metric}"]) for row in table if f"{stage}_{metric}" in row]
                if points:
                    x, y = zip(*points)
                    name = f"{label} {stage}".strip() if label else stage
                    ax.plot(x, y, style, color=f"C{colour}", label=name, markersize=4)
    for ax, (_, name) in zip(axes[0], panels):
        ax.set_xlabel("epoch"), ax.set_ylabel(name), ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.has_data():
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Counts in every cell, coloured by the share of the true class (rows sum to 1), so that rare and common
    classes read alike."""
    cm = np.asarray(cm, dtype=np.int64)
    k = len(cm)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    plt = _pyplot()
    size = max(5.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7 if k > 12 else 8,
                    color="white" if share[i, j] > 0.5 else "black")
    names = [str(c) for c in class_names]
    long_names = max(map(len, names), default=0) > 2  # words ("T-shirt/top"), not digits: slanted to fit
    ax.set_xticks(range(k), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}  (accuracy {100 * accuracy:.2f} %, {cm.sum():,} images)".strip())
    fig.tight_layout()
    return _save(fig, path)


def _show(ax, image: np.ndarray) -> None:
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([]), ax.set_yticks([])


def misclassified_gallery(images: np.ndarray, true: Sequence[int], pred: Sequence[int], confidence: Sequence[float],
                          class_names: Sequence[str], path: str | Path, title: str = "", limit: int = 24) -> Path:
    """Up to ``limit`` tiles, each captioned "true → predicted (confidence %)", in the order given (callers pass
    the most confidently wrong first). ``images``: (N, H, W) or (N, H, W, C) in [0, 1], as the user sees them."""
    n = min(len(images), limit)
    cols = min(8, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols, 1.9 * rows + 0.6), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        _show(ax, images[i])
        ax.set_title(f"{class_names[int(true[i])]} → {class_names[int(pred[i])]}\n({100 * float(confidence[i]):.0f} %)",
                     fontsize=7)
    if n == 0:
        axes[0][0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(f"{title}\ntrue → predicted (confidence)".strip(), fontsize=10)
    return _save(fig, path)


def denoise_grid(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray, path: str | Path, title: str = "",
                 limit: int = 8) -> Path:
    """Rows clean / noisy / denoised for the first ``limit`` images; arrays (N, H, W) or (N, H, W, C) in [0, 1]."""
    return image_rows([("clean", clean), ("noisy", noisy), ("denoised", denoised)], path, title, limit)


def confusion_counts(true: Sequence[int], pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) counts, rows the true class, columns the predicted one."""
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    return np.bincount(true * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def most_confidently_wrong(true: Sequence[int], pred: Sequence[int], confidence: Sequence[float],
                           limit: int = 24) -> np.ndarray:
    """Indices of the misclassified images, most confident first, at most ``limit``."""
    true, pred, confidence = np.asarray(true), np.asarray(pred), np.asarray(confidence)
    wrong = np.flatnonzero(true != pred)
    return wrong[np.argsort(-confidence[wrong], kind="stable")[:limit]]


# --- the experiments' figures (experiments.ablation, experiments.denoising, the report) ---------------------------


def ladder(rows: Sequence[Mapping], kept: Sequence[bool], path: str | Path, title: str) -> Path:
    """An ablation ladder: accuracy per step (mean ± std over seeds) above, time per epoch below. The kept steps
    are the chain (joined by a line); a step left out is a hollow marker on a grey band, joined to nothing, since
    no later step builds on it. ``rows``: the ladder's rows (step, {val,test}_acc_{mean,std}, s_per_epoch);
    ``kept``: whether each row's step is in the chain."""
    plt = _pyplot()
    x = list(range(len(rows)))
    fig, (acc, speed) = plt.subplots(2, 1, figsize=(1.4 * len(rows) + 2, 6), sharex=True,
                                     gridspec_kw={"height_ratios": [2, 1]})
    for key, label, shift, colour in (("val", "validation", -0.08, "tab:blue"), ("test", "test", 0.08, "tab:orange")):
        means = [100 * r[f"{key}_acc_mean"] for r in rows]
        stds = [0 if r[f"{key}_acc_std"] != r[f"{key}_acc_std"] else 100 * r[f"{key}_acc_std"] for r in rows]
        chain = [i for i in x if kept[i] and means[i] == means[i]]
        acc.errorbar([i + shift for i in chain], [means[i] for i in chain], yerr=[stds[i] for i in chain],
                     fmt="o-", capsize=3, color=colour, label=f"{label} (kept chain)")
        off = [i for i in x if not kept[i] and means[i] == means[i]]
        if off:
            acc.errorbar([i + shift for i in off], [means[i] for i in off], yerr=[stds[i] for i in off], fmt="o",
                         mfc="white", capsize=3, color=colour, label=f"{label} (step left out)")
    for i in x:
        if not kept[i]:
            acc.axvspan(i - 0.4, i + 0.4, color="0.9", zorder=0)
    acc.set_ylabel("accuracy (%)")
    acc.set_title(f"{title}; grey band: step left out (within noise or worse)")
    acc.grid(alpha=0.3)
    acc.legend(fontsize=8)
    speed.bar(x, [r["s_per_epoch"] for r in rows], color=["0.7" if not k else "tab:blue" for k in kept])
    speed.set_ylabel("s / epoch")
    speed.grid(alpha=0.3, axis="y")
    speed.set_xticks(x, [r["step"] for r in rows], rotation=20, ha="right")
    fig.tight_layout()
    return _save(fig, path)


def image_rows(panels: Sequence[tuple[str, np.ndarray]], path: str | Path, title: str = "",
               limit: int | None = None) -> Path:
    """One row per (label, images) panel, the same first ``limit`` images across the rows; images (N, H, W) or
    (N, H, W, C) in [0, 1]."""
    n = len(panels[0][1]) if limit is None else min(len(panels[0][1]), limit)
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), max(n, 1), figsize=(1.2 * max(n, 1) + 0.8, 1.3 * len(panels)), squeeze=False)
    for r, (label, images) in enumerate(panels):
        for c in range(n):
            _show(axes[r][c], images[c])
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def metrics_vs_noise(rows: Sequence[Mapping], sigmas: Sequence[float], path: str | Path) -> Path:
    """PSNR and SSIM against the noise level, one line per method (networks solid, classical filters dashed).
    ``rows``: the denoising study's rows (method, kind, sigma, psnr, ssim)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        points = sorted((r["sigma"], r["psnr"], r["ssim"]) for r in mine)
        style = "-o" if mine[0]["kind"] == "network" else "--."
        for ax, k in zip(axes, (1, 2)):
            ax.plot([p[0] for p in points], [p[k] for p in points], style, label=method)
    for ax, name in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xlabel("noise σ"), ax.set_ylabel(name), ax.set_xticks(list(sigmas)), ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def seeds_per_group(groups: Mapping[str, Sequence[float]], path: str | Path, title: str) -> Path:
    """Test accuracy per seed (crosses) and mean ± std per group (framework, method); values are fractions."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, (label, values) in enumerate(groups.items()):
        m = float(np.mean(values))
        s = float(np.std(values, ddof=1)) if len(values) > 1 else None
        ax.errorbar([i], [100 * m], yerr=[100 * s] if s is not None else None, fmt="o", capsize=6, color="C%d" % i)
        ax.scatter([i] * len(values), [100 * v for v in values], marker="x", color="grey", zorder=3)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel("test accuracy (%)"), ax.set_title(title, fontsize=10), ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def hog_features(images: np.ndarray, labels: Sequence[int], params: Mapping, deskew, path: str | Path) -> Path:
    """Digits (N, H, W, uint8 or float) deskewed as the HOG + SVM baseline deskews them (``deskew``, when
    ``params["deskew"]``), beside their HOG features at the finest cell size of ``params``."""
    from skimage.feature import hog

    plt = _pyplot()
    cell = min(params["pixels_per_cell"])
    fig, axes = plt.subplots(2, len(images), figsize=(2.2 * len(images), 4.6), squeeze=False)
    for i, (image, label) in enumerate(zip(images, labels)):
        image = np.asarray(image, dtype="float64")
        image = deskew(image) if params["deskew"] else image
        _, picture = hog(image, orientations=params["orientations"], pixels_per_cell=(cell, cell),
                         cells_per_block=(params["cells_per_block"],) * 2, block_norm=params["block_norm"], visualize=True)
        axes[0][i].imshow(image, cmap="gray"), axes[0][i].set_title(f"digit {label}", fontsize=9)
        axes[1][i].imshow(picture, cmap="magma"), axes[1][i].set_title(f"HOG, {cell}-pixel cells", fontsize=9)
        for ax in (axes[0][i], axes[1][i]):
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(", ".join(f"{k}={v}" for k, v in params.items()), fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
