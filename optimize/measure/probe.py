"""A quick look at the model before a run, for the dry-run's time estimate: its size on
disk, how long one sample takes in its own runtime, and how many samples the run will
evaluate and calibrate on."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from hardware.model_files import model_size_mb
from hardware.profile import TimingBudget, time_runs
from hardware.runtimes.base import RuntimeName
from hardware.runtimes.pytorch import TorchSettings
from hardware.runtimes.registry import runtime, runtime_taking
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.config.plan import ModelProbe
from optimize.config.sections import DataSection, data_source
from optimize.data.inputs import (
    CALIBRATION_SAMPLES,
    GENERATED_SAMPLES,
    fixed_batch,
    generate_inputs,
)
from optimize.data.prepare import THROUGHPUT_BATCH
from optimize.isolation import close_warm_worker
from optimize.source.hf_files import folder_files
from optimize.source.load import Source, SourceSpec

# A language model's probe prompt, in tokens.
PROMPT_IDS = 16
# A glimpse, not a measurement: enough runs for a median to within a few tens of percent.
PROBE_BUDGET = TimingBudget(warmup_runs=1, warmup_s=0.0, measure_s=0.3, min_runs=3, max_runs=200)


def probe_model(spec: SourceSpec, data: DataSection) -> ModelProbe:
    """Load the model (refusing it as a run would), time a few single-sample runs of it,
    and count the samples of its data."""
    try:
        source = spec.load()
        run, synchronize = _one_sample_run(source)
        timing = time_runs(run, PROBE_BUDGET, synchronize)
    finally:
        close_warm_worker()
    evaluated = _samples(data.eval) or GENERATED_SAMPLES
    calibrated = _samples(data.calibration) or evaluated
    return ModelProbe(
        size_mb=_size_mb(source),
        sample_ms=timing.p50_ms,
        exported=source.model_kind == "torch",
        eval_samples=evaluated,
        calibration_samples=min(calibrated, CALIBRATION_SAMPLES),
        throughput_batch=fixed_batch(source.inputs)
        or min(THROUGHPUT_BATCH, source.max_batch or THROUGHPUT_BATCH),
        generative=source.generative,
    )


def _one_sample_run(source: Source):
    """The source's own runtime bound to one generated sample: PyTorch eager for PyTorch
    sources, ONNX Runtime with its default optimizations for ONNX ones, a language model's
    reference runtime generating from a short prompt."""
    feeds = generate_inputs(
        source.inputs, 1, like=source.sample_inputs, index_limits=source.index_limits
    )
    if source.generative:
        # Ids every vocabulary has; a bound run generates from them.
        feeds = {"input_ids": np.arange(1, PROMPT_IDS + 1, dtype=np.int64)[None]}
        found = runtime_taking(source.model_kind)
        opened = found.open(
            source.artifact, Target("cpu"), found.settings(Target("cpu"), [], ())[0]
        )
    elif source.model_kind == "onnx":
        opened = runtime(RuntimeName.ONNXRUNTIME).open(
            source.path, Target("cpu"), SessionSettings()
        )
    else:
        opened = runtime(RuntimeName.TORCH).open(source.model, Target("cpu"), TorchSettings())
    return opened.bind(feeds)


def _size_mb(source: Source) -> float:
    if source.model_kind == "onnx":
        return model_size_mb(source.path)
    if source.path.is_dir():
        return sum(f.stat().st_size for f in folder_files(source.path)) / 2**20
    return source.path.stat().st_size / 2**20


def _samples(spec: str | Path | None) -> int | None:
    """How many samples an .npz or a folder of .npy files holds, read from the array
    headers alone; None for data a function makes, or none given."""
    if spec is None:
        return None
    place = data_source(str(spec))
    if not isinstance(place, Path):
        return None
    if place.is_dir():
        counts = [_npy_rows(path.open("rb")) for path in sorted(place.glob("*.npy"))]
    elif zipfile.is_zipfile(place):
        with zipfile.ZipFile(place) as archive:
            names = [n for n in archive.namelist() if n.endswith(".npy")]
            counts = [_npy_rows(archive.open(n)) for n in names if n != "labels.npy"]
    else:
        return None
    return min(counts) if counts else None


def _npy_rows(stream) -> int:
    with stream:
        version = np.lib.format.read_magic(stream)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, _ = read(stream)
    return shape[0] if shape else 1
