"""Measuring the variants of one run: each in a child process under the run's workload and
thread settings, stored figures reused, and the verdict against the user's limits recorded
on the variant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.detect import HostInfo
from hardware.profile import Measurements
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.registry import runtime_taking
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.build.variant import Candidate, RuntimeRow, TimingKind, Variant
from optimize.config.limits import Limits
from optimize.config.sections import MeasureSection
from optimize.data.prepare import RunData
from optimize.execution import Executor, LocalExecutor, Placed, Unit
from optimize.isolation import IsolatedRunError
from optimize.measure.artifacts import ModelFile
from optimize.measure.cache import (
    MEASUREMENTS_FILE,
    figures_from_dict,
    load_figures,
    load_result,
    measurement_key,
    store_figures,
    store_result,
)
from optimize.measure.conditions import thread_options, unit_time_limit
from optimize.measure.judging import JudgingBar, judged_in_part
from optimize.measure.verdicts import limits_verdict, times_the_allowed_loss, tolerance_verdict
from optimize.measure.worker import Artifact, MeasureJob, beyond_bar, measure_candidate
from optimize.measure.workload import MOST_HALVINGS, Workload, halved, halvings_to_fit

SCREENING_FILE = "screening.json"


@dataclass
class Measurer:
    """Measures the candidates of one run in two steps: every candidate is screened (a
    short timing and, unless it cannot win on speed, its fidelity, in the warm worker), and
    those that could still win are timed in full (every thread setting, the whole budget,
    a fresh process). Figures are stored under a key of everything that shapes them, and
    reused when the key matches."""

    workload: Workload
    screen_workload: Workload
    thread_options: tuple[SessionSettings, ...]
    limits: Limits
    timeout_s: float
    reuse: bool
    variants_dir: Path
    # Where figures that belong to no variant folder are kept: runtime rows, head-to-heads,
    # operator profiles, torch.compile's cache.
    cache_dir: Path
    cache_key: str
    screen_key: str
    host_cores: int = 1
    cpu_flags: list[str] = field(default_factory=list)
    executor: Executor = field(default_factory=LocalExecutor)
    on_measure: Callable[[str], None] = lambda label: None
    profiles: dict[str, list[dict]] = field(default_factory=dict)
    # Each candidate's full timing: its runtime, artifact and every setting to sweep.
    jobs: dict[str, MeasureJob] = field(default_factory=dict)
    # The setting each candidate set to race another head to head runs under.
    race_settings: dict[str, Any] = field(default_factory=dict)
    bar: JudgingBar = field(default_factory=JudgingBar)
    # Stored screenings taken unjudged though nearer the bar than when stored (see settle).
    unsettled: list[Candidate] = field(default_factory=list)

    @classmethod
    def for_run(
        cls,
        measure: MeasureSection,
        limits: Limits,
        target: Target,
        host: HostInfo,
        data: RunData,
        out_dir: Path,
        executor: Executor,
    ) -> Measurer:
        """The measurer of a run under its measuring section and limits: its workloads,
        thread sweep and cache keys; `host` is the machine `executor` measures on."""
        store = data.store
        workload = Workload(
            target=target,
            eval_store=store,
            timing_feeds=store.head(max(data.latency_batch, data.throughput_batch)),
            latency_batch=data.latency_batch,
            throughput_batch=data.throughput_batch,
            eval_batch=data.eval_batch,
            budget=measure.budget(),
        )
        # Screening ranks by batch-1 latency: its throughput is batch 1's, with no loop of its own.
        screen_workload = dataclasses.replace(
            workload, budget=measure.screen_budget(), throughput_batch=data.latency_batch
        )
        threads = thread_options(target, host, measure.threads)
        if target.is_gpu:
            # TensorRT engines go in the output folder, so re-runs and serving reuse them.
            cache = str(out_dir / "trt_engines")
            threads = tuple(dataclasses.replace(s, engine_cache_dir=cache) for s in threads)
        machine = host.class_facts()
        return cls(
            workload=workload,
            screen_workload=screen_workload,
            thread_options=threads,
            limits=limits,
            timeout_s=unit_time_limit(measure.timeout_s, store.reference_s),
            reuse=measure.reuse,
            bar=JudgingBar(enabled=measure.time_in_full != "all"),
            variants_dir=out_dir / "variants",
            cache_dir=out_dir / "cache",
            cache_key=measurement_key(workload, threads, machine),
            screen_key=measurement_key(screen_workload, threads[:1], machine),
            host_cores=host.physical_cores,
            cpu_flags=host.cpu_flags,
            executor=executor,
        )

    def screen(self, variant: Variant) -> None:
        """Screen a variant on the runtime that takes what it is (an ONNX file on ONNX
        Runtime, a language model's folder on that format's runtime): time it briefly and
        judge its fidelity."""
        self.on_measure(variant.label)
        found = runtime_taking(variant.model_kind)
        settings = (
            self.thread_options
            if found.takes == "onnx"
            else tuple(found.settings(self.workload.target, self.cpu_flags, self.thread_counts))
        )
        self.measure(variant, found.name, ModelFile(variant.path), settings)

    def measure(
        self,
        candidate: Candidate,
        runtime: RuntimeName,
        artifact: Artifact,
        settings: tuple[Any, ...],
    ) -> None:
        """Screen `candidate` (`artifact` opened by `runtime`) in the warm worker under the
        first of `settings`, or take the figures stored for it under this run's
        conditions; store new ones. Every setting is kept for timing it in full."""
        job = MeasureJob(runtime, artifact, tuple(settings), self.workload, fidelity=False)
        self.jobs[candidate.id] = job
        candidate.runtime = runtime
        candidate.timing = TimingKind.SCREEN
        path = self.figures_file(candidate, SCREENING_FILE)
        stored = load_result(path, self.screen_key) if self.reuse else None
        if stored is not None and judged_in_part(stored, self.limits, self.workload.eval_store):
            stored = None
        if stored is not None and not self.bar.lets_stand(stored):
            # Left unjudged by an earlier run behind a faster candidate that this run, trying
            # the chains in the order the last one taught it, may not have screened yet.
            self.unsettled.append(candidate)
        if stored is not None:
            candidate.measurements_cached = True
            if "failed" in stored:
                candidate.fail(stored["failed"], stored.get("detail", ""))
                return
            self.record(candidate, lambda: Placed(figures_from_dict(stored)))
            return
        error = self.record(candidate, lambda: self._screened(candidate))
        if candidate.measured:
            self._keep_screening(candidate)
        elif error is not None and error.worth_remembering:
            failure = {"failed": candidate.reason, "detail": candidate.detail}
            store_result(path, self.screen_key, failure)

    def settle(self, stop: Callable[[], str | None]) -> None:
        """Judge the unsettled stored screenings (see measure) that can still win now that
        every candidate is screened; the others say why not against the final bar. None is
        judged once `stop` gives a reason."""
        for candidate in self.unsettled:
            if not candidate.measured or candidate.fidelity or candidate.outside_limits:
                continue
            if reason := stop():
                candidate.not_timed_further = f"its outputs were not judged: {reason}"
            elif beyond_bar(candidate.measurements, self.bar.near()):
                self.bar.note(candidate)
            else:
                self.on_measure(candidate.label)
                candidate.measurements_cached, candidate.not_timed_further = False, ""
                self.record(candidate, lambda c=candidate: self._screened(c))
                if candidate.measured:
                    self._keep_screening(candidate)
        self.unsettled.clear()

    def rescreen(self, candidate: Candidate) -> None:
        """Screen a screened candidate again, in a new session, and keep the faster of its
        two screenings, its outputs judged if that one comes within the bar: a screening is
        one short draw of a session's speed, which on a small model can come out a third
        slower for the same graph; interference only slows. Stored figures were kept so
        already."""
        fresh = candidate.measured and not candidate.measurements_cached
        if candidate.timing != TimingKind.SCREEN or not fresh:
            return
        self.on_measure(f"{candidate.label} again")
        try:
            placed = self._screened(candidate)
        except IsolatedRunError:
            return
        measurements, fidelity = placed.result
        if measurements.latency.p50_ms < candidate.p50_ms:
            # A faster draw still beyond the bar was not judged: a judgement kept stands.
            kept = Placed((measurements, fidelity or candidate.fidelity), placed.node)
            candidate.not_timed_further = ""
            self.record(candidate, lambda: kept)
            self._keep_screening(candidate)

    def _screened(self, c: Candidate) -> Placed:
        near, least = self.bar.near(), self.limits.min_cosine
        job = self.jobs[c.id].screening(self.screen_workload, near, least)
        unit = Unit(measure_candidate, job, self.timeout_s, f"screening {c.label}")
        return self.executor.measure(unit)

    def _keep_screening(self, c: Candidate) -> None:
        path = self.figures_file(c, SCREENING_FILE)
        store_figures(path, self.screen_key, c.measurements, c.fidelity)

    def time_fully(
        self,
        candidates: list[Candidate],
        stop: Callable[[], str | None],
        seconds_left: float | None = None,
    ) -> None:
        """Time screened candidates (fastest first) in full, each in a fresh process (honest
        memory figures), at once where the executor has several machines: a timing replaces
        the screening's, the fidelity stands. With `seconds_left`, each one's timing is
        shortened to its share of them, and figures stored shorter still are taken. All but
        the fastest are left as screened once `stop()` gives a reason, which they keep."""
        share = None if seconds_left is None else max(seconds_left, 0.0) / max(len(candidates), 1)
        todo: list[tuple[Candidate, Path, MeasureJob, str]] = []
        for candidate in candidates:
            job, halvings = self.jobs[candidate.id], 0
            if share is not None:
                halvings = halvings_to_fit(job.workload.budget, share, 2 * len(job.settings))
                job = dataclasses.replace(job, workload=halved(job.workload, halvings))
            path = self.figures_file(candidate, MEASUREMENTS_FILE)
            # Figures taken at least as long as these would be are as good; under a budget,
            # those an earlier budgeted run could afford are too: a re-run answers at once.
            longest = halvings if share is None else MOST_HALVINGS
            keys = [self._full_key(k) for k in range(longest + 1)] if self.reuse else []
            stored = next((found for key in keys if (found := load_figures(path, key))), None)
            if stored is None:
                todo.append((candidate, path, job, self._full_key(halvings)))
            else:
                self._keep_full(candidate, stored[0])
        units = [
            Unit(measure_candidate, job, self.timeout_s, f"timing {c.label}", True)
            for c, _, job, _ in todo
        ]
        # The fastest is timed whatever the budget: the pick rests on it.
        fastest = candidates[0] if candidates else None

        def cut(index: int) -> bool:
            return todo[index][0] is not fastest and stop() is not None

        outcomes = self.executor.measure_each(units, cut)
        for (candidate, path, _, key), outcome in zip(todo, outcomes, strict=True):
            if outcome is None:
                candidate.not_timed_further = stop() or ""
            elif isinstance(outcome, IsolatedRunError):
                candidate.fail(f"timing failed: {outcome}", outcome.child_traceback)
            else:
                measurements, _ = outcome.result
                measurements = dataclasses.replace(measurements, node=outcome.node)
                candidate.measurements_cached = False
                store_figures(path, key, measurements, candidate.fidelity)
                self._keep_full(candidate, measurements)

    def race_behind(self, racer: Candidate, leader: Candidate, setting: Any) -> None:
        """Set `racer` to run in the head to head under `setting` (its own in the place of
        the one `leader` was swept to), rather than be swept on its own: they are within
        noise of each other."""
        self.race_settings[racer.id] = setting
        racer.timing = TimingKind.RACE
        racer.not_timed_further = (
            f"within noise of {leader.label}: raced it head to head under its best setting "
            "instead of a sweep of its own"
        )

    def _full_key(self, halvings: int) -> str:
        """The key of full figures taken with the timing halved `halvings` times."""
        return self.cache_key if halvings == 0 else f"{self.cache_key}/halved{halvings}"

    def _keep_full(self, candidate: Candidate, measurements: Measurements) -> None:
        fidelity = candidate.fidelity
        candidate.timing = TimingKind.FULL
        self.record(candidate, lambda: Placed((measurements, fidelity), measurements.node))

    def figures_file(self, candidate: Candidate, name: str) -> Path:
        """Where the candidate's figures called `name` are kept: in a variant's own
        folder; under the cache folder for a runtime row, and for a user's ONNX source,
        whose id is its content's hash."""
        if isinstance(candidate, RuntimeRow):
            return self.cache_dir / "rows" / candidate.id / name
        folder = candidate.path.parent
        if folder.parent == self.variants_dir:
            return folder / name
        return self.cache_dir / "source_figures" / candidate.id / name

    def reused(self, kind: str, name: str, compute: Callable[[], Any]) -> Any:
        """The result stored as `kind`/`name` under this run's conditions, or `compute()`'s,
        stored for the next run (plain JSON data)."""
        path = self.cache_dir / kind / f"{name}.json"
        stored = load_result(path, self.cache_key) if self.reuse else None
        if stored is not None:
            return stored
        result = compute()
        store_result(path, self.cache_key, result)
        return result

    def record(
        self, candidate: Candidate, measure: Callable[[], Placed]
    ) -> IsolatedRunError | None:
        """Keep the figures `measure` returns on `candidate`, with the node that took them
        and their verdict against the limits, or mark it failed with the reason and return
        the failure."""
        try:
            placed = measure()
        except IsolatedRunError as exc:
            candidate.fail(f"measuring failed: {exc}", exc.child_traceback)
            return exc
        measurements, fidelity = placed.result
        measurements = dataclasses.replace(measurements, node=placed.node or measurements.node)
        samples = self.workload.eval_store.samples
        judged = fidelity and tolerance_verdict(fidelity, self.limits, samples)
        verdict = judged or limits_verdict(measurements, self.limits)
        candidate.record(measurements, fidelity, verdict)
        candidate.times_allowed_loss = fidelity and times_the_allowed_loss(fidelity, self.limits)
        self.bar.note(candidate)
        return None

    def run_unit(self, fn: Callable[[Any], Any], arg: Any, what: str) -> Any:
        """`fn(arg)` on the measuring hardware, in the warm worker, within the unit time
        limit; raises IsolatedRunError when it fails."""
        return self.executor.measure(Unit(fn, arg, self.timeout_s, what)).result

    @property
    def thread_counts(self) -> tuple[int, ...]:
        """The intra-op thread counts ONNX Runtime is measured with, for PyTorch as well."""
        counts = [s.intra_op_threads for s in self.thread_options if s.intra_op_threads > 0]
        return tuple(dict.fromkeys(counts)) or (self.host_cores,)
