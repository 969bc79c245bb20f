"""Small example models built in seconds: a digits CNN and a tiny transformer encoder.

Used by the demo, the tests, the notebooks and the benchmarks; scikit-learn provides the
digits images (bundled with it, no download).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class DigitsData:
    """8x8 digit images as float32 (N, 1, 8, 8) in [0, 1], with int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def digits_data(seed: int = 0) -> DigitsData:
    """scikit-learn's digits, split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return DigitsData(tr_x, tr_y, te_x, te_y)


class DigitsCNN(nn.Module):
    """A small CNN for 1x8x8 digit images, 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TinyEncoder(nn.Module):
    """A small nn.TransformerEncoder over float features (batch, seq_len, d_model),
    mean-pooled and projected to a (batch, d_model) embedding."""

    def __init__(self, d_model: int = 64, n_heads: int = 4, n_layers: int = 2) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=4 * d_model, batch_first=True, dropout=0.0
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.encoder(x).mean(dim=1))


def digits_cnn_module() -> DigitsCNN:
    """An untrained digits CNN."""
    return DigitsCNN()


def train_digits_cnn(data: DigitsData | None = None, epochs: int = 8, seed: int = 0):
    """Train the digits CNN for a few seconds; returns the model in eval mode."""
    data = data or digits_data()
    torch.manual_seed(seed)
    model = digits_cnn_module()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(data.train_x)
    y = torch.from_numpy(data.train_y)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    return model.eval()


def tiny_transformer_module(
    d_model: int = 64, n_heads: int = 4, n_layers: int = 2, seed: int = 0
) -> TinyEncoder:
    """A seeded TinyEncoder in eval mode."""
    torch.manual_seed(seed)
    return TinyEncoder(d_model, n_heads, n_layers).eval()


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max equals the label."""
    return float((logits.argmax(axis=1) == labels).mean())


def finetune_digits(model: nn.Module, epochs: int = 4) -> nn.Module:
    """Recovery fine-tuning for a pruned digits CNN (`--finetune
    optimize.examples:finetune_digits`): a few epochs on the training digits."""
    data = digits_data()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    generator = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model


@dataclass
class TabularData:
    """scikit-learn's breast_cancer features as raw float32 with about 3% of the values
    made invalid (NaN, ±inf), as data from the field arrives; int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


# What the tabular model was trained with: invalid values become the column median, then
# each column is standardised. The statistics are fitted on the raw training features.
TABULAR_PREPROCESSING = {
    "x": [{"step": "replace_invalid", "with": "median"}, {"step": "standardize"}]
}


def tabular_data(seed: int = 0) -> TabularData:
    """breast_cancer split 75/25 with a fixed seed, with invalid values injected."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    features, labels = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    x = features.astype(np.float32)
    broken = rng.random(x.shape) < 0.03
    x[broken] = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), broken.sum())
    split = train_test_split(x, labels.astype(np.int64), test_size=0.25, random_state=seed)
    tr_x, te_x, tr_y, te_y = split
    return TabularData(tr_x, tr_y, te_x, te_y)


class TabularMLP(nn.Module):
    """A two-layer MLP over a (batch, features) input named x, two classes."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def train_tabular_mlp(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> TabularMLP:
    """The MLP trained for a second on already preprocessed features."""
    torch.manual_seed(seed)
    model = TabularMLP(features.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(features), torch.from_numpy(labels)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()
