"""The training loss (and any training metric) logged the way Lightning's per-step logging would, at a fraction of
its cost.

Every ``self.log`` call moves its stored result to the value's device, deep-copying its metadata and walking a logged
Metric's states: ~0.9 ms per call on 2 CPU cores (cProfile of ``benchmarks/throughput.py``'s Lightning path,
``lightning_utilities`` ``apply_to_collection``), against a specified-CNN step of ~11 ms at batch 64. Logged on every
step, the loss and the accuracy cost a sixth of the step. Here the loss is averaged by a torchmetrics ``MeanMetric``
every step (weighted by batch size, synchronised across processes when computed) and logged once per epoch as
``train_loss_epoch``; the step value is logged as ``train_loss_step`` only on the steps the logger writes (every
``log_every_n_steps``) and on each epoch's first, so the CSV columns and the progress bar read as before.
"""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import MeanMetric, Metric


class TrainLogging(L.LightningModule):
    """Base of the tasks: ``log_train_step`` in ``training_step``; ``train_epoch_metrics`` names the Metric objects
    (updated by the task every step) that are logged when the epoch ends."""

    train_epoch_metrics: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.train_loss_mean = MeanMetric()

    def log_train_step(self, loss: torch.Tensor, batch_size: int, batch_idx: int) -> None:
        loss = loss.detach()
        self.train_loss_mean.update(loss, batch_size)
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        # The logger writes when (global step + 1) is a multiple of log_every_n_steps (Lightning's
        # should_update_logs): log on exactly those steps, so that what it writes is this step's loss.
        if batch_idx == 0 or (self.global_step + 1) % every == 0:
            self.log("train_loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)

    def on_train_epoch_end(self) -> None:
        self.log("train_loss_epoch", self.train_loss_mean, on_step=False, on_epoch=True, prog_bar=True)
        for name in self.train_epoch_metrics:
            metric: Metric = getattr(self, name)
            self.log(name.removesuffix("_metric"), metric, on_step=False, on_epoch=True, prog_bar=True)
