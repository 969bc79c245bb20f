"""How variants rank against each other: quality, and when one clearly beats another."""

from __future__ import annotations

from optimize.build.variant import Candidate

# A variant clearly beats another when it is at least this much faster at no worse
# quality, beyond the noise of both measurements.
DOMINATION_MARGIN = 0.25


def within_noise_of(
    fastest: Candidate, other: Candidate, margin: float = DOMINATION_MARGIN
) -> bool:
    """Whether `other`'s median is within `margin` plus both spreads of the faster one's:
    too close to rank them apart."""
    margin += fastest.spread + other.spread
    return other.p50_ms <= fastest.p50_ms * (1 + margin)


def dominated_by(candidate: Candidate, others: list[Candidate]) -> Candidate | None:
    """A measured candidate that beats `candidate` clearly on latency at no worse quality."""
    if not candidate.measured:
        return None
    for other in others:
        if other is candidate or not other.measured:
            continue
        if not within_noise_of(other, candidate) and other.quality >= candidate.quality:
            return other
    return None
