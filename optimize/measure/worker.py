"""The one measuring worker: any candidate on any runtime, through the runtime contract.
Speed, size and memory under each setting, the fastest kept, and its outputs' fidelity;
or where its time goes. These run in child processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.affinity import pin_measuring_process
from hardware.measuring import measure_on
from hardware.profile import Measurements, Timing, fastest_of_sweep
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.generative import GenerativeRuntime
from hardware.runtimes.registry import runtime
from optimize.data.inputs import in_batches, rows
from optimize.measure.artifacts import ModelFile, TorchSource
from optimize.measure.workload import Workload, fidelity_over
from optimize.records.fidelity import Fidelity

Artifact = ModelFile | TorchSource

# Screening times each candidate briefly under one thread setting: a candidate more than
# this much slower than the fastest, beyond both spreads, cannot win; it is neither judged
# (optimize.measure.judging) nor timed further (optimize.choose.screening). Within one
# candidate's sweep, a setting that much slower is not the one its figures report.
SCREEN_MARGIN = 0.10


@dataclass
class MeasureJob:
    """Everything a child process needs to measure one candidate: the runtime, the artifact
    it opens, the settings to sweep (one per thread count), and the workload; `fidelity`
    False times it only (its outputs were judged when it was screened)."""

    runtime: RuntimeName
    artifact: Artifact
    settings: tuple[Any, ...]
    workload: Workload
    fidelity: bool = True
    # Outputs are judged only when the timed median is within noise of this bar: the
    # median of a candidate already within the limits, and the margin beyond it.
    judge_near: tuple[float, float] | None = None
    # Judging stops once the mean cosine can no longer reach this (see fidelity_over).
    min_cosine: float | None = None

    def screening(
        self,
        workload: Workload,
        judge_near: tuple[float, float] | None = None,
        min_cosine: float | None = None,
    ) -> MeasureJob:
        """The short look at the same candidate: its first setting, `workload`'s budget,
        its outputs judged unless it screens clearly slower than `judge_near`, until they
        cannot reach `min_cosine`."""
        return dataclasses.replace(
            self,
            settings=self.settings[:1],
            workload=workload,
            fidelity=True,
            judge_near=judge_near,
            min_cosine=min_cosine,
        )

    def settings_from(self, plain: dict[str, object]) -> Any:
        """The runtime's settings rebuilt from their plain form (a measurement's)."""
        return type(self.settings[0])(**plain)


def measure_candidate(job: MeasureJob) -> tuple[Measurements, Fidelity | None]:
    """Open the job's artifact with its runtime under each setting and measure it, keep
    the fastest at the latency batch, and compare its outputs with the reference when the
    job asks and the candidate could still win (see beyond_bar).

    Peak-memory figures are honest in a fresh process (optimize.isolation.run_isolated):
    they come from the first model it opens, before any other could inflate them.
    """
    workload = job.workload
    pinned = pin_measuring_process()
    found = runtime(job.runtime)
    loaded = job.artifact.load()
    single = loaded.feeds(rows(workload.timing_feeds, workload.latency_batch))
    batch = loaded.feeds(rows(workload.timing_feeds, workload.throughput_batch))
    sweep: list[Measurements] = []
    for setting in found.sweep(loaded.model, job.settings):
        sweep.append(
            measure_on(
                found,
                loaded.model,
                workload.target,
                single,
                batch,
                setting,
                workload.budget,
                loaded.size_mb,
                batch_worth_timing(sweep),
            )
        )
    best = dataclasses.replace(fastest_of_sweep(sweep), pinned_cpus=pinned)
    beyond = not isinstance(found, GenerativeRuntime) and beyond_bar(best, job.judge_near)
    if not job.fidelity or beyond:
        return best, None
    setting = job.settings_from(best.settings)
    opened = found.open(loaded.model, workload.target, setting)
    batch = found.judging_batch(setting, workload.eval_batch, workload.latency_batch)
    run = in_batches(lambda feeds: opened.run(loaded.feeds(feeds)), batch)
    return best, fidelity_over(run, workload, job.min_cosine)


def beyond_bar(measured: Measurements, near: tuple[float, float] | None) -> bool:
    """Whether `measured` is slower than the bar `near` (a median and a margin) beyond
    noise, its own spread included: it cannot be picked, whatever its outputs (see
    optimize.measure.judging)."""
    return near is not None and _beyond(measured.latency, *near)


def _beyond(latency: Timing, median_ms: float, margin: float) -> bool:
    return latency.p50_ms > median_ms * (1 + margin + latency.spread)


def batch_worth_timing(sweep: list[Measurements]) -> Callable[[Timing], bool]:
    """Whether a setting's throughput batch is worth timing, given its batch-1 latency: not
    when that is slower beyond noise than the fastest setting's so far, which it then
    cannot displace as the one reported (on all-MiniLM-L6-v2 in OpenVINO, one thread's
    batch of 32 took 2.6 s to time)."""
    if not sweep:
        return lambda latency: True
    fastest = min((m.latency for m in sweep), key=lambda timing: timing.p50_ms)
    return lambda latency: not _beyond(latency, fastest.p50_ms, SCREEN_MARGIN + fastest.spread)


def profile_candidate(job: MeasureJob) -> list[dict[str, object]] | None:
    """Where the candidate spends its time at the latency batch under the job's first
    setting; None where its runtime has no profiler."""
    found = runtime(job.runtime)
    loaded = job.artifact.load()
    feeds = loaded.feeds(rows(job.workload.timing_feeds, job.workload.latency_batch))
    return found.operator_profile(loaded.model, job.workload.target, feeds, job.settings[0])
