"""PyTorch runtime rows: the source model run by PyTorch itself (eager and compiled, in
the precisions the target runs fast), measured beside the ONNX variants."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.affinity import pin_measuring_process
from hardware.profile import Measurements, fastest_of_sweep
from hardware.runtimes.pt2e import CALIBRATION_BATCHES, quantize_for_inductor
from hardware.targets import Target
from hardware.torch_runtime import (
    TorchSettings,
    candidates,
    profile_torch,
    torch_operator_profile,
    torch_runner,
    unsupported,
)
from optimize.build.variant import Candidate, RuntimeRow, Status
from optimize.config.recipe import Recipe
from optimize.data.inputs import rows
from optimize.measure.measurer import Measurer, settings_digest
from optimize.measure.workers import Workload, fidelity_over
from optimize.records.fidelity import Fidelity
from optimize.source.load import Source, load_source
from passes.preprocess_spec import PreprocessSpec, apply_numpy

Progress = Callable[[str, int, int], None]

# The most torch.compile is taken to gain over eager. The largest gain in
# benchmarks/results/suite.md is 2.4× (compiled in bfloat16 autocast, MiniLM); 3× leaves a
# quarter more. Compiling a transformer takes tens of seconds on a small CPU.
COMPILE_CATCH_UP = 3.0


@dataclass
class TorchJob:
    """Everything a child process needs to load the source and measure one PyTorch row."""

    source_path: Path
    input_flags: list[str] | None
    trust_pickle: bool
    model_code: Path | None
    task: str | None
    thread_counts: tuple[int, ...]
    settings: TorchSettings
    workload: Workload
    # Raw inputs go through its NumPy reference first: PyTorch takes the model's own inputs.
    preprocess: PreprocessSpec | None = None
    fidelity: bool = True
    # torch.compile's cache: kept in the output folder, so a re-run does not compile again.
    compile_cache: Path | None = None
    # The run's calibration inputs (raw, as the source takes them before preprocessing):
    # for an int8 row only.
    calibration: dict[str, np.ndarray] | None = None


@dataclass
class TorchRuns:
    """The PyTorch rows of one run: the source run by PyTorch itself under each setting,
    in a child process that loads the source again."""

    source: Source
    recipe: Recipe
    # The run's measurer: its workload, thread counts, time limit and verdicts.
    measurer: Measurer
    preprocess: PreprocessSpec | None = None
    # What an int8 row calibrates on: the run's calibration inputs.
    calibration: dict[str, np.ndarray] | None = None

    def job(self, settings: TorchSettings, full: bool = True) -> TorchJob:
        """What a child process needs to load the source and run it under `settings`: for
        full timing, or for screening (one thread count, a short budget, outputs judged)."""
        counts = self.measurer.thread_counts
        return TorchJob(
            source_path=self.source.path,
            input_flags=self.recipe.input_flags,
            trust_pickle=self.recipe.trust_pickle,
            model_code=self.recipe.model_code,
            task=self.recipe.task,
            thread_counts=counts if full else counts[:1],
            settings=settings,
            workload=self.measurer.workload_for(full),
            preprocess=self.preprocess,
            fidelity=not full,
            compile_cache=compile_cache_dir(self.measurer.cache_dir),
            calibration=self.calibration if settings.int8 else None,
        )

    def measure_rows(
        self,
        target: Target,
        cpu_flags: list[str],
        root_id: str,
        progress: Progress,
        fastest: Candidate | None = None,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> list[RuntimeRow]:
        """Every PyTorch row for this source and target, screened, or skipped with why.
        Eager goes first: compiling costs seconds, and is skipped when eager is too far
        behind `fastest` (the fastest candidate within the limits) for it to catch up. No
        row starts once `should_stop` gives a reason."""
        rows = torch_rows(self.source, target, cpu_flags, root_id)
        for row in rows:
            reason = should_stop() or _hopeless(row, rows[0], fastest)
            if row.status == Status.BUILT and reason:
                row.status, row.reason = Status.SKIPPED, reason
            if row.status == Status.BUILT:
                progress(f"screening {row.label}", 0, 0)
                settings = TorchSettings(**row.runtime_settings)
                self.measurer.screen_in_child(
                    row, lambda full, s=settings: (measure_torch, self.job(s, full))
                )
        return rows

    def profile(self, row: RuntimeRow) -> list[dict]:
        """Where a PyTorch row spends its time, under the settings it was fastest with;
        empty when profiling fails (a diagnosis: the figures stand without it)."""
        settings = TorchSettings(**row.measurements.settings)
        name = f"{row.id}-{settings_digest(settings)}"
        return self.measurer.profile_in_child(name, profile_torch_operators, self.job(settings))


def compile_cache_dir(cache_dir: Path) -> Path | None:
    """Where torch.compile keeps what it compiled: in the output folder's cache, so a re-run
    does not compile again; None (PyTorch's own cache) when that path holds characters the
    C++ compiler's command line would split on."""
    folder = cache_dir.resolve() / "torch_compile"
    return folder if re.fullmatch(r"[\w./+-]+", str(folder)) else None


def _hopeless(row: RuntimeRow, eager: RuntimeRow, fastest: Candidate | None) -> str | None:
    """Why compiling the row is not worth its seconds, or None."""
    if row is eager or not eager.within_tolerance or fastest is None:
        return None
    behind = eager.p50_ms / fastest.p50_ms
    if behind < COMPILE_CATCH_UP:
        return None
    return (
        f"not compiled: torch eager screened at {behind:.1f}× the latency of {fastest.label}, "
        f"and compiling gains well under {COMPILE_CATCH_UP:g}× over eager"
    )


def torch_rows(
    source: Source, target: Target, cpu_flags: list[str], root_id: str
) -> list[RuntimeRow]:
    """The PyTorch rows worth measuring for this source and target, with skipped ones and
    their reasons. ONNX sources have no PyTorch model and get none."""
    if source.model_kind != "torch":
        return []
    rows = []
    for settings in candidates(target):
        key = json.dumps([root_id, "torch", dataclasses.asdict(settings)], sort_keys=True)
        row = RuntimeRow(
            hashlib.sha256(key.encode()).hexdigest()[:16],
            root_id,
            settings.label(),
            dataclasses.asdict(settings),
            runtime="torch",
        )
        if reason := unsupported(settings, target, cpu_flags):
            row.status, row.reason = Status.SKIPPED, reason
        elif settings.mode == "compile" and source.form == "torchscript":
            row.status = Status.SKIPPED
            row.reason = "torch.compile does not take a TorchScript module"
        rows.append(row)
    return rows


def measure_torch(job: TorchJob) -> tuple[Measurements, Fidelity | None]:
    """Load the source in this (child) process, profile PyTorch under each thread count,
    keep the fastest, and compare its outputs with the reference when the job asks."""
    if job.compile_cache is not None:
        # Read by inductor when it first compiles, even with torch already imported.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(job.compile_cache)
    source, model = _load_model(job)
    names = [s.name for s in source.inputs]
    workload = job.workload
    pinned = pin_measuring_process()

    def model_feeds(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _model_feeds(job, feeds)

    single = model_feeds(rows(workload.timing_feeds, workload.latency_batch))
    batch = model_feeds(rows(workload.timing_feeds, workload.throughput_batch))
    sweep = [
        profile_torch(
            model,
            workload.target,
            [single[n] for n in names],
            [batch[n] for n in names],
            dataclasses.replace(job.settings, threads=threads),
            workload.budget,
        )
        for threads in job.thread_counts
    ]
    best = dataclasses.replace(fastest_of_sweep(sweep), pinned_cpus=pinned)
    if not job.fidelity:
        return best, None
    run = torch_runner(model, workload.target, TorchSettings(**best.settings))
    fidelity = fidelity_over(lambda feeds: run([model_feeds(feeds)[n] for n in names]), workload)
    return best, fidelity


def profile_torch_operators(job: TorchJob) -> list[dict[str, object]]:
    """Child-process side: where the PyTorch row spends its time at the latency batch,
    under the job's settings."""
    source, model = _load_model(job)
    feeds = _model_feeds(job, rows(job.workload.timing_feeds, job.workload.latency_batch))
    args = [feeds[s.name] for s in source.inputs]
    return torch_operator_profile(model, job.workload.target, args, job.settings)


def _model_feeds(job: TorchJob, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw inputs as the model takes them: through the preprocessing's NumPy reference."""
    return apply_numpy(job.preprocess, feeds) if job.preprocess else feeds


def _load_model(job: TorchJob) -> tuple[Source, object]:
    """The source loaded in this (child) process, and the model its row runs: the source's
    own, or for an int8 row, that model quantized by PT2E on the job's calibration inputs."""
    source = load_source(
        job.source_path, job.input_flags, job.trust_pickle, job.model_code, job.task
    )
    if not job.settings.int8:
        return source, source.model
    calibration = _model_feeds(job, job.calibration or {})
    names = [s.name for s in source.inputs]
    dynamic = [spec.has_symbolic_batch for spec in source.inputs]
    total = len(calibration[names[0]])
    fixed = [spec.dims[0] for spec in source.inputs if not spec.has_symbolic_batch]
    # A model with a fixed batch calibrates on batches of that size; others on a few
    # batches that cover every sample.
    size = fixed[0] if fixed else max(1, -(-total // CALIBRATION_BATCHES))
    calibration = rows(calibration, max(total, size))
    batches = [
        [calibration[n][start : start + size] for n in names]
        for start in range(0, max(total, size) - size + 1, size)
    ]
    example = (
        batches[0] if fixed else list(rows(dict(zip(names, batches[0], strict=True)), 2).values())
    )
    return source, quantize_for_inductor(source.model, example, dynamic, batches)
