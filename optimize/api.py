"""run(...) -> Results: the whole job, as the CLI and notebooks call it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.detect import check_target, describe_host, package_versions
from hardware.profile import TimingBudget
from hardware.session import SessionSettings
from hardware.targets import Target, parse_target
from hardware.torch_runtime import TorchSettings
from optimize.build.builder import Variant, VariantBuilder
from optimize.choose.contest import run_contest
from optimize.choose.select import pareto_front, pick
from optimize.config.chains import Chain, builtin_chains, int8_scheme
from optimize.data.eval_store import EvalStore, write_eval_store
from optimize.data.inputs import (
    calibration_inputs,
    describe_evalset,
    evaluation_data,
    fixed_batch,
)
from optimize.data.preprocessing import fitted_preprocessing
from optimize.isolation import IsolatedRunError, run_isolated
from optimize.measure.cache import measurement_key
from optimize.measure.diagnose import slowdown_note
from optimize.measure.fidelity import Tolerance
from optimize.measure.metrics import choose_metric, make_metric
from optimize.measure.runs import (
    judge,
    measure_one,
    noise_warning,
    operator_profile_of,
    record,
    thread_counts,
    thread_options,
)
from optimize.measure.torch_rows import TorchJob, measure_torch, torch_profile_of, torch_rows
from optimize.measure.workers import Workload, onnx_runner
from optimize.report.outputs import write_outputs
from optimize.report.results import Results
from optimize.search.chain_search import search
from optimize.search.fallback import repair_outside_tolerance
from optimize.search.prune_sweep import prune_sweep
from optimize.source.load import Source, load_source
from passes.base import PassContext
from passes.preprocess import Preprocess
from passes.preprocess_spec import PreprocessSpec, apply_numpy, raw_input_specs
from passes.torch_run import run_torch

DEFAULT_OUT = Path("optimized")
THROUGHPUT_BATCH = 32
EVAL_BATCH = 64
# The evaluation set with the original's outputs, streamed by every measurement.
EVAL_FOLDER = "eval_set"


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
    # Structured-pruning ratios to sweep (none: no pruning) and the recovery fine-tuning
    # function, as "module:function".
    prune_ratios: tuple[float, ...] = ()
    finetune: str = ""
    # The task metric on labelled data (optimize.measure.metrics); None: implied by the data.
    metric: str | None = None


Progress = Callable[[str, int, int], None]


def no_progress(message: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""
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
    progress: Progress = no_progress,
    preprocess: PreprocessSpec | None = None,
    preprocess_fit: str | Path | None = None,
) -> Results:
    """Load `model`, build the variants of `chains` (the target's built-in recipe by default),
    measure each on `target`, pick the fastest within tolerance and write the output folder.

    `inputs` are `NAME:DIMS[:DTYPE]` texts for models that do not carry their input spec;
    `eval_data` is labelled data in any form optimize.data.eval_data reads (an .npz, a folder
    of .npy files, or `module:function`); `calibration_data` inputs in the same forms, for
    static quantization (the evaluation inputs are used when it is not given).
    `preprocess` is compiled in front of every variant, which then takes raw inputs (the
    evaluation and calibration data are raw too); statistics it leaves unset are fitted on
    `preprocess_fit`, an .npz of raw training data.
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
    preprocessing = fitted_preprocessing(preprocess, preprocess_fit)
    raw_inputs = raw_input_specs(preprocessing, source.inputs) if preprocessing else source.inputs
    batch = fixed_batch(source.inputs)
    eval_batch = batch or EVAL_BATCH
    progress("reference outputs of the original model", 0, 1)
    data = evaluation_data(source, raw_inputs, eval_data, eval_batch, not preprocessing)
    store = write_eval_store(
        out_dir / EVAL_FOLDER,
        data.batches,
        eval_batch,
        _reference(source, eval_batch, preprocessing),
        data.synthetic,
    )
    store = dataclasses.replace(store, metric=_metric(store, options.metric))
    if store.synthetic:
        warnings.append(
            "fidelity is measured on generated inputs, not real data: pass --eval-data "
            "for figures that reflect your inputs"
        )
    warnings += data.notes
    calibration = calibration_inputs(raw_inputs, store, calibration_data, warnings)
    ctx = PassContext(target, raw_inputs, calibration, source.model)
    torch_ctx = None
    if preprocessing:
        model_samples = apply_numpy(preprocessing, calibration)
        torch_ctx = PassContext(target, source.inputs, model_samples, source.model)
    root_id = _root_id(source)
    builder = VariantBuilder(
        source,
        ctx,
        out_dir / "variants",
        root_id,
        on_step=lambda s: progress(f"building {s}", 0, 0),
        timeout_s=options.build_timeout_s,
        preprocess=Preprocess.from_spec(preprocessing) if preprocessing else None,
        torch_ctx=torch_ctx,
    )
    host = describe_host(include_gpus=target.is_gpu)
    chains = chains if chains is not None else builtin_chains(target, host.cpu_flags)
    workload = Workload(
        target=target,
        eval_store=store,
        timing_feeds=store.head(max(batch or 1, batch or THROUGHPUT_BATCH)),
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

    started = time.monotonic()
    variants = search(chains, builder, measure, options.budget_minutes, progress)
    sweep = None
    if options.prune_ratios:
        progress("pruning sweep", 0, 0)
        pruned, sweep = prune_sweep(
            builder,
            measure,
            options.prune_ratios,
            options.finetune,
            int8_scheme(host.cpu_flags).reduce_range,
            should_stop=functools.partial(_budget_spent, started, options.budget_minutes),
        )
        variants += [v for v in pruned if v not in variants]
    _warn_on_export_parity(variants, warnings)
    repairs = []
    if options.fallback:
        judge_one = functools.partial(
            judge, workload=workload, thread_options=threads, options=options
        )
        repairs = repair_outside_tolerance(
            variants, builder, judge_one, measure, options.max_excluded, progress
        )
    progress("choosing", 1, 1)
    profiles: dict[str, list[dict]] = {}

    def profile(variant: Variant) -> list[dict]:
        if variant.id not in profiles:
            profiles[variant.id] = operator_profile_of(variant, workload, options)
        return profiles[variant.id]

    for variant in variants:
        made_by = builder.made_by.get(variant.id)
        if made_by and (note := slowdown_note(variant, made_by[0], profile)):
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
            "preprocess": preprocessing,
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
    if note := noise_warning(variants):
        warnings.append(note)
    contest = None
    try:
        progress("timing the fastest head to head", 0, 0)
        contest = run_contest(variants, workload, options.measure_timeout_s)
    except IsolatedRunError as exc:
        warnings.append(
            f"the head-to-head timing failed ({exc}): the pick rests on each "
            "variant's own measurements"
        )
    chosen = pick(variants, contest)
    chosen_onnx = pick([v for v in variants if v.runtime == "onnxruntime"], contest)
    if chosen is not None and chosen.runtime == "torch":
        op_profile = torch_profile_of(chosen, torch_base, options.measure_timeout_s)
    else:
        op_profile = profile(chosen_onnx) if chosen_onnx else []
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
        eval_data=describe_evalset(store, data),
        environment=host.to_dict(),
        out_dir=out_dir,
        warnings=warnings,
        repairs=repairs,
        prune_sweep=sweep,
        op_profile=op_profile,
        chains=[{"passes": [p.label() for p in c.passes], "why": c.why} for c in chains],
        preprocessing=preprocessing.summary() if preprocessing else "",
        contest=contest,
    )
    write_outputs(results)
    # The evaluation set copies the user's data: it is a working file, not an artifact.
    shutil.rmtree(store.folder, ignore_errors=True)
    return results


def _budget_spent(started: float, budget_minutes: float | None) -> str | None:
    """Why no new work may start: the run's time budget is spent."""
    if budget_minutes and time.monotonic() - started > budget_minutes * 60:
        return f"not tried: the {budget_minutes:g}-minute budget was spent"
    return None


def _with_engine_cache(
    settings: tuple[SessionSettings, ...], target: Target, out_dir: Path
) -> tuple[SessionSettings, ...]:
    """On GPU, TensorRT engines go in the output folder, so re-runs and serving reuse them."""
    if not target.is_gpu:
        return settings
    cache = str(out_dir / "trt_engines")
    return tuple(dataclasses.replace(s, engine_cache_dir=cache) for s in settings)


def _reference(
    source: Source, batch: int, preprocessing: PreprocessSpec | None
) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    """The original model run on one batch: PyTorch for torch sources, ONNX Runtime with
    its graph optimizations off for ONNX sources; raw inputs go through the NumPy
    reference of the preprocessing first."""
    if source.model_kind == "onnx":
        settings = SessionSettings(graph_level="disabled")
        run = onnx_runner(source.path, Target("cpu"), batch, settings)
    else:
        run = functools.partial(run_torch, source.model, inputs=source.inputs)
    if preprocessing is None:
        return run
    return lambda feeds: run(apply_numpy(preprocessing, feeds))


def _metric(store: EvalStore, named: str | None) -> str | None:
    """The task metric: the one named, else the one the outputs and labels imply; none
    without labels."""
    if not store.labelled:
        return None
    if named:
        make_metric(named)  # an unknown name fails here, before any variant is built
        return named
    first = next(store.batches())
    return choose_metric(first.reference, first.labels)


def _root_id(source: Source) -> str:
    """Variant ids hash the source file and the versions of the tools that build variants,
    so a new model or a tool upgrade invalidates the cache."""
    key = json.dumps([source.source_id, package_versions()], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _warn_on_export_parity(variants: list[Variant], warnings: list[str]) -> None:
    for variant in variants:
        for step in variant.steps:
            if step.metrics.get("parity_ok") == 0.0:
                warnings.append(f"EXPORT PARITY FAILED: {step.note}")
                return
