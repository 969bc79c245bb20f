"""Task metrics over streamed batches: top-k accuracy, macro F1, MSE/MAE/R², cosine, or the
user's own, each accumulated batch by batch so the data never has to fit in memory."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from hardware.errors import UserError
from passes.user_code import import_callable

METRIC_NAMES = (
    "top1",
    "top5",
    "topK",
    "f1",
    "mse",
    "mae",
    "r2",
    "cosine",
    "perplexity",
    "module:function",
)


@dataclass
class Metric:
    """A metric's running state. `higher_is_better` says which way is a drop; `unit` is
    True for scores in [0, 1] (accuracy, F1, R², cosine), whose drops are read in points."""

    name: str
    higher_is_better: bool = True
    unit: bool = True

    def update(self, outputs: list[np.ndarray], labels: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError


@dataclass
class TopK(Metric):
    """Share of samples whose label is among the k highest scores of the first output."""

    k: int = 1
    hits: int = 0
    count: int = 0

    def update(self, outputs, labels):
        scores = outputs[0].reshape(len(labels), -1)
        top = np.argsort(-scores, axis=1)[:, : self.k]
        self.hits += int((top == labels.reshape(-1, 1)).any(axis=1).sum())
        self.count += len(labels)

    def result(self):
        return self.hits / self.count


@dataclass
class MacroF1(Metric):
    """F1 per class from running true/false positive counts, averaged over the classes."""

    counts: dict[str, np.ndarray] = field(default_factory=dict)

    def update(self, outputs, labels):
        scores = outputs[0].reshape(len(labels), -1)
        predicted, labels = scores.argmax(axis=1), labels.reshape(-1).astype(np.int64)
        classes = max(scores.shape[1], int(labels.max()) + 1)
        for key, values in (
            ("tp", labels[predicted == labels]),
            ("fp", predicted[predicted != labels]),
            ("fn", labels[predicted != labels]),
        ):
            counted = np.bincount(values, minlength=classes)
            previous = self.counts.get(key, np.zeros(classes, dtype=np.int64))
            size = max(len(previous), classes)
            self.counts[key] = np.pad(previous, (0, size - len(previous))) + np.pad(
                counted, (0, size - len(counted))
            )

    def result(self):
        tp, fp, fn = (self.counts[k].astype(float) for k in ("tp", "fp", "fn"))
        present = (tp + fn) > 0  # classes absent from the labels do not dilute the mean
        denominator = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        return float(f1[present].mean())


@dataclass
class Regression(Metric):
    """MSE, MAE or R² of the first output against float targets, from running sums."""

    sums: dict[str, float] = field(default_factory=dict)

    def update(self, outputs, labels):
        predicted = outputs[0].reshape(len(labels), -1).astype(np.float64)
        target = labels.reshape(len(labels), -1).astype(np.float64)
        error = predicted - target
        for key, value in (
            ("n", target.size),
            ("sq", float((error**2).sum())),
            ("abs", float(np.abs(error).sum())),
            ("y", float(target.sum())),
            ("yy", float((target**2).sum())),
        ):
            self.sums[key] = self.sums.get(key, 0.0) + value

    def result(self):
        s = self.sums
        if self.name == "mse":
            return s["sq"] / s["n"]
        if self.name == "mae":
            return s["abs"] / s["n"]
        total = s["yy"] - s["y"] ** 2 / s["n"]
        return 1.0 - s["sq"] / total if total > 0 else 0.0


@dataclass
class Cosine(Metric):
    """Mean cosine similarity of the first output's rows to the label rows (embeddings)."""

    total: float = 0.0
    count: int = 0

    def update(self, outputs, labels):
        a = outputs[0].reshape(len(labels), -1).astype(np.float64)
        b = labels.reshape(len(labels), -1).astype(np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        self.total += float(
            np.where(norms > 0, (a * b).sum(axis=1) / np.maximum(norms, 1e-30), 0).sum()
        )
        self.count += len(labels)

    def result(self):
        return self.total / self.count


@dataclass
class Perplexity(Metric):
    """A language model's perplexity: exp of the mean negative log-likelihood, the first
    output holding each predicted token's log-probability (teacher-forced on windows of the
    user's text, the windows' own ids as the labels)."""

    total_logprob: float = 0.0
    tokens: int = 0

    def update(self, outputs, labels):
        logprobs = outputs[0].astype(np.float64)
        self.total_logprob += float(logprobs.sum())
        self.tokens += logprobs.size

    def result(self):
        return float(np.exp(-self.total_logprob / self.tokens))


@dataclass
class UserMetric(Metric):
    """The user's `fn(outputs, labels) -> float` (higher is better), called once on all
    outputs and labels: unlike the built-in metrics it holds them in memory."""

    spec: str = ""
    outputs: list[list[np.ndarray]] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)

    def update(self, outputs, labels):
        self.outputs.append(outputs)
        self.labels.append(labels)

    def result(self):
        function = import_callable(self.spec, "metric")
        outputs = [np.concatenate(parts) for parts in zip(*self.outputs, strict=True)]
        return float(function(outputs, np.concatenate(self.labels)))


def make_metric(name: str) -> Metric:
    """A fresh metric by name (see METRIC_NAMES); `module:function` is the user's."""
    if ":" in name:
        import_callable(name, "metric")  # fail now, not after the first variant
        return UserMetric(name, unit=False, spec=name)
    if match := re.fullmatch(r"top(\d+)", name):
        return TopK(name, k=int(match.group(1)))
    if name == "f1":
        return MacroF1(name)
    if name in ("mse", "mae"):
        return Regression(name, higher_is_better=False, unit=False)
    if name == "r2":
        return Regression(name)
    if name == "cosine":
        return Cosine(name)
    if name == "perplexity":
        return Perplexity(name, higher_is_better=False, unit=False)
    raise UserError(f"unknown metric '{name}'; use one of {', '.join(METRIC_NAMES)}")


def choose_metric(outputs: list[np.ndarray], labels: np.ndarray) -> str:
    """The metric the first batch implies: top-1 for class scores with integer labels,
    cosine for float vectors against same-sized targets, R² for other float targets."""
    first = outputs[0]
    per_row = first.reshape(len(labels), -1).shape[1]
    if np.issubdtype(labels.dtype, np.integer) and labels.ndim == 1 and per_row >= 2:
        return "top1"
    if per_row >= 2 and labels.reshape(len(labels), -1).shape[1] == per_row:
        return "cosine"
    return "r2"
