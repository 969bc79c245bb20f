"""A ResNet-50 (the torchvision layout: bottleneck blocks of 3, 4, 6 and 3 over 256 to 2048
channels) over 224×224 RGB images, with seeded random weights: a network of the size users
bring, without a download."""

from __future__ import annotations

from pathlib import Path

import torch
from resnet18_model import imagenet_stem, save_image_model
from torch import nn


class Bottleneck(nn.Module):
    """1×1 down, 3×3, 1×1 up (four times the width), with batch norm and a shortcut."""

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        outputs = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, outputs, 1, bias=False),
            nn.BatchNorm2d(outputs),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """25.6 M parameters, 4.1 GFLOP per image."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = imagenet_stem()
        layers, inputs = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for index in range(blocks):
                layers.append(Bottleneck(inputs, width, stride if index == 0 else 1))
                inputs = 4 * width
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def save_resnet50(path: Path) -> Path:
    """The model in inference mode, exported with a dynamic batch to `path` (.pt2)."""
    torch.manual_seed(0)
    return save_image_model(ResNet50().eval(), path)
