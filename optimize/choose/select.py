"""Choosing among measured variants: the Pareto front and the pick under the tolerance."""

from __future__ import annotations

from optimize.build.builder import Variant
from optimize.choose.contest import Contest
from optimize.choose.ranking import quality

PICK_RULE = "the fastest variant (median batch-1 latency) whose fidelity is within tolerance"


def _dominates(a: Variant, b: Variant) -> bool:
    """`a` is no worse than `b` in latency, quality and size, and better in one."""
    a_size, b_size = a.measurements["size_mb"], b.measurements["size_mb"]
    no_worse = a.p50_ms <= b.p50_ms and quality(a) >= quality(b) and a_size <= b_size
    better = a.p50_ms < b.p50_ms or quality(a) > quality(b) or a_size < b_size
    return no_worse and better


def pareto_front(variants: list[Variant]) -> list[Variant]:
    """Measured variants that no other beats on latency, quality and size at once,
    fastest first."""
    measured = [v for v in variants if v.status == "measured"]
    front = [v for v in measured if not any(_dominates(o, v) for o in measured if o is not v)]
    return sorted(front, key=lambda v: (v.p50_ms, -quality(v)))


def pick(variants: list[Variant], contest: Contest | None = None) -> Variant | None:
    """The fastest measured variant within tolerance, or None when there is none. When the
    fastest took part in the head-to-head `contest`, its winner instead: separate figures
    could not rank the contenders."""
    candidates = [v for v in variants if v.within_tolerance]
    if not candidates:
        return None
    fastest = min(candidates, key=lambda v: v.p50_ms)
    if contest is not None and contest.entry(fastest.id) is not None:
        return next(v for v in candidates if v.id == contest.winner)
    return fastest


def closest(variants: list[Variant]) -> Variant | None:
    """The measured variant of highest quality, kept when none is within tolerance; among
    equals, the fastest."""
    measured = [v for v in variants if v.status == "measured"]
    return max(measured, key=lambda v: (quality(v), -v.p50_ms)) if measured else None
