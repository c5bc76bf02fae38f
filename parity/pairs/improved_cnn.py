"""The improved CNNs of configs/mnist_improved.yaml, configs/cifar10_improved.yaml and configs/cifar10_fast.yaml,
built from those files, so that the pairs checked are exactly the nets the recipes train.

Check 5 (accuracy) is not declared for them: their recipes take hours on a CPU (docs/improved.md has the
ladders trained in both frameworks, ``python -m experiments.ablation --framework keras``).
"""

from functools import partial
from keras_ref.models import improved_cnn
from keras_ref.recipes import FROM_DATA
from core import configs
from lightning_impl.models import ImprovedCNN
from parity.registry import ModelPair, register


def net_args(config: str) -> dict:
    return configs.load(config)["model"]["net"]["init_args"]


# step_batch: the float64 steps of checks 4 and 6d (registry.ModelPair); the 1.2 M-parameter CIFAR-10 net took
# 138 s of the parity run on a 2-core CPU at batch 32, so it steps on 8 images
for name, dataset, config, step_batch in (
    ("improved_cnn_mnist", "mnist", "mnist_improved.yaml", 32),
    ("improved_cnn_cifar10", "cifar10", "cifar10_improved.yaml", 8),
    ("improved_cnn_cifar10_fast", "cifar10", "cifar10_fast.yaml", 32),
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
            trained_by=config,
            step_batch=step_batch,
        )
    )
