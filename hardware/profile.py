"""The only timing loop, and the measurement of a model in any runtime built on it."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hardware.load_guard import on_a_quiet_machine
from hardware.memory import peak_rss_mb, rss_mb
from hardware.runtimes.base import Runtime
from hardware.targets import Target


@dataclass(frozen=True)
class TimingBudget:
    """How long to measure: the loop adapts its run count to the model's speed and noise.

    Warm-up takes at least `warmup_runs` runs and `warmup_s` seconds. The timed phase aims
    at `measure_s` seconds within `min_runs` and `max_runs`; it stops early (after a quarter
    of it at least) once the median is known to `stable_error` (relative standard error),
    and goes on, up to `noisy_factor` times as long, while it is known less well than
    `noisy_error`.
    """

    warmup_runs: int = 3
    warmup_s: float = 0.2
    measure_s: float = 1.0
    min_runs: int = 10
    max_runs: int = 2000
    stable_error: float = 0.005
    noisy_error: float = 0.02
    noisy_factor: float = 3.0


# A spread (inter-quartile range over the median) wider than this makes a figure too noisy
# to rank against others that differ by less.
NOISY_SPREAD = 0.15


@dataclass(frozen=True)
class Timing:
    """Latency figures of one timed loop, in milliseconds, what they rest on, and why the
    loop stopped ('stable', 'budget', 'noisy', 'max_runs' or 'interleaved')."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    iqr_ms: float
    stopped: str = "budget"

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Timing:
        """Inverse of asdict, derived figures dropped."""
        return cls(**{k: v for k, v in data.items() if k not in ("spread", "median_error")})

    @property
    def spread(self) -> float:
        """Inter-quartile range over the median: a unit-free measure of noise."""
        return self.iqr_ms / self.p50_ms if self.p50_ms > 0 else 0.0

    @property
    def median_error(self) -> float:
        """Relative standard error of the median (see median_error)."""
        return median_error(self.iqr_ms, self.p50_ms, self.runs)


def median_error(iqr: float, median: float, runs: int) -> float:
    """Relative standard error of a sample median: sigma estimated from the inter-quartile
    range (robust to the outliers timing has), times the median's 1.2533 / sqrt(n)."""
    if median <= 0 or runs <= 0:
        return float("inf")
    return 1.2533 * (iqr / 1.349) / math.sqrt(runs) / median


def _percentile(sorted_ms: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(sorted_ms), q))


def _no_sync() -> None:
    return None


def _warm_up(run: Callable[[], object], sync: Callable[[], None], budget: TimingBudget) -> float:
    """Run until warm (`budget`'s warm-up); the seconds one run took, on average."""
    warm_start = time.perf_counter_ns()
    warm_runs = 0
    while warm_runs < budget.warmup_runs or (
        time.perf_counter_ns() - warm_start < budget.warmup_s * 1e9
    ):
        run()
        sync()
        warm_runs += 1
    return (time.perf_counter_ns() - warm_start) / 1e9 / warm_runs


def _timed_block(run: Callable[[], object], sync: Callable[[], None], count: int) -> list[float]:
    """The one timed region: `count` runs, each timed alone with a monotonic nanosecond
    clock, `sync` inside it so that a run ends when the device is done. Milliseconds."""
    samples_ms = []
    for _ in range(count):
        start = time.perf_counter_ns()
        run()
        sync()
        samples_ms.append((time.perf_counter_ns() - start) / 1e6)
    return samples_ms


def summarize(samples_ms: list[float], stopped: str) -> Timing:
    """Percentiles and spread of timed runs."""
    ordered = sorted(samples_ms)
    return Timing(
        runs=len(ordered),
        p50_ms=_percentile(ordered, 50),
        p90_ms=_percentile(ordered, 90),
        p99_ms=_percentile(ordered, 99),
        mean_ms=statistics.fmean(ordered),
        std_ms=statistics.pstdev(ordered),
        min_ms=ordered[0],
        iqr_ms=_percentile(ordered, 75) - _percentile(ordered, 25),
        stopped=stopped,
    )


def _stop_reason(samples_ms: list[float], elapsed_s: float, budget: TimingBudget) -> str | None:
    """Why the timed phase may stop now, or None to go on."""
    if len(samples_ms) >= budget.max_runs:
        return "max_runs"
    if len(samples_ms) < budget.min_runs:
        return None
    timing = summarize(samples_ms, "")
    error = timing.median_error
    if error <= budget.stable_error and elapsed_s >= budget.measure_s / 4:
        return "stable"
    if elapsed_s >= budget.measure_s * budget.noisy_factor:
        return "noisy" if error > budget.noisy_error else "budget"
    if elapsed_s >= budget.measure_s and error <= budget.noisy_error:
        return "budget"
    return None


def time_runs(
    run: Callable[[], object],
    budget: TimingBudget = TimingBudget(),
    synchronize: Callable[[], None] | None = None,
) -> Timing:
    """Warm up, then time `run` in blocks until the median is known well enough or the
    budget says stop (see TimingBudget).

    `synchronize` is called after each run inside the timed region (device targets), so
    a run is counted as finished only when the device is.
    """
    sync = synchronize or _no_sync
    per_run_s = _warm_up(run, sync, budget)
    # Four checks per budget: often enough to stop early, rarely enough to cost nothing.
    block = max(budget.min_runs, int(budget.measure_s / 4 / per_run_s) if per_run_s > 0 else 0)
    samples_ms: list[float] = []
    start = time.perf_counter_ns()
    while True:
        count = min(block, budget.max_runs - len(samples_ms))
        samples_ms += _timed_block(run, sync, count)
        elapsed_s = (time.perf_counter_ns() - start) / 1e9
        if stopped := _stop_reason(samples_ms, elapsed_s, budget):
            return summarize(samples_ms, stopped)


@dataclass(frozen=True)
class InterleavedTiming:
    """One contender's figures from an interleaved comparison: all its runs, and the median
    of each round, so that two contenders can be compared round by round."""

    timing: Timing
    round_medians_ms: list[float]


def time_interleaved(
    runs: list[tuple[Callable[[], object], Callable[[], None] | None]],
    budget: TimingBudget = TimingBudget(),
    rounds: int = 9,
) -> list[InterleavedTiming]:
    """Time several runs against each other: warm each up, then `rounds` rounds in which
    every run times a block of about `budget.measure_s / rounds` seconds, in an order
    rotated each round. A slow spell of the machine then lands on every contender alike,
    where timing one after the other would hand it to whichever ran at the time."""
    syncs = [sync or _no_sync for _, sync in runs]
    per_run_s = [_warm_up(run, sync, budget) for (run, _), sync in zip(runs, syncs, strict=True)]
    cap = max(3, budget.max_runs // rounds)
    blocks = [min(cap, max(3, int(budget.measure_s / rounds / max(s, 1e-9)))) for s in per_run_s]
    samples: list[list[float]] = [[] for _ in runs]
    medians: list[list[float]] = [[] for _ in runs]
    for round_index in range(rounds):
        shift = round_index % len(runs)
        for index in [*range(shift, len(runs)), *range(shift)]:
            # Two runs first, not counted: the previous contender's threads may still spin,
            # and its data fills the caches this one needs.
            _timed_block(runs[index][0], syncs[index], 2)
            block = _timed_block(runs[index][0], syncs[index], blocks[index])
            samples[index] += block
            medians[index].append(statistics.median(block))
    return [
        InterleavedTiming(summarize(s, "interleaved"), m)
        for s, m in zip(samples, medians, strict=True)
    ]


@dataclass(frozen=True)
class Measurements:
    """Everything measured about one model on one target."""

    latency: Timing
    throughput_batch: int
    throughput_timing: Timing
    throughput_per_s: float
    startup_ms: float
    size_mb: float
    peak_memory_mb: float
    session_memory_mb: float
    providers: list[str]
    settings: dict[str, object]
    # Every setting tried in the sweep this figure won, fastest or not.
    thread_sweep: list[dict[str, object]] = field(default_factory=list)
    # The logical CPUs the measuring process was pinned to, where the OS allowed.
    pinned_cpus: list[int] | None = None
    # The cluster node that took these figures; empty for this machine.
    node: str = ""
    # The share of the cores other processes used while the figures were timed (the most
    # of the latency and throughput loops; None where the OS does not say), and how many
    # times a figure was re-taken because others were busy (hardware.load_guard).
    others_cpu_share: float | None = None
    retakes: int = 0
    # A generative model's own figures (hardware.generation.GenerationMeasurements, as
    # plain data): time to first token by prompt length, decode, concurrent streams. Its
    # `latency` is then the time per output token and its throughput tokens/s.
    generation: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain data for reports, with the derived spread figures."""
        data = asdict(self)
        data["latency"]["spread"] = self.latency.spread
        data["throughput_timing"]["spread"] = self.throughput_timing.spread
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Measurements:
        """Inverse of to_dict: the figures as stored beside a variant, read back."""
        data = dict(data)
        for key in ("latency", "throughput_timing"):
            data[key] = Timing.from_dict(data[key])
        return cls(**data)


def fastest_of_sweep(sweep: list[Measurements]) -> Measurements:
    """The fastest (batch-1 median) of measurements taken under different settings, with
    every setting's result in its `thread_sweep` (its throughput where it was taken at the
    fastest's batch). Memory figures come from the first, which a fresh process measured
    before any other session ran."""
    best = min(sweep, key=lambda m: m.latency.p50_ms)
    same_batch = best.throughput_batch
    return replace(
        best,
        peak_memory_mb=sweep[0].peak_memory_mb,
        session_memory_mb=sweep[0].session_memory_mb,
        thread_sweep=[
            {
                "settings": m.settings,
                "p50_ms": m.latency.p50_ms,
                "spread": m.latency.spread,
                "throughput_per_s": (
                    m.throughput_per_s if m.throughput_batch == same_batch else None
                ),
            }
            for m in sweep
        ],
    )


def measure_model(
    runtime: Runtime,
    artifact: object,
    target: Target,
    feeds: dict[str, np.ndarray],
    batch_feeds: dict[str, np.ndarray],
    settings: object,
    budget: TimingBudget = TimingBudget(),
    size_mb: float = 0.0,
    time_batch: Callable[[Timing], bool] = lambda latency: True,
) -> Measurements:
    """Open `artifact` with `runtime` under `settings` and measure it: start-up (opening it
    and binding both batches, which copies inputs to the device and has a compiled model
    build its kernels), batch-1 latency with `feeds`, throughput with `batch_feeds` unless
    `time_batch` of that latency says no (then at the latency batch), and memory; `size_mb`
    is what the artifact weighs, as the caller knows it.

    Memory figures are only meaningful in a fresh process (see optimize.isolation).
    """
    rss_before = rss_mb()
    start = time.perf_counter_ns()
    model = runtime.open(artifact, target, settings)
    run, sync = model.bind(feeds)
    run_batch, sync_batch = model.bind_throughput(batch_feeds)
    startup_ms = (time.perf_counter_ns() - start) / 1e6

    latency, latency_share, retakes = on_a_quiet_machine(lambda: time_runs(run, budget, sync))
    rows = int(next(iter(feeds.values())).shape[0])
    batch = int(next(iter(batch_feeds.values())).shape[0])
    # A throughput batch no larger than the latency batch is the latency loop again.
    if batch <= rows or not time_batch(latency):
        batch, batch_timing, batch_share, batch_retakes = rows, latency, latency_share, 0
    else:
        batch_timing, batch_share, batch_retakes = on_a_quiet_machine(
            lambda: time_runs(run_batch, budget, sync_batch)
        )
    shares = [s for s in (latency_share, batch_share) if s is not None]
    return Measurements(
        latency=latency,
        throughput_batch=batch,
        throughput_timing=batch_timing,
        throughput_per_s=batch / (batch_timing.p50_ms / 1e3),
        startup_ms=startup_ms,
        size_mb=size_mb,
        peak_memory_mb=peak_rss_mb(),
        session_memory_mb=max(0.0, rss_mb() - rss_before),
        providers=model.providers,
        settings=model.settings_dict(),
        others_cpu_share=max(shares) if shares else None,
        retakes=retakes + batch_retakes,
    )
