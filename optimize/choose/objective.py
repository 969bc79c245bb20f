"""What "fastest" means for the pick: the median batch-1 latency for a model of tensors; for
a language model, the objective the user chose: time per output token (decode), time to the
first token (ttft), tokens per second over concurrent streams (throughput) or peak memory
(memory). Every stage that ranks candidates (which are timed in full, the pick) ranks them
by the same figure, lower is better."""

from __future__ import annotations

from collections.abc import Callable

from optimize.build.variant import Candidate

# The rule each objective picks by, as the report states it.
RULES = {
    "decode": "the fastest time per output token (median, one stream)",
    "ttft": "the shortest time to the first token (median, at the shortest prompt timed)",
    "throughput": "the most tokens per second over concurrent streams",
    "memory": "the lowest peak memory of its process",
}

RankKey = Callable[[Candidate], float]


def latency(candidate: Candidate) -> float:
    """The median batch-1 latency (for a language model, its time per output token)."""
    return candidate.p50_ms


def first_token_ms(candidate: Candidate) -> float:
    """The median time to the first token at the shortest prompt that was timed."""
    ttft = candidate.measurements.generation["ttft"]
    return ttft[min(ttft, key=int)]["p50_ms"]


def ms_per_streamed_token(candidate: Candidate) -> float:
    """Milliseconds per token over all the concurrent streams: the inverse of throughput."""
    return 1e3 / candidate.measurements.throughput_per_s


def peak_memory_mb(candidate: Candidate) -> float:
    """The peak memory of the process that measured the candidate."""
    return candidate.measurements.peak_memory_mb


KEYS: dict[str, RankKey] = {
    "decode": latency,
    "ttft": first_token_ms,
    "throughput": ms_per_streamed_token,
    "memory": peak_memory_mb,
}


# What each key's figure is called, and its unit, as a reason says them.
FIGURES: dict[RankKey, tuple[str, str]] = {
    latency: ("the latency", "ms"),
    first_token_ms: ("the time to the first token", "ms"),
    ms_per_streamed_token: ("the time per token over streams", "ms"),
    peak_memory_mb: ("the peak memory", "MB"),
}


def rank_key(objective: str | None) -> RankKey:
    """The figure candidates are ranked by, lower first: the latency without an objective."""
    return KEYS[objective] if objective else latency
