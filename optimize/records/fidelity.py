"""Fidelity of a variant's outputs against the original model's: max error, cosine,
top-1 agreement and the task metric, tallied batch by batch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from optimize.records.metrics import Metric, make_metric


@dataclass(frozen=True)
class Fidelity:
    """How a variant's outputs compare with the original model's on the same inputs, and,
    with labels, its task metric beside the original's."""

    samples: int
    max_abs_error: float
    max_rel_error: float
    mean_cosine: float
    min_cosine: float
    nonfinite_outputs: int
    top1_agreement: float | None = None
    accuracy: float | None = None
    reference_accuracy: float | None = None
    metric: str | None = None
    score: float | None = None
    reference_score: float | None = None
    higher_is_better: bool = True
    unit_metric: bool = True
    # Integer outputs (a language model's greedy continuations) are compared for equality:
    # the share of identical elements, and the mean position of the first difference in a
    # row (the row's length where none differs).
    identical_share: float | None = None
    mean_first_divergence: float | None = None

    @property
    def quality(self) -> float:
        """One higher-is-better figure (see quality_of)."""
        return quality_of(asdict(self))

    def short_of(self, min_cosine: float, total: int) -> bool:
        """Whether outputs judged on the first `samples` of `total` unlabelled samples
        fail `min_cosine` whatever the rest (see cannot_reach)."""
        return cannot_reach(
            self.mean_cosine * self.samples, self.samples, self.nonfinite_outputs, total, min_cosine
        )

    @property
    def metric_drop(self) -> float | None:
        """How much worse the metric is than the original's, in its own units (positive
        is worse, whichever way the metric runs)."""
        if self.score is None or self.reference_score is None:
            return None
        drop = self.reference_score - self.score
        return drop if self.higher_is_better else -drop

    @property
    def accuracy_drop_points(self) -> float | None:
        """The drop in points (1.0 = one percentage point) of a metric scored in [0, 1]."""
        drop = self.metric_drop
        return None if drop is None or not self.unit_metric else 100.0 * drop

    @property
    def relative_drop_percent(self) -> float | None:
        """The drop in percent of the original's score."""
        drop = self.metric_drop
        if drop is None or not self.reference_score:
            return None
        return 100.0 * drop / abs(self.reference_score)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Fidelity:
        """Inverse of to_dict (derived figures are dropped)."""
        derived = ("accuracy_drop_points", "relative_drop_percent", "metric_drop")
        return cls(**{k: v for k, v in data.items() if k not in derived})

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["metric_drop"] = self.metric_drop
        data["accuracy_drop_points"] = self.accuracy_drop_points
        data["relative_drop_percent"] = self.relative_drop_percent
        return data


def quality_of(fidelity: dict[str, object]) -> float:
    """One higher-is-better figure from a fidelity record: the task metric's score (negated
    when lower is better) with labels, else top-1 accuracy as older reports give it, else
    the mean output cosine."""
    if fidelity.get("score") is not None:
        score = float(fidelity["score"])
        return score if fidelity.get("higher_is_better", True) else -score
    if fidelity.get("accuracy") is not None:
        return float(fidelity["accuracy"])
    return float(fidelity.get("mean_cosine", float("-inf")))


def looks_like_class_scores(output: np.ndarray) -> bool:
    """A float (batch, classes) array with at least two classes."""
    return output.ndim == 2 and output.shape[1] >= 2 and np.issubdtype(output.dtype, np.floating)


def _cosines(reference: list[np.ndarray], candidate: list[np.ndarray]) -> np.ndarray:
    count = reference[0].shape[0]
    ref = np.concatenate([r.reshape(count, -1).astype(np.float64) for r in reference], axis=1)
    cand = np.concatenate([c.reshape(count, -1).astype(np.float64) for c in candidate], axis=1)
    cand = np.nan_to_num(cand, nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    dots = (ref * cand).sum(axis=1)
    # Two all-zero rows agree perfectly; one zero row against a non-zero one does not.
    both_zero = (np.linalg.norm(ref, axis=1) == 0) & (np.linalg.norm(cand, axis=1) == 0)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1), both_zero.astype(float))


def cannot_reach(
    cosine_sum: float, samples: int, nonfinite: int, total: int, min_cosine: float
) -> bool:
    """Whether outputs with `cosine_sum` over their first `samples` of `total` fail
    `min_cosine` whatever the rest: NaN or infinite values among them, or a mean that
    would stay under it were every other sample's cosine a perfect 1."""
    return nonfinite > 0 or (cosine_sum + total - samples) / total < min_cosine


class FidelityTally:
    """Fidelity accumulated batch by batch, so evaluation data never has to fit in memory.

    With labels, `metric` (a name from optimize.records.metrics) scores the candidate and the
    reference outputs alike; top-1 accuracy is also kept for class scores."""

    def __init__(self, metric: str | None = None) -> None:
        self.metric_name = metric
        self.samples = self.nonfinite = 0
        self.max_abs = self.max_rel = 0.0
        self.cosine_sum, self.cosine_min = 0.0, float("inf")
        self.agree = 0
        self.class_scores = False
        self.scores: tuple[Metric, Metric] | None = None
        self.accuracy: tuple[Metric, Metric] | None = None
        self.identical = self.compared = 0
        self.divergences: list[int] = []

    def add(
        self,
        reference: list[np.ndarray],
        candidate: list[np.ndarray],
        labels: np.ndarray | None = None,
    ) -> None:
        """Fold in one batch: the original's and the variant's outputs on the same inputs."""
        if len(reference) != len(candidate):
            raise ValueError(f"output count differs: {len(reference)} vs {len(candidate)}")
        for ref, cand in zip(reference, candidate, strict=True):
            if ref.shape != cand.shape:
                raise ValueError(f"output shape differs: {ref.shape} vs {cand.shape}")
        tokens = [i for i, r in enumerate(reference) if np.issubdtype(r.dtype, np.integer)]
        if tokens and len(tokens) < len(reference):
            self._add_tokens([reference[i] for i in tokens], [candidate[i] for i in tokens])
            reference = [r for i, r in enumerate(reference) if i not in tokens]
            candidate = [c for i, c in enumerate(candidate) if i not in tokens]
        for ref, cand in zip(reference, candidate, strict=True):
            ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
            self.nonfinite += int((~np.isfinite(cand64)).sum())
            diff = np.abs(ref64 - cand64)
            self.max_abs = max(self.max_abs, float(np.nanmax(diff, initial=0.0)))
            scale = np.maximum(np.abs(ref64), 1e-6)
            self.max_rel = max(self.max_rel, float(np.nanmax(diff / scale, initial=0.0)))
        cosines = _cosines(reference, candidate)
        self.cosine_sum += float(cosines.sum())
        self.cosine_min = min(self.cosine_min, float(cosines.min()))
        self.samples += len(cosines)
        class_scores = looks_like_class_scores(reference[0])
        self.class_scores = self.class_scores or class_scores
        if class_scores:
            self.agree += int((reference[0].argmax(axis=1) == candidate[0].argmax(axis=1)).sum())
        if labels is None:
            return
        if self.metric_name is not None:
            self.scores = self.scores or (
                make_metric(self.metric_name),
                make_metric(self.metric_name),
            )
            self.scores[0].update(reference, labels)
            self.scores[1].update(candidate, labels)
        # Top-1 accuracy needs one class label per sample (a language model's labels are
        # rows of token ids).
        if class_scores and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
            self.accuracy = self.accuracy or (make_metric("top1"), make_metric("top1"))
            self.accuracy[0].update(reference, labels)
            self.accuracy[1].update(candidate, labels)

    def short_of(self, min_cosine: float, total: int) -> bool:
        """Whether what is tallied so far fails `min_cosine` over `total` unlabelled
        samples whatever the rest (see cannot_reach)."""
        return cannot_reach(self.cosine_sum, self.samples, self.nonfinite, total, min_cosine)

    def _add_tokens(self, reference: list[np.ndarray], candidate: list[np.ndarray]) -> None:
        """Fold in integer outputs beside float ones, row by row: equal or not."""
        for ref, cand in zip(reference, candidate, strict=True):
            ref, cand = ref.reshape(len(ref), -1), cand.reshape(len(cand), -1)
            same = ref == cand
            self.identical += int(same.sum())
            self.compared += same.size
            differs = ~same
            first = np.where(differs.any(axis=1), differs.argmax(axis=1), same.shape[1])
            self.divergences += first.tolist()

    def result(self) -> Fidelity:
        """The fidelity of everything added so far."""
        if not self.samples:
            raise ValueError("no outputs were compared: the evaluation data is empty")
        metric = reference_score = score = None
        higher, unit = True, True
        if self.scores:
            reference_score, score = (m.result() for m in self.scores)
            metric, higher, unit = (
                self.scores[0].name,
                self.scores[0].higher_is_better,
                self.scores[0].unit,
            )
        reference_accuracy, accuracy = (
            (m.result() for m in self.accuracy) if self.accuracy else (None, None)
        )
        return Fidelity(
            samples=self.samples,
            max_abs_error=self.max_abs,
            max_rel_error=self.max_rel,
            mean_cosine=self.cosine_sum / self.samples,
            min_cosine=self.cosine_min,
            nonfinite_outputs=self.nonfinite,
            top1_agreement=self.agree / self.samples if self.class_scores else None,
            accuracy=accuracy,
            reference_accuracy=reference_accuracy,
            metric=metric,
            score=score,
            reference_score=reference_score,
            higher_is_better=higher,
            unit_metric=unit,
            identical_share=self.identical / self.compared if self.compared else None,
            mean_first_divergence=(float(np.mean(self.divergences)) if self.divergences else None),
        )


def compare_outputs(
    reference: list[np.ndarray],
    candidate: list[np.ndarray],
    labels: np.ndarray | None = None,
    metric: str | None = "top1",
) -> Fidelity:
    """Fidelity of `candidate` outputs to `reference` outputs (same inputs, same order), in
    one batch; with labels, scored by `metric` where it applies to these outputs."""
    usable = metric if labels is not None and _applies(metric, reference, labels) else None
    tally = FidelityTally(usable)
    tally.add(reference, candidate, labels)
    return tally.result()


def _applies(metric: str | None, outputs: list[np.ndarray], labels: np.ndarray) -> bool:
    """Whether top-1 style metrics make sense: class scores against integer labels."""
    if metric is None:
        return False
    if metric.startswith("top") or metric == "f1":
        return looks_like_class_scores(outputs[0]) and np.issubdtype(labels.dtype, np.integer)
    return True
