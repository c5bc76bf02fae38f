"""Keras twin of lightning_impl.models.specified_cnn: same layers, same names, NHWC instead of NCHW."""

from __future__ import annotations

import keras_ref  # noqa: F401  (sets the Keras backend before keras is imported)
import keras
from keras import layers


def specified_cnn(input_shape: tuple[int, int, int] = (28, 28, 1), num_classes: int = 10) -> keras.Sequential:
    """Twin of lightning_impl.models.SpecifiedCNN (58,796 parameters); outputs logits."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, padding="same", name="conv1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 5, padding="valid", name="conv2"),
            layers.ReLU(name="relu2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),  # (H, W, C) order, unlike torch's (C, H, W)
            layers.Dense(100, name="fc1"),
            layers.ReLU(name="relu3"),
            layers.Dense(50, name="fc2"),
            layers.ReLU(name="relu4"),
            layers.Dense(num_classes, name="fc3"),
        ],
        name="SpecifiedCNN",
    )
