"""How variants rank against each other: quality, and when one clearly beats another."""

from __future__ import annotations

from optimize.build.builder import Variant
from optimize.measure.fidelity import quality_of

# A variant clearly beats another when it is at least this much faster at no worse
# quality, beyond the noise of both measurements.
DOMINATION_MARGIN = 0.25


def quality(variant: Variant) -> float:
    """Higher is better: the task metric on labelled data when known, else mean output
    cosine."""
    return quality_of(variant.fidelity or {})


def within_noise_of(fastest: Variant, variant: Variant) -> bool:
    """Whether `variant`'s median is too close to the faster one's to rank them apart."""
    margin = (
        DOMINATION_MARGIN
        + fastest.measurements["latency"]["spread"]
        + variant.measurements["latency"]["spread"]
    )
    return variant.p50_ms <= fastest.p50_ms * (1 + margin)


def dominated_by(variant: Variant, others: list[Variant]) -> Variant | None:
    """A measured variant that beats `variant` clearly on latency at no worse quality."""
    if variant.status != "measured":
        return None
    for other in others:
        if other is variant or other.status != "measured":
            continue
        if not within_noise_of(other, variant) and quality(other) >= quality(variant):
            return other
    return None
