"""Which screened candidates are worth timing in full: those that could still win. The
others keep their screening figures and say why they were not timed further."""

from __future__ import annotations

from optimize.build.variant import Candidate, TimingKind
from optimize.choose.objective import FIGURES, RankKey, latency
from optimize.choose.ranking import within_noise_of
from optimize.measure.judging import SCREEN_MARGIN

# A screening is one short draw of a session's speed: where a run takes microseconds, the
# same graph can draw 1.6× slower in one session than in the next (the digits CNN, 0.015
# ms, under two threads). Such a candidate this much past the noise bar, or nearer, is
# screened once more before it is left out; the nearest few only. At ResNet sizes a second
# draw only brought more contenders within noise, each timed in full (ResNet-50: 19 s of
# full timing became 41 s).
RESCREEN_REACH = 1.5
RESCREEN_BELOW_MS = 1.0
MOST_RESCREENED = 2


def fastest_within_limits(candidates: list[Candidate], key: RankKey = latency) -> Candidate | None:
    """The measured candidate within the user's limits that ranks first by `key` (the
    lowest latency by default), or None."""
    ok = [c for c in candidates if c.within_tolerance]
    return min(ok, key=key) if ok else None


def near_misses(candidates: list[Candidate], margin: float = SCREEN_MARGIN) -> list[Candidate]:
    """The freshly screened candidates not outside the limits, of runs under
    RESCREEN_BELOW_MS, that missed the noise bar of the fastest within them by at most
    RESCREEN_REACH, nearest first: one more screening may put them in the running (and
    judge their outputs)."""
    screened = [c for c in candidates if c.measured and c.timing == TimingKind.SCREEN]
    fastest = fastest_within_limits(screened)
    if fastest is None:
        return []
    missed = [
        c
        for c in screened
        if not c.outside_limits
        and not c.measurements_cached
        and c.p50_ms < RESCREEN_BELOW_MS
        and not within_noise_of(fastest, c, margin)
        and within_noise_of(fastest, c, (1 + margin) * RESCREEN_REACH - 1)
    ]
    return sorted(missed, key=latency)[:MOST_RESCREENED]


def worth_timing(
    candidates: list[Candidate], most: int, margin: float = SCREEN_MARGIN, key: RankKey = latency
) -> list[Candidate]:
    """The screened candidates within the user's limits whose screening figure by `key` is
    within noise (`margin`, plus both spreads for the latency) of the first such candidate,
    at most `most` of them, first first; every other screened candidate gets its reason in
    `not_timed_further`."""
    screened = [c for c in candidates if c.measured and c.timing == TimingKind.SCREEN]
    fastest = fastest_within_limits(screened, key)
    chosen = []
    for candidate in sorted(screened, key=key):
        close = candidate.within_tolerance and (
            within_noise_of(fastest, candidate, margin)
            if key is latency
            else key(candidate) <= key(fastest) * (1 + margin)
        )
        if candidate.outside_limits:
            candidate.not_timed_further = "outside the limits, so it cannot be picked"
        elif not candidate.within_tolerance:
            continue  # its outputs were not judged, and its reason says why
        elif close and len(chosen) < most:
            chosen.append(candidate)
        elif close:
            candidate.not_timed_further = (
                f"within noise of {fastest.label}, but {most} faster ones were timed in full"
            )
        else:
            figure, unit = FIGURES[key]
            candidate.not_timed_further = (
                f"screened at {key(candidate) / key(fastest):.1f}× {figure} of "
                f"{fastest.label} ({key(fastest):.3f} {unit}), beyond noise, so it cannot win"
            )
    return chosen
