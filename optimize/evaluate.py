"""Fidelity of a variant's outputs against the original model's, and the tolerance rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """How far a variant may stray from the original model and still be picked.

    With labelled data the task metric decides: `max_accuracy_drop` is in absolute points
    of top-1 accuracy (1.0 = one point); `max_relative_accuracy_drop`, when set, also bounds
    the drop in percent of the original's accuracy (1.0 = 1% of it). Without labels, fidelity decides: `min_cosine`
    bounds the mean cosine similarity of the variant's outputs to the original's.
    """

    min_cosine: float = 0.999
    max_accuracy_drop: float = 1.0
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    max_relative_accuracy_drop: float | None = None

    def describe(self) -> str:
        text = (
            f"with labels, a top-1 accuracy drop <= {self.max_accuracy_drop} points; "
            f"without, a mean output cosine >= {self.min_cosine}"
        )
        if self.max_relative_accuracy_drop is not None:
            text += f"; accuracy drop <= {self.max_relative_accuracy_drop}% of the original's"
        if self.max_latency_ms is not None:
            text += f"; median batch-1 latency <= {self.max_latency_ms} ms"
        if self.max_size_mb is not None:
            text += f"; size <= {self.max_size_mb} MB"
        return text


@dataclass(frozen=True)
class Fidelity:
    """How a variant's outputs compare with the original model's on the same inputs."""

    samples: int
    max_abs_error: float
    max_rel_error: float
    mean_cosine: float
    min_cosine: float
    nonfinite_outputs: int
    top1_agreement: float | None = None
    accuracy: float | None = None
    reference_accuracy: float | None = None

    @property
    def accuracy_drop_points(self) -> float | None:
        if self.accuracy is None or self.reference_accuracy is None:
            return None
        return 100.0 * (self.reference_accuracy - self.accuracy)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Fidelity:
        """Inverse of to_dict (derived figures are dropped)."""
        return cls(**{k: v for k, v in data.items() if k != "accuracy_drop_points"})

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["accuracy_drop_points"] = self.accuracy_drop_points
        return data


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


def compare_outputs(
    reference: list[np.ndarray],
    candidate: list[np.ndarray],
    labels: np.ndarray | None = None,
) -> Fidelity:
    """Fidelity of `candidate` outputs to `reference` outputs (same inputs, same order)."""
    if len(reference) != len(candidate):
        raise ValueError(f"output count differs: {len(reference)} vs {len(candidate)}")
    max_abs, max_rel, nonfinite = 0.0, 0.0, 0
    for ref, cand in zip(reference, candidate, strict=True):
        if ref.shape != cand.shape:
            raise ValueError(f"output shape differs: {ref.shape} vs {cand.shape}")
        ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
        nonfinite += int((~np.isfinite(cand64)).sum())
        diff = np.abs(ref64 - cand64)
        max_abs = max(max_abs, float(np.nanmax(diff, initial=0.0)))
        scale = np.maximum(np.abs(ref64), 1e-6)
        max_rel = max(max_rel, float(np.nanmax(diff / scale, initial=0.0)))
    cosines = _cosines(reference, candidate)
    top1 = accuracy = reference_accuracy = None
    if looks_like_class_scores(reference[0]):
        ref_top1, cand_top1 = reference[0].argmax(axis=1), candidate[0].argmax(axis=1)
        top1 = float((ref_top1 == cand_top1).mean())
        if labels is not None:
            accuracy = float((cand_top1 == labels).mean())
            reference_accuracy = float((ref_top1 == labels).mean())
    return Fidelity(
        samples=int(reference[0].shape[0]),
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        mean_cosine=float(cosines.mean()),
        min_cosine=float(cosines.min()),
        nonfinite_outputs=nonfinite,
        top1_agreement=top1,
        accuracy=accuracy,
        reference_accuracy=reference_accuracy,
    )


def tolerance_verdict(fidelity: Fidelity, tolerance: Tolerance) -> str | None:
    """Why `fidelity` falls outside `tolerance`, or None when it is within."""
    if fidelity.nonfinite_outputs:
        return f"{fidelity.nonfinite_outputs} NaN/inf output values"
    drop = fidelity.accuracy_drop_points
    if drop is not None:
        if drop > tolerance.max_accuracy_drop:
            return f"accuracy drop {drop:.2f} points > {tolerance.max_accuracy_drop}"
        relative = tolerance.max_relative_accuracy_drop
        if relative is not None and fidelity.reference_accuracy:
            percent = drop / fidelity.reference_accuracy  # points / fraction = percent
            if percent > relative:
                return f"accuracy drop {percent:.2f}% of the original's > {relative}%"
        return None
    if fidelity.mean_cosine < tolerance.min_cosine:
        return f"mean cosine {fidelity.mean_cosine:.5f} < {tolerance.min_cosine}"
    return None


def limits_verdict(measurements: dict[str, object], tolerance: Tolerance) -> str | None:
    """Why measured speed or size breaks the user's limits, or None."""
    p50 = measurements["latency"]["p50_ms"]
    if tolerance.max_latency_ms is not None and p50 > tolerance.max_latency_ms:
        return f"p50 {p50:.3f} ms > {tolerance.max_latency_ms} ms"
    size = measurements["size_mb"]
    if tolerance.max_size_mb is not None and size > tolerance.max_size_mb:
        return f"size {size:.2f} MB > {tolerance.max_size_mb} MB"
    return None
