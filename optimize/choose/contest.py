"""The head-to-head: the fastest variants within tolerance timed against each other,
interleaved in one process, so that the pick rests on a comparison under the same machine
conditions rather than on figures taken minutes apart."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.affinity import pin_measuring_process
from hardware.load_guard import LoadWatch
from hardware.profile import time_interleaved
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.registry import runtime
from optimize.build.variant import Candidate, TimingKind
from optimize.choose.ranking import within_noise_of
from optimize.data.inputs import rows
from optimize.execution import Executor, LocalExecutor, Unit
from optimize.isolation import IsolatedRunError
from optimize.measure.measurer import Measurer
from optimize.measure.worker import MeasureJob
from optimize.measure.workload import Workload

# Answers a stored result of the kind and name, or the computed one (see Measurer.reused).
Reuse = Callable[[str, str, Callable[[], Any]], Any]

MAX_CONTENDERS = 6
ROUNDS = 9
# The fastest is clearly faster than another when it wins at least this many of the
# rounds: a one-sided sign test, p = 10/512 ≈ 0.02 over nine rounds.
CLEAR_WINS = 8

CONTEST_RULE = (
    "the fastest within tolerance, ranked head to head: the fastest variants are timed "
    f"against each other in {ROUNDS} interleaved rounds; a variant the fastest does not beat "
    f"in at least {CLEAR_WINS} of them is a tie within noise, and among ties the higher "
    "quality, then the smaller file, wins"
)


@dataclass
class ContestJob:
    """What the child process needs: each contender's job under the one setting it runs
    with, and the inputs."""

    contenders: list[MeasureJob]
    workload: Workload
    rounds: int


@dataclass
class Contest:
    """The outcome: each contender's interleaved figures, the fastest, and the winner."""

    rounds: int
    entries: list[dict[str, Any]]
    fastest: str
    winner: str
    rule: str = CONTEST_RULE

    @property
    def others_cpu_share(self) -> float | None:
        """The share of the cores other processes used during the race (None: unknown)."""
        return self.entries[0].get("others_cpu_share") if self.entries else None

    def entry(self, variant_id: str) -> dict[str, Any] | None:
        """The figures of the contender with this id, or None."""
        return next((e for e in self.entries if e["id"] == variant_id), None)


# The runtimes whose candidates race head to head: each opens a file in the racing process
# and times a bound call. PyTorch rows are left out: each compiles for seconds.
RACING_RUNTIMES = (RuntimeName.ONNXRUNTIME, RuntimeName.OPENVINO)


def race_runtime(candidates: list[Candidate]) -> str | None:
    """The one runtime whose contenders race head to head (one runtime's sessions, whose
    thread pools do not contend with another's): the runtime of any set to race, else of
    the fastest of `candidates` in RACING_RUNTIMES; None when there is none."""
    racing = [c for c in candidates if c.runtime in RACING_RUNTIMES]
    set_to_race = [c for c in racing if c.timing == TimingKind.RACE]
    first = set_to_race or sorted(racing, key=lambda c: c.p50_ms)
    return first[0].runtime if first else None


def contenders(variants: list[Candidate]) -> list[Candidate]:
    """Candidates within tolerance of the racing runtime, timed in full or set to race,
    that the fastest does not clearly dominate (see optimize.choose.ranking): their
    measurements, taken apart, cannot rank them. Fastest first."""
    timed = [v for v in variants if v.within_tolerance and v.timing != TimingKind.SCREEN]
    runtime = race_runtime(timed)
    ok = sorted((v for v in timed if v.runtime == runtime), key=lambda v: v.p50_ms)
    if not ok:
        return []
    # One set to race was within noise of the fastest's screening: it races whatever the
    # fastest's full timing then gave, and is not the one the others are held to.
    timed = [v for v in ok if v.timing != TimingKind.RACE]
    fastest = timed[0] if timed else ok[0]
    close = [v for v in ok if v.timing == TimingKind.RACE or within_noise_of(fastest, v)]
    field = close[:MAX_CONTENDERS]
    return _fitting_in_memory(field)


def _fitting_in_memory(field: list[Candidate]) -> list[Candidate]:
    """The leading contenders whose sessions, open at once, fit in half the free memory
    (a session takes about three times its file: weights, prepacked copies, arenas)."""
    import psutil

    room_mb = psutil.virtual_memory().available / 2**20 / 2
    kept, used = [], 0.0
    for variant in field:
        used += 3 * variant.size_mb
        if used > room_mb:
            break
        kept.append(variant)
    return kept


def race(job: ContestJob) -> list[dict[str, Any]]:
    """Child-process side: the interleaved figures of every contender, as plain data."""
    pin_measuring_process()
    workload = job.workload
    feeds = rows(workload.timing_feeds, workload.latency_batch)
    # All contenders are open at once: memory figures from this process mean nothing.
    bound = []
    for contender in job.contenders:
        loaded = contender.artifact.load()
        opened = runtime(contender.runtime).open(
            loaded.model, workload.target, contender.settings[0]
        )
        bound.append(opened.bind(loaded.feeds(feeds)))
    with LoadWatch() as watch:
        timings = time_interleaved(bound, workload.budget, job.rounds)
    return [
        {
            "p50_ms": t.timing.p50_ms,
            "spread": t.timing.spread,
            "runs": t.timing.runs,
            "round_medians_ms": t.round_medians_ms,
            "others_cpu_share": watch.share,
        }
        for t in timings
    ]


def rounds_won(a: list[float], b: list[float]) -> int:
    """Rounds in which the first contender's median was lower than the second's."""
    return sum(x < y for x, y in zip(a, b, strict=True))


def decide(variants: list[Candidate], figures: list[dict[str, Any]], rounds: int) -> Contest:
    """Rank contenders by their interleaved medians; ties within noise go to the higher
    quality, then the smaller file."""
    by_speed = sorted(zip(variants, figures, strict=True), key=lambda vf: vf[1]["p50_ms"])
    fastest, fastest_figures = by_speed[0]
    entries = []
    for variant, f in by_speed:
        beaten = rounds_won(fastest_figures["round_medians_ms"], f["round_medians_ms"])
        is_tie = variant is fastest or beaten < CLEAR_WINS
        entries.append(
            {
                "id": variant.id,
                "label": variant.label,
                **f,
                "slower_by": f["p50_ms"] / fastest_figures["p50_ms"] - 1,
                "rounds_beaten_by_fastest": 0 if variant is fastest else beaten,
                "tie": is_tie,
                "quality": variant.quality,
                "size_mb": variant.size_mb,
            }
        )
    # The tied entries, fastest first: max() keeps the first of equals.
    best = max((e for e in entries if e["tie"]), key=lambda e: (e["quality"], -e["size_mb"]))
    return Contest(rounds, entries, fastest.id, best["id"])


def run_contest(
    variants: list[Candidate],
    jobs: dict[str, MeasureJob],
    workload: Workload,
    timeout_s: float,
    rounds: int = ROUNDS,
    reuse: Reuse = lambda kind, name, compute: compute(),
    executor: Executor | None = None,
    race_settings: dict[str, Any] | None = None,
) -> Contest | None:
    """The head-to-head of the contenders among `variants`, each run as its job in `jobs`
    says under the setting it was fastest with (or, for one that was not swept, its
    setting in `race_settings`), or None when fewer than two are close enough to need
    one; `reuse` may answer with figures stored for the same contenders. All contenders
    race in one process on one machine of `executor`'s (this one by default). Raises
    IsolatedRunError when the child process fails."""
    field = contenders(variants)
    if len(field) < 2:
        return None
    racing, given = [], race_settings or {}
    for variant in field:
        job = jobs[variant.id]
        best = given.get(variant.id) or job.settings_from(variant.measurements.settings)
        racing.append(dataclasses.replace(job, settings=(best,)))
    plain = [[v.id, dataclasses.asdict(j.settings[0])] for v, j in zip(field, racing, strict=True)]
    name = json.dumps(plain + [rounds], default=str)
    figures = reuse(
        "contests",
        hashlib.sha256(name.encode()).hexdigest()[:16],
        lambda: (
            (executor or LocalExecutor())
            .measure(Unit(race, ContestJob(racing, workload, rounds), timeout_s, "head to head"))
            .result
        ),
    )
    return decide(field, figures, rounds)


def head_to_head(variants: list[Candidate], measurer: Measurer) -> tuple[Contest | None, list[str]]:
    """The head-to-head of the closest variants and any warning about it: when the child
    process fails, the pick rests on each variant's own measurements, and the run says so."""
    try:
        contest = run_contest(
            variants,
            measurer.jobs,
            measurer.workload,
            measurer.timeout_s,
            reuse=measurer.reused,
            executor=measurer.executor,
            race_settings=measurer.race_settings,
        )
        return contest, []
    except IsolatedRunError as exc:
        return None, [
            f"the head-to-head timing failed ({exc}): the pick rests on each "
            "variant's own measurements"
        ]
