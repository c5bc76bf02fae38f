"""Architectures as plain nn.Modules. Layer names are shared with the Keras twins in keras_ref.models."""

from __future__ import annotations

from torch import nn


class SpecifiedCNN(nn.Sequential):
    """The exercise's CNN: 28x28x1 -> 10 logits, 58,796 parameters.

    Conv 3x3 'same' 1->32, ReLU, MaxPool 2 | Conv 5x5 'valid' 32->16, ReLU, MaxPool 2 | FC 400->100->50->10.
    ReLUs are separate layers so that every layer lines up one-to-one with the Keras twin.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()  # (C, H, W) order; Keras flattens (H, W, C) -- see parity.transfer
        self.fc1 = nn.Linear(16 * 5 * 5, 100)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(100, 50)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(50, num_classes)
