"""Full timing sized by what can still change the pick: of the contenders within noise of
each other in the racing runtime (that of the fastest, ONNX Runtime or OpenVINO), only the
fastest is swept over every setting; the others race it head to head under the setting it
was swept to, and a raced one is timed in full only when it wins. Of another runtime's
contenders, only the fastest is swept; the others are timed in full under the setting it
was fastest with."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from optimize.build.variant import Candidate, TimingKind
from optimize.choose.contest import MAX_CONTENDERS, Contest, race_runtime
from optimize.choose.objective import RankKey, latency
from optimize.choose.screening import SCREEN_MARGIN, near_misses, worth_timing
from optimize.measure.measurer import Measurer
from optimize.measure.worker import MeasureJob

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
    `every_one`, all of them, each swept; a near miss by latency screened again first, and
    a stored screening taken unjudged judged first if it can still win) within what is
    left of the budget; returns those set to race the fastest contender of the racing
    runtime instead."""
    measurer.settle(stop)
    most, margin = (len(variants), math.inf) if every_one else (MAX_CONTENDERS, SCREEN_MARGIN)
    if key is latency and not every_one:
        for candidate in near_misses(variants, margin):
            measurer.rescreen(candidate)
    contenders = worth_timing(variants, most, margin, key)
    runtime = race_runtime(contenders)
    swept, racing = (contenders, []) if every_one else _leader_and_racers(contenders, runtime)
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
    leader = next((c for c in swept if c.runtime == runtime and c.timing == TimingKind.FULL), None)
    if leader is None:
        measurer.time_fully(racing, stop, seconds_left())
        return []
    for racer in racing:
        measurer.race_behind(racer, leader, in_leaders_place(measurer.jobs, racer, leader))
    return racing


def _leader_and_racers(
    contenders: list[Candidate], runtime: str | None
) -> tuple[list[Candidate], list[Candidate]]:
    """The contenders swept in full (every other runtime's, and the fastest of `runtime`),
    and the others of `runtime`, which race that fastest instead."""
    racing = [c for c in contenders if c.runtime == runtime][1:]
    return [c for c in contenders if c not in racing], racing


def _leaders(swept: list[Candidate]) -> list[Candidate]:
    """The first (fastest screened) contender of each runtime: swept over every setting."""
    first: dict[str, Candidate] = {}
    for candidate in swept:
        first.setdefault(candidate.runtime, candidate)
    return [c for c in swept if c in first.values()]


def in_leaders_place(jobs: dict[str, MeasureJob], follower: Candidate, leader: Candidate) -> Any:
    """`follower`'s setting in the place of the one `leader`, of the same runtime, was
    fastest with: one runtime lists its settings in the same order (threads, hints), and
    what makes a row itself (its precision) is kept. The leader's own setting where their
    sweeps differ."""
    lead, job = jobs[leader.id], jobs[follower.id]
    best = lead.settings_from(leader.measurements.settings)
    if best in lead.settings and len(job.settings) == len(lead.settings):
        return job.settings[lead.settings.index(best)]
    return best


def follow_leader(follower: Candidate, leader: Candidate, measurer: Measurer) -> None:
    """Narrow `follower`'s sweep to its setting in the place of the one `leader` was
    fastest with, where their sweeps match."""
    job = measurer.jobs[follower.id]
    chosen = in_leaders_place(measurer.jobs, follower, leader)
    if chosen in job.settings:
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
