"""The build side of a run: the pass contexts for the run's inputs and the builder that
makes every variant from the source."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from hardware.targets import Target
from optimize.build.builder import VariantBuilder
from optimize.config.sections import ExportSection
from optimize.data.prepare import RunData
from optimize.execution import Executor
from optimize.source.load import Source
from passes.base import PassContext
from passes.export import ExportToOnnx
from passes.preprocess import Preprocess
from passes.preprocess_spec import apply_numpy


def builder_for(
    source: Source,
    data: RunData,
    target: Target,
    out_dir: Path,
    timeout_s: float,
    on_step: Callable[[str], None] = lambda label: None,
    export: ExportSection = ExportSection(),
    executor: Executor | None = None,
) -> VariantBuilder:
    """The builder of a run: passes see the run's (raw) inputs and calibration data; with
    preprocessing, passes on the PyTorch model (export, pruning) see the model's own. A
    PyTorch source is exported as `export` says."""
    # The PyTorch model joins the context when a pass needs it (see VariantBuilder):
    # a re-run that builds nothing never loads it.
    ctx = PassContext(
        target,
        data.raw_inputs,
        data.calibration,
        max_batch=source.max_batch,
        source_file=source.path,
    )
    torch_ctx = None
    preprocess = None
    if data.preprocessing:
        model_samples = apply_numpy(data.preprocessing, data.calibration)
        torch_ctx = PassContext(target, source.inputs, model_samples, max_batch=source.max_batch)
        preprocess = Preprocess.from_spec(data.preprocessing)
    return VariantBuilder(
        source,
        ctx,
        out_dir / "variants",
        root_id(source),
        on_step=on_step,
        timeout_s=timeout_s,
        preprocess=preprocess,
        torch_ctx=torch_ctx,
        export=ExportToOnnx(opset=export.opset, exporter=export.exporter),
        executor=executor,
    )


def root_id(source: Source) -> str:
    """The id every variant's lineage starts from: the source file's content. Each pass
    adds the versions of its own libraries (see variant_id), so an upgrade rebuilds only
    what it can change."""
    return hashlib.sha256(source.source_id.encode()).hexdigest()[:16]
