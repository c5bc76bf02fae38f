"""The registry of (Lightning, Keras) model pairs that every parity check runs over.

A new model joins the checks by adding a module under parity/pairs/ that calls `register`; the
checks themselves never name a model. Layers correspond by name: every leaf module of the torch
model (``named_modules``; a nested name ``block.conv`` may appear in Keras as ``block_conv``) has a
Keras layer of the same name, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import keras_ref  # noqa: F401  (Keras backend before keras)

Task = Literal["classification", "denoising"]
Loss = Literal["cross_entropy", "mse", "bce"]
# make_batch(pair, images, labels, datamodule, generator) -> (inputs, targets) in torch layout: real images
# (uint8, N x C x H x W), their labels, the datamodule that knows the training statistics, a seeded generator.
BatchFn = Callable[..., tuple["torch.Tensor", "torch.Tensor"]]  # noqa: F821

STEP_BATCH = 32  # checks 4 and 6d: images per float64 training step, unless a pair says otherwise
DEFAULT_LOSS: dict[str, Loss] = {"classification": "cross_entropy", "denoising": "mse"}


@dataclass(frozen=True)
class ModelPair:
    """One model in both frameworks, plus what the checks need to know about it.

    Args:
        name: the pair's name on the command line (``python -m parity --pairs NAME``).
        torch_model / keras_model: factories taking no arguments (use ``functools.partial`` for options).
        input_shape: torch layout (C, H, W); Keras gets (H, W, C).
        dataset: real images for the numerical checks: mnist | fashion_mnist | cifar10.
        task: classification (targets are labels) or denoising (targets are the clean images).
        loss: the training loss both frameworks use, mean-reduced (check 4). Default: cross_entropy
            (on logits) for classification, mse for denoising; bce expects sigmoid outputs in [0, 1].
        make_batch: how real images become (inputs, targets); default: ``parity.checks.default_batch``
            (standardised images and labels; denoising: noisy images in [0, 1] and the clean ones).
        score: the key of the run's metrics.json that check 5 compares (higher is better).
        accuracy_band: declared band for the mean ``score`` of the full recipe, as fractions; None skips check 5.
        train_args: extra command-line arguments per framework ("lightning": for lightning_impl.train,
            "keras": for keras_ref.train) so that both run the pair's recipe; see parity.accuracy.
        quick_accuracy_band: the band for the quick budget (one seed, one epoch) run in CI.
        accuracy_margin: largest allowed difference between the two frameworks' mean scores (full recipe).
        step_batch: the batch of the float64 training steps of checks 4 and 6d. float64 convolutions have no
            fast CPU kernel, so a wide net at full resolution takes a smaller one; the bounds are relative to the
            update the steps make and hold at any batch.
        recipe: a LightningCLI YAML (relative to the repository root) that check 5 trains in both frameworks
            (``lightning_impl.train --config`` and its Keras reader ``keras_ref.train --config``)
            instead of the task's default entry points; ``train_args`` are appended.
    """

    name: str
    torch_model: Callable[[], "torch.nn.Module"]  # noqa: F821
    keras_model: Callable[[], "keras.Model"]  # noqa: F821
    input_shape: tuple[int, int, int]
    dataset: str
    task: Task = "classification"
    accuracy_band: tuple[float, float] | None = None
    train_args: dict[str, list[str]] = field(default_factory=dict)
    # Added for checks 4 and 5 (after the original fields, so positional construction still works).
    loss: Loss | None = None
    make_batch: BatchFn | None = None
    score: str = "test_acc"
    quick_accuracy_band: tuple[float, float] | None = None
    accuracy_margin: float = 0.004
    recipe: str | None = None
    # Check 6 (recipe parity): the recipe in configs/ that trains this net in both frameworks.
    trained_by: str | None = None
    step_batch: int = STEP_BATCH

    def __post_init__(self) -> None:
        if self.task not in DEFAULT_LOSS:
            raise ValueError(f"{self.name}: unknown task {self.task!r}; choose one of {sorted(DEFAULT_LOSS)}")
        if self.loss is None:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.task])  # frozen dataclass: set once, here
        if self.loss not in ("cross_entropy", "mse", "bce"):
            raise ValueError(f"{self.name}: unknown loss {self.loss!r}")
        if self.task == "classification" and self.loss != "cross_entropy":
            raise ValueError(f"{self.name}: a classification pair trains with cross_entropy, not {self.loss!r}")
        if self.step_batch < 2:  # BatchNorm needs two values per channel
            raise ValueError(f"{self.name}: step_batch is at least 2, got {self.step_batch}")
        if len(self.input_shape) != 3:
            raise ValueError(f"{self.name}: input_shape is (C, H, W), got {self.input_shape}")
        for band in (self.accuracy_band, self.quick_accuracy_band):
            if band is not None and not 0.0 <= band[0] <= band[1]:
                raise ValueError(f"{self.name}: a band is (low, high) with low <= high, got {band}")
        unknown = set(self.train_args) - {"lightning", "keras"}
        if unknown:
            raise ValueError(f"{self.name}: train_args keys are 'lightning' and 'keras', got {sorted(unknown)}")


PAIRS: dict[str, ModelPair] = {}


def register(pair: ModelPair) -> ModelPair:
    if pair.name in PAIRS:
        raise ValueError(f"model pair {pair.name!r} is registered twice")
    PAIRS[pair.name] = pair
    return pair


def all_pairs() -> dict[str, ModelPair]:
    import parity.pairs  # noqa: F401  (imports every module under parity/pairs/, which register)

    return PAIRS
