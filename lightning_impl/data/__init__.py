"""Data: finding and verifying the datasets, the seeded split and normalisation, noise and augmentation.

Framework-neutral below the DataModules: keras_ref reads the same split and statistics through them."""

from lightning_impl.data.datamodules import CIFAR10DataModule, FashionMNISTDataModule, ImageDataModule, MNISTDataModule
from lightning_impl.data.noise import NoisyDataModule

__all__ = ["CIFAR10DataModule", "FashionMNISTDataModule", "ImageDataModule", "MNISTDataModule", "NoisyDataModule"]
