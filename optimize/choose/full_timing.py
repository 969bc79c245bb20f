"""Full timing sized by what can still change the pick: of the ONNX Runtime contenders
within noise of each other, only the fastest is swept over every setting; the others race
it head to head under the setting it was swept to, and a raced one is timed in full only
when it wins. Of another runtime's contenders, only the fastest is swept; the others are
timed in full under the setting it was fastest with."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from hardware.runtimes.base import RuntimeName
from optimize.build.variant import Candidate, TimingKind, Variant
from optimize.choose.contest import MAX_CONTENDERS, Contest
from optimize.choose.objective import RankKey, latency
from optimize.choose.screening import SCREEN_MARGIN, near_misses, worth_timing
from optimize.measure.measurer import Measurer

Stop = Callable[[], str | None]


def time_contenders(
    variants: list[Candidate],
    measurer: Measurer,
    stop: Stop,
    seconds_left: Callable[[], float | None] = lambda: None,
    every_one: bool = False,
    say: Callable[[str], None] = lambda message: None,
    key: RankKey = latency,
) -> list[Candidate]:
    """Time in full the screened candidates that could still win by `key` (with
    `every_one`, all of them, each swept; a near miss by latency screened again first)
    within what is left of the budget; returns those set to race the fastest ONNX Runtime
    contender instead."""
    most, margin = (len(variants), math.inf) if every_one else (MAX_CONTENDERS, SCREEN_MARGIN)
    if key is latency and not every_one:
        for candidate in near_misses(variants, margin):
            measurer.rescreen(candidate)
    contenders = worth_timing(variants, most, margin, key)
    swept, racing = (contenders, []) if every_one else _leader_and_racers(contenders)
    leaders = _leaders(swept)
    following = [c for c in swept if c not in leaders]
    say(
        f"timing {len(swept)} contender(s) in full"
        + (f", {len(following)} under the best setting of their runtime's" if following else "")
        + (f", {len(racing)} more to race the fastest head to head" if racing else "")
    )
    measurer.time_fully(leaders, stop, seconds_left())
    for follower in following:
        leader = next(c for c in leaders if c.runtime == follower.runtime)
        if leader.timing == TimingKind.FULL:
            follow_leader(follower, leader, measurer)
    measurer.time_fully(following, stop, seconds_left())
    leader = next((c for c in swept if _races(c) and c.timing == TimingKind.FULL), None)
    if leader is None:
        measurer.time_fully(racing, stop, seconds_left())
        return []
    for racer in racing:
        measurer.race_behind(racer, leader)
    return racing


def _races(candidate: Candidate) -> bool:
    """Whether the head to head can take the candidate: an ONNX file in ONNX Runtime."""
    return isinstance(candidate, Variant) and candidate.runtime == RuntimeName.ONNXRUNTIME


def _leader_and_racers(
    contenders: list[Candidate],
) -> tuple[list[Candidate], list[Candidate]]:
    """The contenders swept in full (every other runtime's, and the fastest ONNX Runtime
    one), and the ONNX Runtime ones that race that fastest instead."""
    in_race = [c for c in contenders if _races(c)]
    racing = in_race[1:]
    return [c for c in contenders if c not in racing], racing


def _leaders(swept: list[Candidate]) -> list[Candidate]:
    """The first (fastest screened) contender of each runtime: swept over every setting."""
    first: dict[str, Candidate] = {}
    for candidate in swept:
        first.setdefault(candidate.runtime, candidate)
    return [c for c in swept if c in first.values()]


def follow_leader(follower: Candidate, leader: Candidate, measurer: Measurer) -> None:
    """Narrow `follower`'s sweep to its setting in the place of the one `leader`, of the
    same runtime, was fastest with: one runtime lists its settings in the same order
    (threads, hints), and what makes a row itself (its precision) is kept."""
    lead, job = measurer.jobs[leader.id], measurer.jobs[follower.id]
    best = lead.settings_from(leader.measurements.settings)
    if best in lead.settings and len(job.settings) == len(lead.settings):
        chosen = job.settings[lead.settings.index(best)]
        measurer.jobs[follower.id] = dataclasses.replace(job, settings=(chosen,))


def settle_race(
    racing: list[Candidate], contest: Contest | None, measurer: Measurer, stop: Stop
) -> None:
    """After the head to head: a racer that did not run in it keeps its screening figures
    (it cannot be picked on them), and one that won it is timed in full."""
    for racer in racing:
        entry = contest.entry(racer.id) if contest else None
        if entry is None:
            racer.timing = TimingKind.SCREEN
            racer.not_timed_further = (
                "set to race the fastest head to head, which did not take it (the race "
                "failed, or had no memory left for it)"
            )
        elif contest.winner == racer.id:
            racer.not_timed_further = ""
            measurer.time_fully([racer], stop)
