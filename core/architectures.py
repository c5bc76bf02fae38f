"""The architectures of the project, one entry each, and what both twins of an architecture must agree on,
stated once: the Lightning modules (lightning_impl.models) and the Keras twins (keras_ref.models) read these,
so neither can drift from the other.

A new architecture: its entry in ``ARCHITECTURES`` (where its nn.Module and its Keras twin live), the two
implementations, and its pair in parity/pairs/ (tests/test_models.py fails until all of them exist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Architecture:
    lightning: str  # import path of the nn.Module (its class name is the recipes' model.net class_path's last part)
    keras: str  # import path of the function that builds its Keras twin, the same arguments by the same names
    task: Literal["classifier", "denoiser"]  # a classifier's twin takes (input_shape, num_classes, ...)

    @property
    def name(self) -> str:
        return self.lightning.rsplit(".", 1)[1]


ARCHITECTURES = {a.name: a for a in (
    Architecture("lightning_impl.models.specified_cnn.SpecifiedCNN", "keras_ref.models.specified_cnn.specified_cnn", "classifier"),
    Architecture("lightning_impl.models.improved_cnn.ImprovedCNN", "keras_ref.models.improved_cnn.improved_cnn", "classifier"),
    Architecture("lightning_impl.models.whitened_cnn.WhitenedCNN", "keras_ref.models.whitened_cnn.whitened_cnn", "classifier"),
    Architecture("lightning_impl.models.denoising.DenoisingAE", "keras_ref.models.denoising.denoising_ae", "denoiser"),
    Architecture("lightning_impl.models.denoising.UNetDAE", "keras_ref.models.denoising.unet_dae", "denoiser"),
)}


def resolve(path: str):
    """The object an import path names (an entry's ``lightning`` or ``keras``)."""
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)

Padding = Literal["same", "valid"]

# The improved CNN's BatchNorm: PyTorch's defaults, written out because the Keras twin must copy them (Keras'
# running average weights the *old* value, so its momentum 0.9 is torch's 0.1, and its default epsilon is 1e-3).
IMPROVED_BN_MOMENTUM = 0.1
IMPROVED_BN_EPS = 1e-5

# The whitened CIFAR-10 net's BatchNorm (airbench's): running statistics that follow the last batches closely
# (torch momentum 0.4 = Keras 0.6), and an epsilon as small as can be: with a frozen scale of 1 the
# normalisation must not damp small activations.
WHITENED_BN_MOMENTUM = 0.4
WHITENED_BN_EPS = 1e-12


def conv_output_size(size: int, kernel_size: int, padding: Padding) -> int:
    return size if padding == "same" else size - kernel_size + 1


def pooling_conv(pool_after: str, convs_per_stage: int) -> int:
    """The convolution (1-based, within each stage) after which the stage pools."""
    if pool_after not in ("last", "first"):
        raise ValueError(f"pool_after is 'last' or 'first', got {pool_after!r}")
    return 1 if pool_after == "first" else convs_per_stage
