"""Where Lightning's per-step time goes: a plain loop, a minimal LightningModule, and the project's classifier.

    python benchmarks/lightning_overhead.py --threads 2 --rounds 5

All three train the specified CNN on the same MNIST batches (64, uint8 in memory, normalised per batch) with
Adam, interleaved in one process. The minimal module has only ``training_step`` (forward, cross-entropy)
and ``configure_optimizers``, fed by a DataLoader over pre-cut batches: what is left between it and the
plain loop is Lightning's own fixed cost per step; what lies between it and ``ImageClassifier`` + the
DataModule is ours (metrics, logging, data path).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_impl.data.datamodules import MNISTDataModule
from lightning_impl.models import SpecifiedCNN
from lightning_impl.tasks.classifier import ImageClassifier

BATCH = 64


class Minimal(L.LightningModule):
    def __init__(self, dm: MNISTDataModule) -> None:
        super().__init__()
        self.net, self.dm = SpecifiedCNN(), dm

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(self.dm.normalize(x)), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class Timer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()


def batches(dm: MNISTDataModule, n: int) -> list:
    order = torch.randperm(len(dm.train_set))
    return [(dm.train_set.images[order[i * BATCH:(i + 1) * BATCH]], dm.train_set.labels[order[i * BATCH:(i + 1) * BATCH]])
            for i in range(n)]


def plain(dm, n, warmup):
    net = SpecifiedCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for i, (x, y) in enumerate(batches(dm, warmup + n)):
        if i == warmup:
            start = time.perf_counter()
        loss = nn.functional.cross_entropy(net(dm.normalize(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return n * BATCH / (time.perf_counter() - start)


def fit(model, loader_or_dm, n, warmup):
    timer = Timer(warmup)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=warmup + n, limit_val_batches=0, num_sanity_val_steps=0,
                        logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                        accelerator="cpu", devices=1, callbacks=[timer])
    if isinstance(loader_or_dm, L.LightningDataModule):
        trainer.fit(model, datamodule=loader_or_dm)
    else:
        trainer.fit(model, train_dataloaders=loader_or_dm)
    return n * BATCH / (timer.end - timer.start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    dm = MNISTDataModule(batch_size=BATCH, download=False)
    dm.prepare_data()
    dm.setup()
    results = {"plain loop": [], "minimal LightningModule": [], "ImageClassifier + MNISTDataModule": []}
    for _ in range(args.rounds):
        torch.manual_seed(0)
        results["plain loop"].append(plain(dm, args.batches, args.warmup))
        loader = DataLoader(batches(dm, args.warmup + args.batches), batch_size=None)
        results["minimal LightningModule"].append(fit(Minimal(dm), loader, args.batches, args.warmup))
        model = ImageClassifier(SpecifiedCNN(), optimizer=lambda q: torch.optim.Adam(q, lr=1e-3), schedule="constant")
        results["ImageClassifier + MNISTDataModule"].append(fit(model, dm, args.batches, args.warmup))
    base = statistics.median(results["plain loop"])
    print(f"threads {args.threads}, batch {BATCH}, {args.batches} timed batches, {args.rounds} rounds (median images/s, ms/step)")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med:,.0f} | {1000 * BATCH / med:.2f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
