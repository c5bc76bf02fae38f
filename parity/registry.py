"""The registry of (Lightning, Keras) model pairs that every parity check runs over.

A new model joins the checks by adding a module under parity/pairs/ that calls `register`; the
checks themselves never name a model. Layers correspond by name: every leaf module of the torch
model (``named_modules``) has a Keras layer of the same name, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import keras_ref  # noqa: F401  (torch backend before keras)


@dataclass(frozen=True)
class ModelPair:
    name: str
    torch_model: Callable[[], "torch.nn.Module"]  # noqa: F821
    keras_model: Callable[[], "keras.Model"]  # noqa: F821
    input_shape: tuple[int, int, int]  # torch layout (C, H, W); Keras gets (H, W, C)
    dataset: str  # real images for the numerical checks: mnist | fashion_mnist | cifar10
    task: Literal["classification", "denoising"] = "classification"
    # Check 5: declared band for the mean test accuracy of the full recipe, as fractions.
    accuracy_band: tuple[float, float] | None = None
    # How to train each framework for check 5 (extra CLI arguments); see parity.accuracy.
    train_args: dict[str, list[str]] = field(default_factory=dict)


PAIRS: dict[str, ModelPair] = {}


def register(pair: ModelPair) -> ModelPair:
    if pair.name in PAIRS:
        raise ValueError(f"model pair {pair.name!r} is registered twice")
    PAIRS[pair.name] = pair
    return pair


def all_pairs() -> dict[str, ModelPair]:
    import parity.pairs  # noqa: F401  (imports every module under parity/pairs/, which register)

    return PAIRS
