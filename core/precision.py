"""Precision left unset (``precision: null`` in a recipe): bf16 autocast where the hardware computes bf16
natively, float32 elsewhere.

bf16 halved the convolutions' time on a CPU with AMX (the improved nets: docs/improved.md), but on a CPU without
native bf16 the same autocast is emulated and ran the improved MNIST net 2.2x *slower* than float32. So the
recipes that profit leave the precision unset and the machine decides; ``--trainer.precision`` still wins.
"""

from __future__ import annotations

import torch

AUTO = "auto"


def cpu_has_native_bf16() -> bool:
    """AMX tiles (Sapphire Rapids and later), as torch sees them. AVX512-BF16 alone does not count: on such a CPU
    bf16 autocast trained the improved MNIST net 1.1-1.3x slower than float32 (docs/performance.md)."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def resolve(precision, accelerator: str | None = None) -> str:
    """The Trainer precision for ``precision`` (None or ``auto``: chosen here) on ``accelerator``."""
    if precision is not None and str(precision) != AUTO:
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator in (None, "auto") and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
