"""Data for Lightning: the DataModules that serve the core's datasets, split and noise (core.split, core.noise)
to a Trainer, and the augmentation applied to training batches on the device.

The DataModules are re-exported lazily, so that ``lightning_impl.data.augment`` imports without Lightning."""

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
