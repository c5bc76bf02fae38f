"""Training throughput, side by side in one process: a plain PyTorch loop, Lightning, and the Keras twin.

    python benchmarks/throughput.py                                   # specified CNN, 1 and 2 threads
    python benchmarks/throughput.py --models specified_cnn improved_mnist unet --rounds 3
    python benchmarks/throughput.py --paths plain lightning lightning_default --threads 2
    python benchmarks/throughput.py --paths plain plain_compiled lightning lightning_compiled --threads 2 --json t.json

Every path trains the same net on the same MNIST / Fashion-MNIST images (the training split, uint8 in memory),
with the same batch size and optimiser (Adam; the denoiser: MSE on fresh Gaussian noise), for ``--batches``
batches after ``--warmup`` batches that are not timed. Rounds interleave the paths (plain, lightning, keras,
plain, ...), so a machine that slows down part-way slows every path alike. What each path does:

  plain              index a batch of the uint8 tensor, normalise, forward, loss, backward, Adam step
  lightning          ImageClassifier/Denoiser + the DataModule, Trainer.fit: no logger, no progress bar, no
                     checkpoint, no validation
  lightning_minimal  Lightning's own floor: a LightningModule whose training_step is the plain loop's work (normalise,
                     forward, loss) and nothing else, fed a list of the plain loop's batches: Trainer.fit's
                     fixed cost per step, with nothing of this project in it (classifier only)
  lightning_before   the same with the classifier's step as it was before the overhead was removed: the metric
                     called (batch value computed, arguments validated), the loss synchronised, and both
                     handed to self.log every step
  lightning_default  the same with what `python -m lightning_impl.train` has on: CSV logger, progress bar,
                     epoch timer, finite-loss check, per-epoch seeding, a checkpoint at the end of the epoch
  keras              the Keras twin, model.fit on the normalised NHWC arrays
  plain_compiled     plain with the net wrapped in torch.compile (COMPILE below)
  lightning_compiled lightning with ImageClassifier/Denoiser around the torch.compile'd net

The compiled paths start from torch._dynamo.reset() every round, so their warm-up batches absorb tracing and
compilation (Inductor's on-disk cache may still serve a graph compiled in an earlier round or run). The warm-up
seconds of every path are printed in a second table: for a compiled path it is the compile cost, to set against
the steady-state images/s. A path that fails (e.g. torch.compile without a working C++ compiler) prints one line
saying why, is dropped from the later rounds, and the other paths go on.

Prints images/s (median over rounds) and each path's ratio to the plain loop. Timings depend on the machine
and on anything else running on it: compare ratios measured in one sitting, never figures across machines.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lightning_impl.callbacks import EpochTimer, FiniteLoss, SeedEachEpoch  # noqa: E402
from core.configs import load  # noqa: E402
from lightning_impl.data.datamodules import MNISTDataModule  # noqa: E402
from core.noise import add_noise, to_unit  # noqa: E402
from lightning_impl.data.noise import NoisyDataModule
from lightning_impl.models import ImprovedCNN, SpecifiedCNN, UNetDAE  # noqa: E402
from lightning_impl.tasks.classifier import ImageClassifier  # noqa: E402
from lightning_impl.tasks.denoiser import Denoiser  # noqa: E402
from core import flags  # noqa: E402

BATCH = 64
LR = 1e-3
SIGMA = 0.3
COMPILE = {}  # torch.compile keyword arguments of the *_compiled paths (default: mode "default", Inductor)
PATHS = ["plain", "lightning", "lightning_minimal", "lightning_before", "lightning_default", "keras", "plain_compiled",
         "lightning_compiled"]


def improved_args() -> dict:
    return {k: v for k, v in load("mnist_improved.yaml")["model"]["net"]["init_args"].items()}


def unet_widths() -> tuple[int, int, int]:
    return tuple(load("denoise_unet.yaml")["model"]["net"]["init_args"]["widths"])


MODELS = {  # name -> (task, torch net factory, keras twin factory)
    "specified_cnn": ("classify", SpecifiedCNN, lambda: __import__("keras_ref.models").models.specified_cnn()),
    "improved_mnist": ("classify", lambda: ImprovedCNN(**improved_args()),
                       lambda: __import__("keras_ref.models").models.improved_cnn(
                           (28, 28, 1), 10, **{k: v for k, v in improved_args().items() if k not in ("in_channels", "num_classes", "input_size")})),
    # A linear classifier: a step of almost no arithmetic, so the gap between two paths' ms per step is their fixed
    # cost per step, which the machine's ±10 % noise in convolution time cannot hide (no Keras twin).
    "linear": ("classify", lambda: nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)), None),
    "unet": ("denoise", lambda: UNetDAE(widths=unet_widths()),
             lambda: __import__("keras_ref.models").models.unet_dae((28, 28, 1), widths=unet_widths())),
}


class BeforeClassifier(ImageClassifier):
    """ImageClassifier's training step as it was: ``metric(logits, y)`` with validated arguments, loss logged with
    sync_dist, loss and accuracy through ``self.log`` every step. Kept here only to measure what the changes removed,
    side by side."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from torchmetrics.classification import MulticlassAccuracy

        self.train_acc = MulticlassAccuracy(num_classes=10, average="micro")

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:  # the figures were logged by every step
        pass


class MinimalClassifier(L.LightningModule):
    """The plain loop's step as a LightningModule: no metric, no logging, no hooks of ours."""

    def __init__(self, net: nn.Module, normalize) -> None:
        super().__init__()
        self.net, self.normalize = net, normalize

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(self.normalize(x)), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR)


class StepTimer(L.Callback):
    """Seconds from the first timed batch to the end of the last one (the warm-up batches excluded)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.first, self.start, self.end = warmup, None, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.first = time.perf_counter()
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def data_for(task: str):
    if task == "classify":
        dm = MNISTDataModule(batch_size=BATCH, download=False)
    else:
        dm = NoisyDataModule(dataset="fashion_mnist", sigma=SIGMA, batch_size=BATCH, download=False)
    dm.prepare_data()
    dm.setup()
    return dm


def compiled(make_net):
    """``make_net`` with the net wrapped in torch.compile; a fresh Dynamo cache, so the warm-up pays for tracing."""
    torch._dynamo.reset()
    return lambda: torch.compile(make_net(), **COMPILE)


def plain(task: str, make_net, dm, batches: int, warmup: int) -> tuple[float, float]:
    """(images/s over the timed batches, seconds of the warm-up batches)."""
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    images = dm.train_set.images if task == "classify" else dm.train_set.clean
    labels = dm.train_set.labels if task == "classify" else None
    order = torch.randperm(len(images))
    start, first = None, time.perf_counter()
    for i in range(warmup + batches):
        if i == warmup:
            start = time.perf_counter()
        idx = order[i * BATCH : (i + 1) * BATCH]
        if task == "classify":
            x, y = dm.normalize(images[idx]), labels[idx]
            loss = nn.functional.cross_entropy(net(x), y)
        else:
            clean = to_unit(images[idx])
            loss = nn.functional.mse_loss(net(add_noise(clean, SIGMA)), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batches * BATCH / (time.perf_counter() - start), start - first


def lightning(task: str, make_net, dm, batches: int, warmup: int, default: bool = False,
              before: bool = False, minimal: bool = False) -> tuple[float, float]:
    optimizer = lambda p: torch.optim.Adam(p, lr=LR)  # noqa: E731
    data = {"datamodule": dm}
    if minimal:
        if task != "classify":
            raise ValueError("lightning_minimal measures the classifier only")
        model = MinimalClassifier(make_net(), dm.normalize)
        order = torch.randperm(len(dm.train_set.images))[: (warmup + batches) * BATCH]
        batches_ = [(dm.train_set.images[i], dm.train_set.labels[i]) for i in order.split(BATCH)]
        data = {"train_dataloaders": torch.utils.data.DataLoader(batches_, batch_size=None)}  # one item = one batch
    elif task == "classify":
        model = (BeforeClassifier if before else ImageClassifier)(make_net(), optimizer=optimizer, schedule="constant")
    else:
        model = Denoiser(make_net(), optimizer=optimizer, schedule="constant")
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as tmp:
        extra = {}
        if default:
            from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
            from lightning.pytorch.loggers import CSVLogger

            extra = dict(logger=CSVLogger(tmp), enable_progress_bar=True, enable_checkpointing=True,
                         callbacks=[timer, EpochTimer(), FiniteLoss(), SeedEachEpoch(), ModelCheckpoint(tmp, save_last=True),
                                    TQDMProgressBar(refresh_rate=50)])
        trainer = L.Trainer(
            max_epochs=1, limit_train_batches=warmup + batches, limit_val_batches=0, num_sanity_val_steps=0,
            accelerator="cpu", devices=1, enable_model_summary=False, default_root_dir=tmp,
            **({"logger": False, "enable_progress_bar": False, "enable_checkpointing": False, "callbacks": [timer]} | extra),
        )
        trainer.fit(model, **data)
    return batches * BATCH / (timer.end - timer.start), timer.start - timer.first


def keras_path(task: str, make_twin, dm, batches: int, warmup: int) -> tuple[float, float]:
    import keras
    import numpy as np

    net = make_twin()
    if task == "classify":
        x, y = dm.arrays("train")
        y = y.astype("int64")
        net.compile(optimizer=keras.optimizers.Adam(LR), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        clean = to_unit(dm.train_set.clean[: (warmup + batches) * BATCH])
        x = add_noise(clean, SIGMA).permute(0, 2, 3, 1).numpy()
        y = clean.permute(0, 2, 3, 1).numpy()
        net.compile(optimizer=keras.optimizers.Adam(LR), loss="mse")
    n = (warmup + batches) * BATCH
    x, y = np.ascontiguousarray(x[:n]), y[:n]

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.first = time.perf_counter()
            if batch == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    timer = Timer()
    net.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
    return batches * BATCH / (timer.end - timer.start), timer.start - timer.first


def run_path(q: str, task: str, make_net, make_twin, dm, batches: int, warmup: int) -> tuple[float, float]:
    if q == "keras":
        return keras_path(task, make_twin, dm, batches, warmup)
    if q.endswith("_compiled"):
        make_net = compiled(make_net)
    if q.startswith("plain"):
        return plain(task, make_net, dm, batches, warmup)
    return lightning(task, make_net, dm, batches, warmup, default=q == "lightning_default", before=q == "lightning_before",
                     minimal=q == "lightning_minimal")


def why(err: BaseException) -> str:
    """One line: the exception's type and the first line of its message that says something."""
    lines = [l.strip() for l in str(err).splitlines() if l.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["specified_cnn"], choices=sorted(MODELS))
    p.add_argument("--paths", nargs="+", default=["plain", "lightning", "keras"], choices=PATHS)
    p.add_argument("--threads", nargs="+", type=flags.positive_int, default=[1, 2])
    p.add_argument("--batches", type=flags.positive_int, default=300, help="timed batches per path and round")
    p.add_argument("--warmup", type=flags.non_negative_int, default=20, help="batches before the timing starts")
    p.add_argument("--rounds", type=flags.positive_int, default=3)
    p.add_argument("--json", metavar="FILE", help="also write every round's figures here")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"batch {BATCH}, {args.batches} timed batches, {args.rounds} rounds, median images/s")
    print("| model | threads | " + " | ".join(args.paths) + " | " + " | ".join(f"{q} / plain" for q in args.paths if q != "plain") + " |")
    print("|---|---:|" + "---:|" * (2 * len(args.paths) - 1))
    rows = []
    for name in args.models:
        task, make_net, make_twin = MODELS[name]
        dm = data_for(task)
        for threads in args.threads:
            torch.set_num_threads(threads)
            results = {q: [] for q in args.paths}
            warm = {q: [] for q in args.paths}
            failed = {}
            for _ in range(args.rounds):
                for q in args.paths:
                    if q in failed:
                        continue
                    torch.manual_seed(0)
                    try:
                        ips, warm_s = run_path(q, task, make_net, make_twin, dm, args.batches, args.warmup)
                    except Exception as err:  # noqa: BLE001  (a path that cannot run here must not stop the others)
                        failed[q] = why(err)
                        print(f"# {name}, {threads} threads: {q} failed, left out: {failed[q]}", flush=True)
                        continue
                    results[q].append(ips)
                    warm[q].append(warm_s)
            med = {q: statistics.median(v) if v else None for q, v in results.items()}
            cell = lambda v: "failed" if v is None else f"{v:,.0f}"  # noqa: E731
            ratio = lambda q: "-" if med.get("plain") is None or med[q] is None else f"{med[q] / med['plain']:.2f}"  # noqa: E731
            ratios = [ratio(q) for q in args.paths if q != "plain"] if "plain" in med else []
            print(f"| {name} | {threads} | " + " | ".join(cell(med[q]) for q in args.paths) + " | " + " | ".join(ratios) + " |",
                  flush=True)
            rows.append({"model": name, "threads": threads, "images_per_s": results, "median_images_per_s": med,
                         "warmup_s": warm, "failed": failed})
    print(f"\n# ms per step (batch {BATCH}, median over rounds), and each path's extra ms per step over plain")
    print("| model | threads | " + " | ".join(args.paths) + " | " + " | ".join(f"{q} - plain" for q in args.paths if q != "plain") + " |")
    print("|---|---:|" + "---:|" * (2 * len(args.paths) - 1))
    for row in rows:
        ms = {q: None if v is None else 1000 * BATCH / v for q, v in row["median_images_per_s"].items()}
        extra = ["-" if ms.get("plain") is None or ms[q] is None else f"{ms[q] - ms['plain']:+.2f}" for q in args.paths if q != "plain"]
        print(f"| {row['model']} | {row['threads']} | " + " | ".join("failed" if v is None else f"{v:.2f}" for v in ms.values())
              + " | " + " | ".join(extra) + " |")
    print(f"\n# warm-up seconds ({args.warmup} batches, untimed; compiled paths: compilation included), per round")
    print("| model | threads | " + " | ".join(args.paths) + " |")
    print("|---|---:|" + "---|" * len(args.paths))
    for row in rows:
        print(f"| {row['model']} | {row['threads']} | "
              + " | ".join("failed" if q in row["failed"] and not row["warmup_s"][q]
                           else ", ".join(f"{w:.1f}" for w in row["warmup_s"][q]) for q in args.paths) + " |")
    if args.json:
        import json

        meta = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                "batch": BATCH, "batches": args.batches, "warmup": args.warmup, "rounds": args.rounds, "compile": COMPILE}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)

if __name__ == "__main__":
    main()
