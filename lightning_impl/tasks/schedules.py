"""Learning-rate schedules: the curve (keras_ref.recipes builds the same one in Keras) and the tasks' optimiser setup."""

from __future__ import annotations

import math

import lightning as L
import torch


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float = 0.1) -> float:
    """LR multiplier: linear warm-up from 0, then cosine decay to 0.

    The same curve as ``keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warmup,
    warmup_target=lr, warmup_steps=warmup)``, which keras_ref uses.
    """
    warmup = int(total_steps * warmup_fraction)
    if step < warmup:
        return step / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def configure_optimizers(module: L.LightningModule):
    """What a task's ``configure_optimizers`` returns: its optimizer on all parameters, stepped per batch along
    ``warmup_cosine`` over the whole run (``hparams.schedule == "warmup_cosine"``) or at a constant rate."""
    optimizer = module.optimizer(module.parameters())
    if module.hparams.schedule == "constant":
        return optimizer
    total = module.trainer.estimated_stepping_batches
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total, module.hparams.warmup_fraction)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
