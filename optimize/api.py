"""run(...) -> Results: the whole job, as the CLI and notebooks call it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.detect import check_target, describe_host, package_versions
from hardware.profile import TimingBudget
from hardware.session import SessionSettings
from hardware.targets import Target, parse_target
from optimize.evaluate import Fidelity, Tolerance, tolerance_verdict
from optimize.inputs import EvalSet, fixed_batch, generate_inputs, iter_batches, load_eval_npz
from optimize.isolation import IsolatedRunError, run_isolated
from optimize.load import Source, load_source
from optimize.measure import MeasureJob, measure_variant, run_onnx
from optimize.pipeline import Variant, VariantBuilder
from optimize.recipes import Chain, builtin_chains
from optimize.report import render_markdown
from optimize.results import Results
from optimize.select import pareto_front, pick
from optimize.store import (
    copy_atomic,
    staging_dir,
    write_json_atomic,
    write_manifest,
    write_text_atomic,
)
from passes.base import PassContext
from passes.onnx_files import external_data_files, save_ir_model
from passes.torch_run import run_torch

GENERATED_SAMPLES = 64
THROUGHPUT_BATCH = 32
EVAL_BATCH = 64


@dataclass(frozen=True)
class RunOptions:
    """Knobs of a run besides the model and target; the defaults suit a quick, stable run."""

    budget: TimingBudget = TimingBudget()
    tolerance: Tolerance = Tolerance()
    settings: SessionSettings = SessionSettings()
    measure_timeout_s: float = 600.0


Progress = Callable[[str, int, int], None]


def _no_progress(message: str, done: int, total: int) -> None:
    return None


def run(
    model: str | Path,
    target: str | Target = "cpu",
    out: str | Path = "optimized",
    inputs: list[str] | None = None,
    eval_data: str | Path | None = None,
    calibration_data: str | Path | None = None,
    trust_pickle: bool = False,
    model_code: str | Path | None = None,
    chains: list[Chain] | None = None,
    options: RunOptions = RunOptions(),
    progress: Progress = _no_progress,
) -> Results:
    """Load `model`, build the variants of `chains` (the target's built-in recipe by default),
    measure each on `target`, pick the fastest within tolerance and write the output folder.

    `inputs` are `NAME:DIMS[:DTYPE]` texts for models that do not carry their input spec;
    `eval_data` is an .npz with one array per input and optional `labels`;
    `calibration_data` an .npz with one array per input, for static quantization (the
    evaluation inputs are used when it is not given).
    """
    target = parse_target(target) if isinstance(target, str) else target
    check_target(target)
    out_dir = Path(out).resolve()
    source = load_source(
        Path(model),
        input_flags=inputs,
        trust_pickle=trust_pickle,
        model_code=Path(model_code) if model_code else None,
    )
    warnings: list[str] = []
    evalset = _evaluation_set(source, Path(eval_data) if eval_data else None)
    if evalset.synthetic:
        warnings.append(
            "fidelity is measured on generated inputs, not real data: pass --eval-data "
            "for figures that reflect your inputs"
        )
    batch = fixed_batch(source.inputs)
    eval_batch = batch or EVAL_BATCH
    progress("reference outputs of the original model", 0, 1)
    reference = _reference_outputs(source, evalset, eval_batch)

    calibration = _calibration_inputs(source, evalset, calibration_data, warnings)
    ctx = PassContext(target, source.inputs, calibration, source.model)
    root_id = _root_id(source)
    builder = VariantBuilder(
        source,
        ctx,
        out_dir / "variants",
        root_id,
        on_step=lambda s: progress(f"building {s}", 0, 0),
    )
    variants: list[Variant] = []
    for chain in chains if chains is not None else builtin_chains(target):
        for variant in builder.build(chain):
            if variant not in variants:
                variants.append(variant)
    _warn_on_export_parity(variants, warnings)

    job_base = {
        "target": target,
        "eval_feeds": evalset.feeds,
        "reference_outputs": reference,
        "labels": evalset.labels,
        "latency_batch": batch or 1,
        "throughput_batch": batch or THROUGHPUT_BATCH,
        "eval_batch": eval_batch,
        "budget": options.budget,
        "settings": options.settings,
    }
    built = [v for v in variants if v.status == "built"]
    for index, variant in enumerate(built):
        progress(f"measuring {variant.label}", index, len(built))
        _measure(variant, MeasureJob(model_path=variant.path, **job_base), options)
    progress("choosing", len(built), len(built))

    results = Results(
        source_path=source.path,
        source_form=source.form,
        source_id=source.source_id,
        inputs=source.inputs,
        target=str(target),
        variants=variants,
        pick=pick(variants),
        pareto_front=pareto_front(variants),
        tolerance=options.tolerance,
        eval_data=_describe_evalset(evalset, eval_data),
        environment=describe_host(include_gpus=target.is_gpu).to_dict(),
        out_dir=out_dir,
        warnings=warnings,
    )
    write_outputs(results)
    return results


def _evaluation_set(source: Source, eval_data: Path | None) -> EvalSet:
    if eval_data is not None:
        return load_eval_npz(eval_data, source.inputs)
    if source.sample_inputs:
        count = max(GENERATED_SAMPLES, len(next(iter(source.sample_inputs.values()))))
        generated = generate_inputs(source.inputs, count)
        merged = {
            name: np.concatenate([source.sample_inputs[name], generated[name]])[:count]
            for name in generated
        }
        return EvalSet(merged, None, synthetic=True)
    return EvalSet(generate_inputs(source.inputs, GENERATED_SAMPLES), None, synthetic=True)


def _calibration_inputs(
    source: Source, evalset: EvalSet, path: str | Path | None, warnings: list[str]
) -> dict[str, np.ndarray]:
    """Inputs for calibrating static quantization, with a warning when they are not real
    data set apart for it."""
    if path is not None:
        return load_eval_npz(Path(path), source.inputs).feeds
    if evalset.synthetic:
        warnings.append(
            "static quantization is calibrated on generated inputs: its accuracy figures are "
            "unreliable; pass --calibration-data (or --eval-data) with real inputs"
        )
    else:
        warnings.append(
            "static quantization is calibrated on the evaluation inputs themselves, which "
            "flatters its accuracy; pass --calibration-data with other samples"
        )
    return evalset.feeds


def _describe_evalset(evalset: EvalSet, eval_data: str | Path | None) -> dict[str, object]:
    kind = "generated inputs (seeded)" if evalset.synthetic else f"{eval_data}"
    labels = "with labels" if evalset.labels is not None else "without labels"
    return {
        "description": f"{len(evalset)} samples from {kind}, {labels}",
        "samples": len(evalset),
        "synthetic": evalset.synthetic,
        "labels": evalset.labels is not None,
        "path": str(eval_data) if eval_data else None,
    }


def _reference_outputs(source: Source, evalset: EvalSet, batch: int) -> list[np.ndarray]:
    """The original model's outputs: PyTorch for torch sources, ONNX Runtime with its graph
    optimizations off for ONNX sources."""
    if source.model_kind == "onnx":
        return run_onnx(
            source.path,
            Target("cpu"),
            evalset.feeds,
            batch,
            SessionSettings(graph_level="disabled"),
        )
    chunks = [
        run_torch(source.model, part, source.inputs) for part in iter_batches(evalset.feeds, batch)
    ]
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def _root_id(source: Source) -> str:
    """Variant ids hash the source file and the versions of the tools that build variants,
    so a new model or a tool upgrade invalidates the cache."""
    key = json.dumps([source.source_id, package_versions()], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _warn_on_export_parity(variants: list[Variant], warnings: list[str]) -> None:
    for variant in variants:
        for step in variant.steps[:1]:
            if step.name == "export" and step.metrics.get("parity_ok") == 0.0:
                warnings.append(f"EXPORT PARITY FAILED: {step.note}")
                return


def _measure(variant: Variant, job: MeasureJob, options: RunOptions) -> None:
    try:
        data = run_isolated(measure_variant, job, options.measure_timeout_s)
    except IsolatedRunError as exc:
        variant.status, variant.reason = "failed", f"measuring failed: {exc}"
        return
    variant.status = "measured"
    variant.measurements = data["measurements"]
    variant.fidelity = data["fidelity"]
    variant.verdict = tolerance_verdict(Fidelity.from_dict(data["fidelity"]), options.tolerance)


def write_outputs(results: Results) -> None:
    """best.onnx, report.json, report.md and manifest.json, each written whole."""
    out = results.out_dir
    out.mkdir(parents=True, exist_ok=True)
    artifacts = [v.path for v in results.variants if v.path and v.path.is_relative_to(out)]
    for variant in results.variants:
        # Only a measured model is known to parse; a corrupt one is listed as it is.
        if variant.status == "measured" and variant.path.is_relative_to(out):
            artifacts += external_data_files(variant.path)
    best = out / "best.onnx"
    if results.pick is not None:
        artifacts += _write_best(results.pick.path, best)
    else:
        best.unlink(missing_ok=True)
    write_json_atomic(out / "report.json", results.to_dict())
    write_text_atomic(out / "report.md", render_markdown(results))
    artifacts += [out / "report.json", out / "report.md"]
    write_manifest(out, artifacts)


def _write_best(model_path: Path, best: Path) -> list[Path]:
    """Copy the picked model to best.onnx; a model with external data is re-saved (streamed,
    not loaded whole) so its weights sit in best.onnx.data beside it."""
    if not external_data_files(model_path):
        copy_atomic(model_path, best)
        return [best]
    import onnx_ir as ir

    staging = staging_dir(best.parent, best.name)
    save_ir_model(ir.load(model_path), staging / best.name, external=True)
    data = best.with_name(f"{best.name}.data")
    # Data first: a reader who sees the new best.onnx must find its weights.
    (staging / data.name).replace(data)
    (staging / best.name).replace(best)
    staging.rmdir()
    return [best, data]
