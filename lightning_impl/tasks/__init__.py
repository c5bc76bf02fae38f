"""Tasks: LightningModules that hold the loss, the metrics and the optimisation around any architecture."""

from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.tasks.denoiser import Denoiser

__all__ = ["Denoiser", "ImageClassifier"]
