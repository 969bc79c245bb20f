"""Choosing among measured variants: the Pareto front and the pick under the tolerance."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Candidate, TimingKind, Variant
from optimize.choose.contest import Contest
from optimize.choose.objective import RULES, RankKey, latency

PICK_RULE = "the fastest variant (median batch-1 latency) whose fidelity is within tolerance"


def generative_rule(objective: str) -> str:
    """How a language model's pick is chosen under `objective`."""
    return f"{RULES[objective]} among the candidates whose perplexity is within tolerance"


def _dominates(a: Candidate, b: Candidate, same_speed: bool = False) -> bool:
    """`a` is no worse than `b` in latency, quality and size, and better in one; with
    `same_speed`, their latencies count as equal (they tied head to head)."""
    a_ms, b_ms = (0.0, 0.0) if same_speed else (a.p50_ms, b.p50_ms)
    a_size, b_size = a.size_mb, b.size_mb
    no_worse = a_ms <= b_ms and a.quality >= b.quality and a_size <= b_size
    better = a_ms < b_ms or a.quality > b.quality or a_size < b_size
    return no_worse and better


def pareto_front(variants: list[Candidate], contest: Contest | None = None) -> list[Candidate]:
    """Measured variants, their outputs judged, that no other beats on latency, quality
    and size at once, fastest first. Variants tied in the head-to-head `contest` are as
    fast as each other: separate figures cannot rank them, so the pick among them stays on
    the front."""
    tied = {e["id"] for e in contest.entries if e["tie"]} if contest else set()
    measured = [v for v in variants if v.measured and v.fidelity is not None]

    def beaten(v: Candidate) -> bool:
        return any(_dominates(o, v, o.id in tied and v.id in tied) for o in measured if o is not v)

    front = [v for v in measured if not beaten(v)]
    return sorted(front, key=lambda v: (v.p50_ms, -v.quality))


def pick(
    variants: list[Candidate], contest: Contest | None = None, key: RankKey = latency
) -> Candidate | None:
    """The fastest measured variant within tolerance (the first by `key`), or None when
    there is none: among those timed in full, when any were. When the fastest took part in
    the head-to-head `contest`, its winner instead: separate figures could not rank the
    contenders."""
    within = [v for v in variants if v.within_tolerance]
    if not within:
        return None
    # Screening figures rank roughly; the pick rests on a full timing where there is one.
    candidates = [v for v in within if v.timing != TimingKind.SCREEN] or within
    fastest = min(candidates, key=key)
    if contest is not None and contest.entry(fastest.id) is not None:
        return next(v for v in candidates if v.id == contest.winner)
    return fastest


def closest(variants: list[Candidate]) -> Candidate | None:
    """The measured variant of highest quality, kept when none is within tolerance; among
    equals, the fastest."""
    measured = [v for v in variants if v.measured]
    return max(measured, key=lambda v: (v.quality, -v.p50_ms)) if measured else None


@dataclass(frozen=True)
class Choice:
    """The outcome of the choose stage: the pick over every runtime, the best ONNX
    variant (what best.onnx holds), and the Pareto front."""

    pick: Candidate | None
    pick_onnx: Variant | None
    front: list[Candidate]


def choose(variants: list[Candidate], contest: Contest | None, key: RankKey = latency) -> Choice:
    """Pick within the limits (first by `key`), overall and among ONNX variants, and the
    front."""
    onnx = [v for v in variants if v.runtime == RuntimeName.ONNXRUNTIME]
    front = pareto_front(variants, contest)
    return Choice(pick(variants, contest, key), pick(onnx, contest, key), front)
