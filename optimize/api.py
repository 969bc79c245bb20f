"""run(...) -> Results: the whole job, as the CLI and notebooks call it."""

from __future__ import annotations

import dataclasses
import functools
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
from hardware.torch_runtime import TorchSettings
from optimize.diagnose import slowdown_note
from optimize.evaluate import Tolerance
from optimize.fallback import is_repairable, repair
from optimize.inputs import (
    EvalSet,
    calibration_inputs,
    describe_evalset,
    evaluation_set,
    fixed_batch,
    iter_batches,
)
from optimize.isolation import run_isolated
from optimize.load import Source, load_source
from optimize.measure import (
    Workload,
    run_onnx,
)
from optimize.measure_cache import measurement_key
from optimize.measure_runs import (
    judge,
    measure_one,
    operator_profile_of,
    record,
    thread_counts,
    thread_options,
)
from optimize.outputs import write_outputs
from optimize.pipeline import Variant, VariantBuilder
from optimize.recipe_file import Recipe
from optimize.recipes import Chain, builtin_chains
from optimize.results import Results
from optimize.search import search
from optimize.select import pareto_front, pick
from optimize.torch_rows import TorchJob, measure_torch, torch_rows
from passes.base import PassContext
from passes.torch_run import run_torch

DEFAULT_OUT = Path("optimized")
THROUGHPUT_BATCH = 32
EVAL_BATCH = 64


@dataclass(frozen=True)
class RunOptions:
    """Knobs of a run besides the model and target; the defaults suit a quick, stable run."""

    budget: TimingBudget = TimingBudget()
    tolerance: Tolerance = Tolerance()
    thread_options: tuple[SessionSettings, ...] | None = None
    measure_timeout_s: float = 600.0
    build_timeout_s: float = 1800.0
    fallback: bool = True
    torch_runtimes: bool = True
    budget_minutes: float | None = None
    reuse_measurements: bool = True
    max_excluded: int = 16


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
    evalset = evaluation_set(source, Path(eval_data) if eval_data else None)
    if evalset.synthetic:
        warnings.append(
            "fidelity is measured on generated inputs, not real data: pass --eval-data "
            "for figures that reflect your inputs"
        )
    batch = fixed_batch(source.inputs)
    eval_batch = batch or EVAL_BATCH
    progress("reference outputs of the original model", 0, 1)
    reference = _reference_outputs(source, evalset, eval_batch)

    calibration = calibration_inputs(source, evalset, calibration_data, warnings)
    ctx = PassContext(target, source.inputs, calibration, source.model)
    root_id = _root_id(source)
    builder = VariantBuilder(
        source,
        ctx,
        out_dir / "variants",
        root_id,
        on_step=lambda s: progress(f"building {s}", 0, 0),
        timeout_s=options.build_timeout_s,
    )
    host = describe_host(include_gpus=target.is_gpu)
    chains = chains if chains is not None else builtin_chains(target, host.cpu_flags)
    workload = Workload(
        target=target,
        eval_feeds=evalset.feeds,
        reference_outputs=reference,
        labels=evalset.labels,
        latency_batch=batch or 1,
        throughput_batch=batch or THROUGHPUT_BATCH,
        eval_batch=eval_batch,
        budget=options.budget,
    )
    threads = _with_engine_cache(options.thread_options or thread_options(target), target, out_dir)
    machine = {k: v for k, v in host.to_dict().items() if k != "memory_gb"}
    cache_key = measurement_key(workload, threads, machine)

    def measure(variant: Variant) -> None:
        progress(f"measuring {variant.label}", 0, 0)
        measure_one(variant, workload, threads, options, (out_dir / "variants", cache_key))

    variants = search(chains, builder, measure, options.budget_minutes, progress)
    _warn_on_export_parity(variants, warnings)
    repairs = []
    if options.fallback:
        judge_one = functools.partial(
            judge, workload=workload, thread_options=threads, options=options
        )
        for variant in [v for v in variants if v.status == "measured" and v.verdict]:
            made_by = builder.made_by.get(variant.id)
            if made_by is None or not is_repairable(made_by[1]):
                continue
            progress(f"repairing {variant.label}", 0, 0)
            repair_record, steps = repair(
                variant, *made_by, builder, judge_one, options.max_excluded
            )
            repairs.append(repair_record)
            for step in steps:
                measure(step)
                variants.append(step)
    progress("choosing", 1, 1)
    for variant in variants:
        made_by = builder.made_by.get(variant.id)
        if made_by and (note := slowdown_note(variant, made_by[0])):
            warnings.append(f"{variant.label}: {note}")

    if options.torch_runtimes:
        rows = torch_rows(source, target, host.cpu_flags, root_id)
        torch_base = {
            "source_path": source.path,
            "input_flags": inputs,
            "trust_pickle": trust_pickle,
            "model_code": Path(model_code) if model_code else None,
            "thread_counts": thread_counts(threads, host),
            "workload": workload,
        }
        for row in rows:
            if row.status == "built":
                progress(f"measuring {row.label}", 0, 0)
                job = TorchJob(settings=TorchSettings(**row.runtime_settings), **torch_base)
                record(
                    row,
                    lambda job=job: run_isolated(measure_torch, job, options.measure_timeout_s),
                    options,
                )
            variants.append(row)
    chosen = pick(variants)
    chosen_onnx = pick([v for v in variants if v.runtime == "onnxruntime"])
    op_profile = operator_profile_of(chosen_onnx, workload, options) if chosen_onnx else []
    results = Results(
        source_path=source.path,
        source_form=source.form,
        source_id=source.source_id,
        inputs=source.inputs,
        target=str(target),
        variants=variants,
        pick=chosen,
        pick_onnx=chosen_onnx,
        pareto_front=pareto_front(variants),
        tolerance=options.tolerance,
        eval_data=describe_evalset(evalset, eval_data),
        environment=host.to_dict(),
        out_dir=out_dir,
        warnings=warnings,
        repairs=repairs,
        op_profile=op_profile,
        chains=[{"passes": [p.label() for p in c.passes], "why": c.why} for c in chains],
    )
    write_outputs(results)
    return results


def _with_engine_cache(
    settings: tuple[SessionSettings, ...], target: Target, out_dir: Path
) -> tuple[SessionSettings, ...]:
    """On GPU, TensorRT engines go in the output folder, so re-runs and serving reuse them."""
    if not target.is_gpu:
        return settings
    cache = str(out_dir / "trt_engines")
    return tuple(dataclasses.replace(s, engine_cache_dir=cache) for s in settings)


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


def recipe_options(
    recipe: Recipe, reuse_measurements: bool = True, budget_minutes: float | None = None
) -> RunOptions:
    """RunOptions for a recipe: its measuring time, limits and runtimes."""
    seconds = recipe.measure_seconds
    return RunOptions(
        budget=TimingBudget(measure_s=seconds, warmup_s=min(0.2, seconds / 2)),
        tolerance=recipe.limits.tolerance(),
        torch_runtimes=recipe.torch_runtimes,
        reuse_measurements=reuse_measurements,
        budget_minutes=budget_minutes,
    )


def recipe_chains(recipe: Recipe) -> list[Chain]:
    """The target's built-in chains (unless the recipe turns them off) and the recipe's."""
    builtin = []
    if recipe.builtin:
        target = parse_target(recipe.target)
        builtin = builtin_chains(target, describe_host(include_gpus=False).cpu_flags)
    return builtin + list(recipe.chains)


def run_recipe(
    recipe: Recipe,
    reuse_measurements: bool = True,
    budget_minutes: float | None = None,
    progress: Progress = _no_progress,
) -> Results:
    """run(...) with everything a recipe states."""
    return run(
        recipe.model,
        target=recipe.target,
        out=recipe.out or DEFAULT_OUT,
        inputs=recipe.inputs or None,
        eval_data=recipe.eval_data,
        calibration_data=recipe.calibration_data,
        trust_pickle=recipe.trust_pickle,
        model_code=recipe.model_code,
        chains=recipe_chains(recipe),
        options=recipe_options(recipe, reuse_measurements, budget_minutes),
        progress=progress,
    )
