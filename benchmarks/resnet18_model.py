"""A ResNet-18 (the torchvision layout: basic blocks of 64, 128, 256 and 512 channels, two
each) over 224×224 RGB images, with seeded random weights: the size of model a team times
before serving, without a download."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and a shortcut, downsampling when asked."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def imagenet_stem() -> nn.Sequential:
    """The ResNets' stem: a 7×7 convolution of stride 2 to 64 channels, then max pooling."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    )


class ResNet18(nn.Module):
    """11.7 M parameters, 1.8 GFLOP per image."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = imagenet_stem()
        layers, inputs = [], 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x)).mean(dim=(2, 3))
        return self.head(features)


def save_resnet18(path: Path) -> Path:
    """The model in inference mode, exported with a dynamic batch to `path` (.pt2)."""
    torch.manual_seed(0)
    return save_image_model(ResNet18().eval(), path)


def save_image_model(model: nn.Module, path: Path) -> Path:
    """An image model over 224×224 RGB exported with a dynamic batch to `path` (.pt2)."""
    sample = torch.randn(2, 3, 224, 224)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (sample,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path
