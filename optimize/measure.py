"""Measuring one ONNX variant: speed, size and memory, and its outputs' fidelity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.op_profile import operator_profile
from hardware.profile import TimingBudget, fastest_of_sweep, profile_onnx
from hardware.session import SessionSettings, open_session
from hardware.targets import Target
from optimize.evaluate import compare_outputs
from optimize.inputs import iter_batches, rows


@dataclass
class Workload:
    """What every measurement in a run shares: the target, the inputs and the original
    model's outputs on them, labels, batch sizes and the timing budget."""

    target: Target
    eval_feeds: dict[str, np.ndarray]
    reference_outputs: list[np.ndarray]
    labels: np.ndarray | None
    latency_batch: int
    throughput_batch: int
    eval_batch: int
    budget: TimingBudget


@dataclass
class MeasureJob:
    """Everything a child process needs to measure one ONNX variant."""

    model_path: Path
    workload: Workload
    thread_options: tuple[SessionSettings, ...]


def run_onnx(
    model_path: Path,
    target: Target,
    feeds: dict[str, np.ndarray],
    batch: int,
    settings: SessionSettings = SessionSettings(),
) -> list[np.ndarray]:
    """Outputs of an ONNX model on all of `feeds`, run `batch` rows at a time (padding
    the last batch by repetition and trimming it, for models with a fixed batch)."""
    session = open_session(model_path, target, settings)
    names = [i.name for i in session.get_inputs()]
    chunks: list[list[np.ndarray]] = []
    for part in iter_batches(feeds, batch):
        count = len(next(iter(part.values())))
        padded = rows(part, batch) if count < batch else part
        outputs = session.run(None, {n: padded[n] for n in names})
        chunks.append([o[:count] for o in outputs])
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def measure_variant(job: MeasureJob) -> dict[str, object]:
    """Profile the variant under each thread setting, keep the fastest at batch 1, and
    compare its outputs with the reference; plain data back.

    Run it in a fresh process (optimize.isolation): memory figures come from the first
    session the process opens, before any other session could inflate them.
    """
    sweep = []
    for settings in job.thread_options:
        measured = profile_onnx(
            job.model_path,
            job.workload.target,
            rows(job.workload.eval_feeds, job.workload.latency_batch),
            rows(job.workload.eval_feeds, job.workload.throughput_batch),
            settings,
            job.workload.budget,
        )
        sweep.append(measured)
    best, data = fastest_of_sweep(sweep)
    best_settings = SessionSettings(**best.settings)
    outputs = run_onnx(
        job.model_path,
        job.workload.target,
        job.workload.eval_feeds,
        job.workload.eval_batch,
        best_settings,
    )
    fidelity = compare_outputs(job.workload.reference_outputs, outputs, job.workload.labels)
    return {"measurements": data, "fidelity": fidelity.to_dict()}


def measure_fidelity(job: MeasureJob) -> dict[str, object]:
    """Only the fidelity part of measure_variant: quick enough to judge many candidates."""
    settings = job.thread_options[0]
    outputs = run_onnx(
        job.model_path,
        job.workload.target,
        job.workload.eval_feeds,
        job.workload.eval_batch,
        settings,
    )
    return compare_outputs(job.workload.reference_outputs, outputs, job.workload.labels).to_dict()


def profile_operators(job: MeasureJob) -> list[dict[str, object]]:
    """The per-operator time profile at batch 1 under the job's first thread setting."""
    feeds = rows(job.workload.eval_feeds, job.workload.latency_batch)
    return operator_profile(job.model_path, job.workload.target, feeds, job.thread_options[0])
