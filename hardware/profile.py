"""The only timing loop, and the ONNX Runtime profile of one model on a target built on it."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hardware.model_files import model_size_mb
from hardware.session import SessionSettings, open_session
from hardware.targets import Target


@dataclass(frozen=True)
class TimingBudget:
    """How long to measure: the loop adapts its run count to the model's speed.

    Warm-up takes at least `warmup_runs` runs and `warmup_s` seconds; the timed phase
    aims at `measure_s` seconds, bounded by `min_runs` and `max_runs`.
    """

    warmup_runs: int = 3
    warmup_s: float = 0.2
    measure_s: float = 1.0
    min_runs: int = 10
    max_runs: int = 2000


@dataclass(frozen=True)
class Timing:
    """Latency figures of one timed loop, in milliseconds, and what they rest on."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    iqr_ms: float

    @property
    def spread(self) -> float:
        """Inter-quartile range over the median: a unit-free measure of noise."""
        return self.iqr_ms / self.p50_ms if self.p50_ms > 0 else 0.0


def _percentile(sorted_ms: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(sorted_ms), q))


def time_runs(
    run: Callable[[], object],
    budget: TimingBudget = TimingBudget(),
    synchronize: Callable[[], None] | None = None,
) -> Timing:
    """Warm up, then time `run` repeatedly with a monotonic nanosecond clock.

    `synchronize` is called after each run inside the timed region (device targets), so
    a run is counted as finished only when the device is.
    """
    sync = synchronize or (lambda: None)
    warm_start = time.perf_counter_ns()
    warm_runs = 0
    while warm_runs < budget.warmup_runs or (
        time.perf_counter_ns() - warm_start < budget.warmup_s * 1e9
    ):
        run()
        sync()
        warm_runs += 1
    per_run_s = (time.perf_counter_ns() - warm_start) / 1e9 / warm_runs
    planned = int(budget.measure_s / per_run_s) if per_run_s > 0 else budget.max_runs
    runs = max(budget.min_runs, min(budget.max_runs, planned))
    samples_ms = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run()
        sync()
        samples_ms.append((time.perf_counter_ns() - start) / 1e6)
    samples_ms.sort()
    return Timing(
        runs=runs,
        p50_ms=_percentile(samples_ms, 50),
        p90_ms=_percentile(samples_ms, 90),
        p99_ms=_percentile(samples_ms, 99),
        mean_ms=statistics.fmean(samples_ms),
        std_ms=statistics.pstdev(samples_ms),
        min_ms=samples_ms[0],
        iqr_ms=_percentile(samples_ms, 75) - _percentile(samples_ms, 25),
    )


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

    def to_dict(self) -> dict[str, object]:
        """Plain data for reports, with the derived spread figures."""
        data = asdict(self)
        data["latency"]["spread"] = self.latency.spread
        data["throughput_timing"]["spread"] = self.throughput_timing.spread
        return data


def fastest_of_sweep(sweep: list[Measurements]) -> tuple[Measurements, dict[str, object]]:
    """The fastest (batch-1 median) of measurements taken under different settings, and its
    figures as plain data with every setting's result under 'thread_sweep'. Memory figures
    come from the first, which a fresh process measured before any other session ran."""
    best = min(sweep, key=lambda m: m.latency.p50_ms)
    data = best.to_dict()
    data["peak_memory_mb"] = sweep[0].peak_memory_mb
    data["session_memory_mb"] = sweep[0].session_memory_mb
    data["thread_sweep"] = [
        {
            "settings": m.settings,
            "p50_ms": m.latency.p50_ms,
            "spread": m.latency.spread,
            "throughput_per_s": m.throughput_per_s,
        }
        for m in sweep
    ]
    return best, data


def rss_mb() -> float:
    """Resident memory of this process, MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB."""
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bound_runner(session, feeds: dict[str, np.ndarray], device: str, device_id: int = 0):
    """A run function with inputs and outputs bound on `device` ('cuda' or 'cpu'), and
    the synchronizer that waits for its outputs.

    Binding keeps host-device copies out of the timed region, as in serving where
    inputs already live on the device.
    """
    import onnxruntime as ort

    binding = session.io_binding()
    for name, array in feeds.items():
        binding.bind_ortvalue_input(
            name, ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
        )
    for output in session.get_outputs():
        binding.bind_output(output.name, device, device_id)

    def run() -> None:
        session.run_with_iobinding(binding)

    run.binding = binding  # callers read outputs back with binding.copy_outputs_to_cpu()
    return run, binding.synchronize_outputs


def _runner(session, feeds: dict[str, np.ndarray], target: Target):
    names = [i.name for i in session.get_inputs()]
    bound = {n: feeds[n] for n in names}
    if target.is_gpu:
        return bound_runner(session, bound, "cuda", target.device_id)
    return (lambda: session.run(None, bound)), None


def profile_onnx(
    model_path: Path,
    target: Target,
    feeds: dict[str, np.ndarray],
    batch_feeds: dict[str, np.ndarray],
    settings: SessionSettings = SessionSettings(),
    budget: TimingBudget = TimingBudget(),
) -> Measurements:
    """Open a session for `model_path` and measure it: start-up, batch-1 latency with
    `feeds`, throughput with `batch_feeds`, size and memory.

    Memory figures are only meaningful in a fresh process (see optimize.isolation).
    """
    rss_before = rss_mb()
    start = time.perf_counter_ns()
    session = open_session(model_path, target, settings)
    startup_ms = (time.perf_counter_ns() - start) / 1e6

    run, sync = _runner(session, feeds, target)
    latency = time_runs(run, budget, sync)
    batch = int(next(iter(batch_feeds.values())).shape[0])
    run_batch, sync_batch = _runner(session, batch_feeds, target)
    batch_timing = time_runs(run_batch, budget, sync_batch)

    return Measurements(
        latency=latency,
        throughput_batch=batch,
        throughput_timing=batch_timing,
        throughput_per_s=batch / (batch_timing.p50_ms / 1e3),
        startup_ms=startup_ms,
        size_mb=model_size_mb(model_path),
        peak_memory_mb=peak_rss_mb(),
        session_memory_mb=max(0.0, rss_mb() - rss_before),
        providers=list(session.get_providers()),
        settings=asdict(settings),
    )
