"""A callback that kills its own process with SIGKILL at a chosen point, once: the tests' stand-in for a power cut
(or, with ``signal: SIGTERM`` / ``SIGINT``, a scheduler's stop or a Ctrl-C).

Added to a run with ``--config`` of a YAML naming ``interrupt.KillAt`` (PYTHONPATH=tests). ``once`` is a file it
creates before killing, so that the resumed run, which reads the same saved config, is not killed again.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillAt(L.Callback):
    def __init__(self, point: str, once: str, epoch: int = 0, batch: int = 0, signal: str = "SIGKILL") -> None:
        if point not in ("train_batch", "save_checkpoint", "test"):
            raise ValueError(f"unknown point {point!r}")
        self.point, self.once, self.epoch, self.batch, self.signal = point, Path(once), epoch, batch, signal

    def _kill(self) -> None:
        if not self.once.exists():
            self.once.write_text("killed\n")
            os.kill(os.getpid(), getattr(signal, self.signal))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.point == "train_batch" and trainer.current_epoch == self.epoch and batch_idx == self.batch:
            self._kill()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # Called while the checkpoint is being written: a kill here interrupts the save.
        if self.point == "save_checkpoint" and trainer.current_epoch == self.epoch:
            self._kill()

    def on_test_start(self, trainer, pl_module) -> None:
        if self.point == "test":
            self._kill()
