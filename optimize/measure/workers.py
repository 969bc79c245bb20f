"""Measuring one ONNX variant, on ONNX Runtime or another runtime that takes ONNX files:
speed, size and memory, and its outputs' fidelity. These run in child processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.affinity import pin_measuring_process
from hardware.model_files import model_size_mb
from hardware.op_profile import operator_profile
from hardware.profile import (
    Measurements,
    TimingBudget,
    fastest_of_sweep,
    measure_model,
    profile_onnx,
)
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.runtimes.registry import runtime
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.data.eval_store import EvalStore
from optimize.data.inputs import padded, rows
from optimize.records.fidelity import Fidelity, FidelityTally
from passes.onnx_files import parallel_branches
from passes.quant_error import quantization_errors


@dataclass
class Workload:
    """What every measurement in a run shares: the target, the evaluation set (inputs, the
    original model's outputs on them, labels) and its metric, the inputs timed runs use,
    batch sizes and the timing budget."""

    target: Target
    eval_store: EvalStore
    timing_feeds: dict[str, np.ndarray]
    latency_batch: int
    throughput_batch: int
    eval_batch: int
    budget: TimingBudget


@dataclass
class MeasureJob:
    """Everything a child process needs to measure one ONNX variant; `fidelity` False
    times it only (its outputs were judged when it was screened)."""

    model_path: Path
    workload: Workload
    thread_options: tuple[SessionSettings, ...]
    fidelity: bool = True


def fidelity_over(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]], workload: Workload
) -> Fidelity:
    """Fidelity of `run`'s outputs against the original's over the whole evaluation set,
    streamed batch by batch."""
    tally = FidelityTally(workload.eval_store.metric)
    for batch in workload.eval_store.batches():
        tally.add(batch.reference, run(batch.feeds), batch.labels)
    return tally.result()


def with_parallel_execution(
    model_path: Path, options: tuple[SessionSettings, ...], target: Target
) -> tuple[SessionSettings, ...]:
    """The thread settings to try, plus ONNX Runtime's parallel executor (one inter-op
    thread per independent heavy branch, up to the cores) where the graph has such branches
    and the CPU more than one core; sequential execution is faster everywhere else."""
    cores = max((s.intra_op_threads for s in options), default=0)
    if target.is_gpu or cores < 2:
        return options
    branches = parallel_branches(model_path)
    if branches < 2:
        return options
    parallel = SessionSettings(
        intra_op_threads=cores, inter_op_threads=min(branches, cores), parallel=True
    )
    return (*options, parallel)


def measure_variant(job: MeasureJob) -> tuple[Measurements, Fidelity | None]:
    """Profile the variant under each thread setting, keep the fastest at batch 1, and
    compare its outputs with the reference when the job asks.

    Peak-memory figures are honest in a fresh process (optimize.isolation.run_isolated):
    they come from the first session it opens, before any other could inflate them.
    """
    workload = job.workload
    pinned = pin_measuring_process()
    sweep = []
    for settings in with_parallel_execution(job.model_path, job.thread_options, workload.target):
        measured = profile_onnx(
            job.model_path,
            workload.target,
            rows(workload.timing_feeds, workload.latency_batch),
            rows(workload.timing_feeds, workload.throughput_batch),
            settings,
            workload.budget,
        )
        sweep.append(measured)
    best = dataclasses.replace(fastest_of_sweep(sweep), pinned_cpus=pinned)
    if not job.fidelity:
        return best, None
    opened = OnnxRuntime().open(job.model_path, workload.target, SessionSettings(**best.settings))
    return best, fidelity_over(padded(opened.run, workload.eval_batch), workload)


@dataclass
class ErrorJob:
    """What a child process needs to estimate each node's quantization error: the float
    model, the op types and whether only weights are quantized, and the workload whose
    evaluation inputs feed the float run."""

    model_path: Path
    op_types: tuple[str, ...]
    weights_only: bool
    workload: Workload


# Rows of the evaluation set the float run for quantization errors takes.
ERROR_ROWS = 16


def estimate_quantization_errors(job: ErrorJob) -> dict[str, float]:
    """Each node's estimated relative output error from quantizing it (see
    passes.quant_error), from a float run on the first evaluation rows."""
    first = next(job.workload.eval_store.batches())
    feeds = rows(first.feeds, min(ERROR_ROWS, len(next(iter(first.feeds.values())))))
    return quantization_errors(job.model_path, job.op_types, job.weights_only, feeds)


def profile_operators(job: MeasureJob) -> list[dict[str, object]]:
    """The per-operator time profile at batch 1 under the job's first thread setting."""
    feeds = rows(job.workload.timing_feeds, job.workload.latency_batch)
    return operator_profile(job.model_path, job.workload.target, feeds, job.thread_options[0])


@dataclass
class RuntimeJob:
    """Everything a child process needs to measure an ONNX variant on another runtime:
    the runtime's name, the file, one setting per thread count, and the workload."""

    runtime: str
    model_path: Path
    settings: tuple[Any, ...]
    workload: Workload
    fidelity: bool = True


def measure_on_runtime(job: RuntimeJob) -> tuple[Measurements, Fidelity | None]:
    """Measure the file on the job's runtime under each setting, keep the fastest at
    batch 1, and compare its outputs with the reference when the job asks."""
    workload = job.workload
    pinned = pin_measuring_process()
    found = runtime(job.runtime)
    single = rows(workload.timing_feeds, workload.latency_batch)
    batch = rows(workload.timing_feeds, workload.throughput_batch)
    size = model_size_mb(job.model_path)
    sweep = [
        measure_model(
            found, job.model_path, workload.target, single, batch, s, workload.budget, size
        )
        for s in job.settings
    ]
    best = dataclasses.replace(fastest_of_sweep(sweep), pinned_cpus=pinned)
    if not job.fidelity:
        return best, None
    settings = type(job.settings[0])(**best.settings)
    opened = found.open(job.model_path, workload.target, settings)
    return best, fidelity_over(padded(opened.run, workload.eval_batch), workload)
