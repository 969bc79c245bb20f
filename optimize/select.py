"""Choosing among measured variants: the Pareto front and the pick under the tolerance."""

from __future__ import annotations

from optimize.pipeline import Variant

PICK_RULE = "the fastest variant (median batch-1 latency) whose fidelity is within tolerance"


def quality(variant: Variant) -> float:
    """Higher is better: accuracy on labelled data when known, else mean output cosine."""
    fidelity = variant.fidelity or {}
    if fidelity.get("accuracy") is not None:
        return float(fidelity["accuracy"])
    return float(fidelity.get("mean_cosine", float("-inf")))


def pareto_front(variants: list[Variant]) -> list[Variant]:
    """Measured variants that no other beats on both latency and quality, fastest first."""
    measured = sorted(
        (v for v in variants if v.status == "measured"), key=lambda v: (v.p50_ms, -quality(v))
    )
    front: list[Variant] = []
    best_quality = float("-inf")
    for variant in measured:
        if quality(variant) > best_quality:
            front.append(variant)
            best_quality = quality(variant)
    return front


def pick(variants: list[Variant]) -> Variant | None:
    """The fastest measured variant within tolerance, or None when there is none."""
    candidates = [v for v in variants if v.within_tolerance]
    return min(candidates, key=lambda v: v.p50_ms) if candidates else None


def closest(variants: list[Variant]) -> Variant | None:
    """The measured variant of highest quality, kept when none is within tolerance; among
    equals, the fastest."""
    measured = [v for v in variants if v.status == "measured"]
    return max(measured, key=lambda v: (quality(v), -v.p50_ms)) if measured else None
