"""Callbacks every training run of the project has: epoch timing, a stop at the first non-finite loss, and per-epoch
seeding that makes a resumed run train as the uninterrupted one."""

from __future__ import annotations

import time

import lightning as L
import torch

from core.order import epoch_seed


class EpochTimer(L.Callback):
    """Wall time and throughput (images/s, summed over processes) of every training epoch."""

    def __init__(self) -> None:
        self.epoch_times: list[float] = []
        self.images_per_sec: list[float] = []
        self.resumed_s = 0.0  # fit time before this process took over (a resumed run), from the checkpoint
        self._fit_start = time.perf_counter()

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._fit_start = time.perf_counter()

    # Saved in every checkpoint, so that a resumed run reports the whole run's epochs and training time.
    def state_dict(self) -> dict:
        return {"epoch_times": list(self.epoch_times), "images_per_sec": list(self.images_per_sec),
                "fit_s": self.resumed_s + time.perf_counter() - self._fit_start}

    def load_state_dict(self, state: dict) -> None:
        self.epoch_times = list(state.get("epoch_times", []))
        self.images_per_sec = list(state.get("images_per_sec", []))
        self.resumed_s = float(state.get("fit_s", 0.0))

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


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the run stops, its last good checkpoint kept."""


class FiniteLoss(L.Callback):
    """Stops the run at the first NaN or infinite training loss, naming the epoch and step: training on from there
    would only overwrite good checkpoints with useless ones (``last.ckpt`` keeps the last finished epoch)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(f"the training loss is {float(loss):g} at epoch {trainer.current_epoch}, "
                                     f"step {trainer.global_step} (batch {batch_idx}); lower --model.optimizer.init_args.lr?")


class SeedEachEpoch(L.Callback):
    """Reseeds torch at the start of every training epoch from (run seed, epoch), so that what an epoch draws
    (dropout, augmentation, training noise) depends on the epoch alone and a run resumed from a checkpoint
    trains exactly as the uninterrupted run would."""

    seed: int | None = None  # the run's seed, set by the CLI (ProjectCLI.instantiate_classes)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.seed is None:  # used without the CLI: the seed torch was seeded with (seed_everything's)
            self.seed = torch.initial_seed()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        torch.manual_seed(epoch_seed(self.seed, trainer.current_epoch))
