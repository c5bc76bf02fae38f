"""Learning-rate schedules shared by both frameworks, so a recipe means the same thing in each."""

from __future__ import annotations

import math


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
