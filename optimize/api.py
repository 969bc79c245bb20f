"""run(...) -> Results: the whole job, as the CLI and notebooks call it."""

from __future__ import annotations

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
from optimize.evaluate import Fidelity, Tolerance, limits_verdict, tolerance_verdict
from optimize.fallback import is_repairable, repair
from optimize.inputs import EvalSet, fixed_batch, generate_inputs, iter_batches, load_eval_npz
from optimize.isolation import IsolatedRunError, run_isolated
from optimize.load import Source, load_source
from optimize.measure import (
    MeasureJob,
    measure_fidelity,
    measure_variant,
    profile_operators,
    run_onnx,
)
from optimize.measure_cache import load_measurements, measurement_key, store_measurements
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

GENERATED_SAMPLES = 64
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
        timeout_s=options.build_timeout_s,
    )
    host = describe_host(include_gpus=target.is_gpu)
    chains = chains if chains is not None else builtin_chains(target, host.cpu_flags)
    job_base = {
        "target": target,
        "eval_feeds": evalset.feeds,
        "reference_outputs": reference,
        "labels": evalset.labels,
        "latency_batch": batch or 1,
        "throughput_batch": batch or THROUGHPUT_BATCH,
        "eval_batch": eval_batch,
        "budget": options.budget,
        "thread_options": options.thread_options or thread_options(target),
    }
    machine = {k: v for k, v in host.to_dict().items() if k != "memory_gb"}
    cache_key = measurement_key(job_base, machine)

    def measure(variant: Variant) -> None:
        progress(f"measuring {variant.label}", 0, 0)
        _measure(variant, job_base, options, (out_dir / "variants", cache_key))

    variants = search(chains, builder, measure, options.budget_minutes, progress)
    _warn_on_export_parity(variants, warnings)
    repairs = []
    if options.fallback:
        judge = functools.partial(_judge, job_base=job_base, options=options)
        for variant in [v for v in variants if v.status == "measured" and v.verdict]:
            made_by = builder.made_by.get(variant.id)
            if made_by is None or not is_repairable(made_by[1]):
                continue
            progress(f"repairing {variant.label}", 0, 0)
            record, steps = repair(variant, *made_by, builder, judge, options.max_excluded)
            repairs.append(record)
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
            **{k: v for k, v in job_base.items() if k not in ("thread_options",)},
            "source_path": source.path,
            "input_flags": inputs,
            "trust_pickle": trust_pickle,
            "model_code": Path(model_code) if model_code else None,
            "thread_counts": _thread_counts(job_base["thread_options"], host),
        }
        for row in rows:
            if row.status == "built":
                progress(f"measuring {row.label}", 0, 0)
                job = TorchJob(settings=TorchSettings(**row.runtime_settings), **torch_base)
                _record(
                    row,
                    lambda job=job: run_isolated(measure_torch, job, options.measure_timeout_s),
                    options,
                )
            variants.append(row)
    chosen = pick(variants)
    chosen_onnx = pick([v for v in variants if v.runtime == "onnxruntime"])
    op_profile = _operator_profile(chosen_onnx, job_base, options) if chosen_onnx else []
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
        eval_data=_describe_evalset(evalset, eval_data),
        environment=host.to_dict(),
        out_dir=out_dir,
        warnings=warnings,
        repairs=repairs,
        op_profile=op_profile,
        chains=[{"passes": [p.label() for p in c.passes], "why": c.why} for c in chains],
    )
    write_outputs(results)
    return results


def thread_options(target: Target) -> tuple[SessionSettings, ...]:
    """The thread settings each variant is measured under: on CPU, one intra-op thread per
    physical core (ONNX Runtime's default) and a single thread, which wins on small models
    where waking a thread pool costs more than the work it shares."""
    if target.is_gpu:
        return (SessionSettings(),)
    cores = describe_host(include_gpus=False).physical_cores
    counts = sorted({cores, 1}, reverse=True)
    return tuple(SessionSettings(intra_op_threads=n) for n in counts)


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


def _measure(
    variant: Variant, job_base: dict, options: RunOptions, cache: tuple[Path, str]
) -> None:
    """Profile an ONNX variant and judge its fidelity, in a child process; reuse stored
    figures taken under the same conditions, and store new ones."""
    variants_dir, key = cache
    folder = variant.path.parent
    cacheable = folder.parent == variants_dir
    stored = load_measurements(folder, key) if cacheable and options.reuse_measurements else None
    if stored is not None:
        variant.measurements_cached = True
        _record(variant, lambda: stored, options)
        return
    job = MeasureJob(model_path=variant.path, **job_base)
    _record(variant, lambda: run_isolated(measure_variant, job, options.measure_timeout_s), options)
    if cacheable and variant.status == "measured":
        store_measurements(
            folder, key, {"measurements": variant.measurements, "fidelity": variant.fidelity}
        )


def _record(variant: Variant, measure: Callable[[], dict], options: RunOptions) -> None:
    """Store what `measure` returns on `variant`, or mark it failed with the reason."""
    try:
        data = measure()
    except IsolatedRunError as exc:
        variant.status, variant.reason = "failed", f"measuring failed: {exc}"
        return
    variant.status = "measured"
    variant.measurements = data["measurements"]
    variant.fidelity = data["fidelity"]
    variant.verdict = tolerance_verdict(
        Fidelity.from_dict(data["fidelity"]), options.tolerance
    ) or limits_verdict(data["measurements"], options.tolerance)


def _thread_counts(settings: tuple[SessionSettings, ...], host) -> tuple[int, ...]:
    """The intra-op thread counts ONNX Runtime is measured with, for PyTorch as well."""
    counts = tuple(s.intra_op_threads for s in settings if s.intra_op_threads > 0)
    return counts or (host.physical_cores,)


def _operator_profile(variant: Variant, job_base: dict, options: RunOptions) -> list[dict]:
    """Where the pick spends its time, under the thread setting it was fastest with."""
    best_settings = SessionSettings(**variant.measurements["settings"])
    job = MeasureJob(model_path=variant.path, **{**job_base, "thread_options": (best_settings,)})
    try:
        return run_isolated(profile_operators, job, options.measure_timeout_s)
    except IsolatedRunError:
        return []  # the profile is a diagnosis; the run's figures stand without it


def _judge(variant: Variant, job_base: dict, options: RunOptions) -> tuple[Fidelity, str | None]:
    """Fidelity of a fallback candidate and its verdict, without the full profile."""
    job = MeasureJob(model_path=variant.path, **job_base)
    try:
        fidelity = Fidelity.from_dict(
            run_isolated(measure_fidelity, job, options.measure_timeout_s)
        )
    except IsolatedRunError as exc:
        nan = float("nan")
        return Fidelity(0, nan, nan, nan, nan, 0), f"failed: {exc}"
    return fidelity, tolerance_verdict(fidelity, options.tolerance)


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
