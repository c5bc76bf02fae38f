"""Callbacks that report what a user of the training script wants to read afterwards."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    """Wall time and throughput (images/s, summed over processes) of every training epoch."""

    def __init__(self) -> None:
        self.epoch_times: list[float] = []
        self.images_per_sec: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._images += len(batch[1])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        elapsed = time.perf_counter() - self._start
        throughput = self._images * trainer.world_size / elapsed
        self.epoch_times.append(elapsed)
        self.images_per_sec.append(throughput)
        pl_module.log_dict({"epoch_time_s": elapsed, "train_images_per_s": throughput}, rank_zero_only=True)
