"""Learning-rate schedules: the curve (keras_ref.recipes builds the same one in Keras) and the tasks' optimiser setup."""

from __future__ import annotations

import math

import lightning as L
import torch


def check_fraction(name: str, value: float, high_open: bool = False) -> float:
    """A share in [0, 1] (or [0, 1) with ``high_open``), NaN refused; a ValueError naming the argument otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0.0 <= value < 1.0 if high_open else 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1{')' if high_open else ']'}, got {value!r}")
    return value


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


def parameter_groups(module: torch.nn.Module, norm_lr_scale: float = 1.0):
    """The trainable parameters; with ``norm_lr_scale != 1`` in two groups, the normalisation layers' parameters
    apart with their learning rate multiplied and their weight decay divided by ``norm_lr_scale``. The optimizer's
    own ``lr`` and ``weight_decay`` fill in the rest (``OptimizerCallable`` fixes them)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    if norm_lr_scale == 1.0:
        return trainable
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    norm = {id(p) for m in module.modules() if isinstance(m, norm_types) for p in m.parameters() if p.requires_grad}
    return [{"params": [p for p in trainable if id(p) not in norm]},
            {"params": [p for p in trainable if id(p) in norm], "norm_lr_scale": norm_lr_scale}]


def optimizer_and_schedule(net_or_module: torch.nn.Module, optimizer, schedule: str, warmup_fraction: float,
                           total_steps: int, norm_lr_scale: float = 1.0):
    """The optimizer on the trainable parameters (``optimizer``: a callable taking them, as LightningCLI gives it)
    and, unless ``schedule == "constant"``, its per-step ``warmup_cosine`` scheduler over ``total_steps``:
    (optimizer, scheduler or None). Tasks and parity's recipe check build them here, the same way."""
    optimizer = optimizer(parameter_groups(net_or_module, norm_lr_scale))
    for group in optimizer.param_groups:
        if "norm_lr_scale" in group:
            group["lr"] *= group["norm_lr_scale"]
            group["weight_decay"] = group.get("weight_decay", 0.0) / group["norm_lr_scale"]
    if schedule == "constant":
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_fraction))


def configure_optimizers(module: L.LightningModule):
    """What a task's ``configure_optimizers`` returns: its optimizer on all parameters, stepped per batch along
    ``warmup_cosine`` over the whole run (``hparams.schedule == "warmup_cosine"``) or at a constant rate."""
    hp = module.hparams
    total = module.trainer.estimated_stepping_batches if hp.schedule != "constant" else 0
    optimizer, schedule = optimizer_and_schedule(module, module.optimizer, hp.schedule, hp.get("warmup_fraction", 0.1),
                                                 total, hp.get("norm_lr_scale", 1.0))
    if schedule is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
