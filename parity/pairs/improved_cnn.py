"""The improved CNNs of configs/mnist_improved.yaml, configs/cifar10_improved.yaml and configs/cifar10_fast.yaml,
built from those files, so that the pairs checked are exactly the nets the recipes train.

Check 5 (accuracy) is not declared: keras_ref.train, which it runs, has no augmentation, label smoothing or
weight decay; the Keras recipe runs through keras_ref.improved_cnn instead (see docs/improved.md).
"""

from functools import partial
from pathlib import Path

import yaml

from keras_ref.improved_cnn import FROM_DATA, improved_cnn
from lightning_impl.improved_cnn import ImprovedCNN
from parity.registry import ModelPair, register

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def net_args(config: str) -> dict:
    return yaml.safe_load((CONFIGS / config).read_text())["model"]["net"]["init_args"]


for name, dataset, config in (
    ("improved_cnn_mnist", "mnist", "mnist_improved.yaml"),
    ("improved_cnn_cifar10", "cifar10", "cifar10_improved.yaml"),
    ("improved_cnn_cifar10_fast", "cifar10", "cifar10_fast.yaml"),
):
    args = net_args(config)
    c, size = args["in_channels"], args["input_size"]
    keras_args = {k: v for k, v in args.items() if k not in FROM_DATA}
    register(
        ModelPair(
            name=name,
            torch_model=partial(ImprovedCNN, **args),
            keras_model=partial(improved_cnn, (size, size, c), 10, **keras_args),
            input_shape=(c, size, size),
            dataset=dataset,
        )
    )
