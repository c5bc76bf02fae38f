"""Data: finding and verifying the datasets (framework-neutral), the seeded split and normalisation, noise and
augmentation, and the LightningDataModules built on them.

The DataModules are re-exported lazily, so that the neutral modules (``datasets``) import without Lightning."""

_EXPORTS = {
    "CIFAR10DataModule": "lightning_impl.data.datamodules",
    "FashionMNISTDataModule": "lightning_impl.data.datamodules",
    "ImageDataModule": "lightning_impl.data.datamodules",
    "MNISTDataModule": "lightning_impl.data.datamodules",
    "NoisyDataModule": "lightning_impl.data.noise",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
