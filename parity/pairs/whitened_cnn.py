"""The whitened CIFAR-10 net of configs/cifar10_whitened.yaml, built from that file.

Check 5 (accuracy) is not declared: keras_ref.recipes refuses the recipe (flip test-time augmentation, the
BatchNorm learning-rate scale and the stem's initialisation from data have no Keras translation).
"""

from functools import partial

from keras_ref.models import whitened_cnn
from core import configs
from lightning_impl.models import WhitenedCNN
from parity.registry import ModelPair, register

args = configs.load("cifar10_whitened.yaml")["model"]["net"]["init_args"]
register(
    ModelPair(
        name="whitened_cnn_cifar10",
        trained_by="cifar10_whitened.yaml",
        torch_model=partial(WhitenedCNN, **args),
        keras_model=partial(whitened_cnn, (32, 32, args["in_channels"]), 10,
                            **{k: v for k, v in args.items() if k != "in_channels"}),
        input_shape=(args["in_channels"], 32, 32),
        dataset="cifar10",
    )
)
