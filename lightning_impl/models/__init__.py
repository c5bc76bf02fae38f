"""Architectures: plain nn.Modules, nothing about loss or optimisation. Layer names match the Keras twins
in keras_ref.models one for one. A new model goes in a file of its own here, its twin in keras_ref/models/."""

from lightning_impl.models.denoising import DenoisingAE, UNetDAE
from lightning_impl.models.improved_cnn import ImprovedCNN
from lightning_impl.models.specified_cnn import SpecifiedCNN
from lightning_impl.models.whitened_cnn import WhitenedCNN

__all__ = ["DenoisingAE", "ImprovedCNN", "SpecifiedCNN", "UNetDAE", "WhitenedCNN"]
