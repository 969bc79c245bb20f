"""The data stage of a run: the evaluation set with the original's outputs on disk, the
calibration inputs, the fitted preprocessing and the batch sizes every measurement shares."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.detect import distribution_versions
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.session import SessionSettings
from hardware.targets import Target
from optimize.config.sections import DataSection, PreprocessSection
from optimize.data.eval_cache import eval_set_key, keep_eval_set, load_eval_set
from optimize.data.eval_store import EvalStore, write_eval_store
from optimize.data.inputs import (
    calibration_inputs,
    describe_evalset,
    evaluation_data,
    fixed_batch,
    padded,
)
from optimize.data.preprocessing import fitted_preprocessing
from optimize.errors import UserError
from optimize.records.metrics import choose_metric, make_metric
from optimize.source.load import Source
from passes.base import TensorSpec
from passes.preprocess_spec import PreprocessSpec, apply_numpy, raw_input_specs
from passes.torch_run import run_torch

THROUGHPUT_BATCH = 32
EVAL_BATCH = 64
# The evaluation sets with the original's outputs, streamed by every measurement, each in
# a folder named by its key (see optimize.data.eval_cache).
EVAL_FOLDER = Path("cache") / "eval_sets"


@dataclass
class RunData:
    """What the data stage gives the rest of the run."""

    store: EvalStore
    description: dict[str, Any]
    calibration: dict[str, np.ndarray]
    # The inputs variants take: raw ones when preprocessing is compiled in front.
    raw_inputs: list[TensorSpec]
    preprocessing: PreprocessSpec | None
    # A model with a fixed batch is measured at that batch only.
    fixed_batch: int | None
    warnings: list[str] = field(default_factory=list)
    # The most rows a model with a bounded dynamic batch accepts.
    max_batch: int | None = None

    @property
    def eval_batch(self) -> int:
        return self.fixed_batch or min(EVAL_BATCH, self.max_batch or EVAL_BATCH)

    @property
    def latency_batch(self) -> int:
        return self.fixed_batch or 1

    @property
    def throughput_batch(self) -> int:
        return self.fixed_batch or min(THROUGHPUT_BATCH, self.max_batch or THROUGHPUT_BATCH)


def prepare_data(
    source: Source, data_section: DataSection, spec: PreprocessSection | None, out_dir: Path
) -> RunData:
    """Read the user's data as `data_section` names it (or generate inputs), fit the
    preprocessing `spec` asks for, run the original on it, and store both under `out_dir`
    for every measurement to stream."""
    preprocessing = fitted_preprocessing(spec.steps, spec.fit) if spec else None
    raw_inputs = raw_input_specs(preprocessing, source.inputs) if preprocessing else source.inputs
    batch = fixed_batch(source.inputs)
    eval_batch = batch or min(EVAL_BATCH, source.max_batch or EVAL_BATCH)
    # The original's outputs change with the preprocessing and the runtimes' versions too.
    versions = distribution_versions(("torch", "onnxruntime"))
    extra = [repr(preprocessing), versions]
    key = eval_set_key(source.source_id, raw_inputs, data_section.eval, eval_batch, extra)
    folder = out_dir / EVAL_FOLDER / (key or "unkeyed")
    kept = load_eval_set(folder) if key else None
    if kept is not None:
        store, described, notes = kept
    else:
        data = evaluation_data(source, raw_inputs, data_section.eval, eval_batch, not preprocessing)
        store = write_eval_store(
            folder,
            data.batches,
            eval_batch,
            _reference(source, eval_batch, preprocessing),
            data.synthetic,
        )
        described, notes = data.description, data.notes
        if key:
            keep_eval_set(store, described, notes)
    store = dataclasses.replace(store, metric=_metric(store, data_section.metric))
    warnings = []
    if store.synthetic:
        warnings.append(
            "fidelity is measured on generated inputs, not real data: pass --eval-data "
            "for figures that reflect your inputs"
        )
    warnings += notes
    if source.max_batch is not None and source.max_batch < THROUGHPUT_BATCH and not batch:
        warnings.append(
            f"the model accepts at most {source.max_batch} rows (its declared batch range): "
            f"throughput is measured at batch {source.max_batch}, not {THROUGHPUT_BATCH}"
        )
    calibration = calibration_inputs(raw_inputs, store, data_section.calibration, warnings)
    return RunData(
        store=store,
        description=describe_evalset(store, described, notes),
        calibration=calibration,
        raw_inputs=raw_inputs,
        preprocessing=preprocessing,
        fixed_batch=batch,
        warnings=warnings,
        max_batch=source.max_batch,
    )


def _reference(
    source: Source, batch: int, preprocessing: PreprocessSpec | None
) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    """The original model run on one batch: PyTorch for torch sources, ONNX Runtime with
    its graph optimizations off for ONNX sources; raw inputs go through the NumPy
    reference of the preprocessing first."""
    if source.model_kind == "onnx":
        settings = SessionSettings(graph_level="disabled")
        run = padded(OnnxRuntime().open(source.path, Target("cpu"), settings).run, batch)
    else:
        run = _inputs_must_fit(
            functools.partial(run_torch, source.model, inputs=source.inputs), source
        )
    if preprocessing is None:
        return run
    return lambda feeds: run(apply_numpy(preprocessing, feeds))


def _inputs_must_fit(run: Callable, source: Source) -> Callable:
    """`run`, failing with a UserError when a module that records no input shapes (so the
    user gave them) rejects inputs of that spec."""
    if source.form not in ("torchscript", "pickled_module"):
        return run

    def checked(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return run(feeds)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            spec = " ".join(f"{s.name}:{','.join(map(str, s.dims))}" for s in source.inputs)
            first = str(exc).strip().splitlines()
            raise UserError(
                f"{source.path.name} fails on inputs shaped as --input {spec} "
                f"({first[0] if first else type(exc).__name__}): give the shapes forward() takes"
            ) from exc

    return checked


def _metric(store: EvalStore, named: str | None) -> str | None:
    """The task metric: the one named, else the one the outputs and labels imply; none
    without labels."""
    if not store.labelled:
        return None
    if named:
        make_metric(named)
        return named
    first = next(store.batches())
    return choose_metric(first.reference, first.labels)
