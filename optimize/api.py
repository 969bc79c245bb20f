"""run(recipe) -> Results: the stages of a run in order, as the CLI and notebooks call it."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from hardware.targets import parse_target
from optimize.build.setup import builder_for
from optimize.choose.contest import MAX_CONTENDERS, head_to_head
from optimize.choose.screening import SCREEN_MARGIN, fastest_within_limits, worth_timing
from optimize.choose.select import choose
from optimize.config.chains import int8_scheme
from optimize.config.recipe import Recipe
from optimize.data.prepare import prepare_data
from optimize.errors import UserError
from optimize.execution import Executor, LocalExecutor
from optimize.isolation import close_warm_worker
from optimize.measure.diagnose import parity_warnings, slowdown_warnings
from optimize.measure.measurer import Measurer, noise_warning
from optimize.measure.runtime_rows import RuntimeRows
from optimize.measure.torch_rows import TorchRuns
from optimize.report.outputs import write_outputs
from optimize.report.results import Results
from optimize.search.chain_search import Deadline, search
from optimize.search.fallback import repair_outside_tolerance
from optimize.search.prune_sweep import prune_sweep
from optimize.serve.bench import sweep_pick
from optimize.serve.pick_json import ServedPick
from optimize.source.known import load_known_source
from optimize.stage_clock import StageClock
from optimize.store import check_output_folder

Progress = Callable[[str, int, int], None]


def no_progress(message: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""
    return None


def run(recipe: Recipe, progress: Progress = no_progress) -> Results:
    """Load the recipe's model, build the variants of its chains, measure each on its
    target, pick the fastest within its limits and write the output folder."""
    with ExitStack() as cleanup:
        cleanup.callback(close_warm_worker)
        return _stages(recipe, progress, cleanup)


def executor_for(recipe: Recipe, out_dir: Path) -> Executor:
    """Where the run's units execute: this machine, or the recipe's Ray cluster."""
    if recipe.cluster.address is None:
        return LocalExecutor()
    from optimize.cluster.ray_executor import RayExecutor  # Ray is an optional extra

    if recipe.serve.sweep:
        raise UserError(
            "--serve sweeps the pick on this machine, not on the cluster's: run "
            "`optimize serve-bench OUT` on a node of the hardware class after the run"
        )
    out_dir.mkdir(parents=True, exist_ok=True)  # for each node to check it sees it
    shared = [recipe.model, out_dir] + ([recipe.model_code] if recipe.model_code else [])
    return RayExecutor.connect(recipe.cluster, shared)


def _stages(recipe: Recipe, progress: Progress, cleanup: ExitStack) -> Results:
    if recipe.cluster.address is not None:
        # Units on other nodes open the files by these paths, from their own folders.
        paths = {"model": recipe.model.resolve()}
        if recipe.model_code:
            paths["model_code"] = recipe.model_code.resolve()
        recipe = recipe.model_copy(update=paths)
    deadline = Deadline(recipe.search.budget_minutes)
    clock = StageClock(progress)
    target = parse_target(recipe.target)
    out_dir = recipe.out.resolve()
    check_output_folder(out_dir)
    executor = executor_for(recipe, out_dir)
    cleanup.callback(executor.close)
    host = executor.host(target)
    with clock.stage("loading the model"):
        source = load_known_source(
            recipe.model,
            recipe.input_flags,
            recipe.trust_pickle,
            recipe.model_code,
            out_dir / "cache",
            recipe.task,
        )
    with clock.stage("reference outputs of the original model"):
        data = prepare_data(recipe, source, out_dir)
    chains = recipe.chains_to_try(host.cpu_flags)
    builder = builder_for(
        source,
        data,
        target,
        out_dir,
        recipe.search.build_timeout_s,
        on_step=lambda label: progress(f"building {label}", 0, 0),
        export=recipe.export,
        executor=executor,
    )
    measurer = Measurer.for_run(recipe, target, host, data, out_dir, executor)
    measurer.on_measure = lambda label: progress(f"screening {label}", 0, 0)
    everything = recipe.measure.time_in_full == "all"

    with clock.stage("building and screening the chains"):
        variants = search(chains, builder, measurer.screen, deadline, progress)
    sweep = None
    if recipe.prune.ratios:
        with clock.stage("pruning sweep"):
            pruned, sweep = prune_sweep(
                builder,
                measurer.screen,
                recipe.prune.ratios,
                recipe.prune.finetune,
                int8_scheme(host.cpu_flags).reduce_range,
                should_stop=deadline.reason,
            )
        variants += [v for v in pruned if v not in variants]
    other = RuntimeRows(measurer, target, host.cpu_flags)
    if recipe.measure.onnx_runtimes != ():
        # The other runtimes on the baseline first: a fast one spares repairing int8
        # variants that could no longer win.
        with clock.stage("screening the other runtimes on the baseline"):
            variants += other.measure(
                variants[:1], recipe.measure.onnx_runtimes, progress, deadline.reason
            )
    repairs = []
    if recipe.search.fallback:
        with clock.stage("accuracy fallback"):
            repairs = repair_outside_tolerance(
                variants,
                builder,
                measurer.screen,
                measurer.quantization_errors,
                recipe.search.max_excluded,
                progress,
                deadline.reason,
            )
    torch_runs = TorchRuns(source, recipe, measurer, data.preprocessing, data.calibration)
    if recipe.measure.torch_runtimes:
        with clock.stage("screening PyTorch"):
            fastest = None if everything else fastest_within_limits(variants)
            variants += torch_runs.measure_rows(
                target, host.cpu_flags, builder.root_id, progress, fastest, deadline.reason
            )
    if recipe.measure.onnx_runtimes != ():
        with clock.stage("screening the other runtimes on int8 variants"):
            variants += other.measure(
                variants, recipe.measure.onnx_runtimes, progress, deadline.reason
            )
    with clock.stage("timing the contenders in full"):
        most, margin = (len(variants), math.inf) if everything else (MAX_CONTENDERS, SCREEN_MARGIN)
        contenders = worth_timing(variants, most, margin)
        progress(f"timing {len(contenders)} contender(s) in full", 0, 0)
        measurer.time_fully(contenders, lambda: deadline.spent if deadline.reason() else None)

    with clock.stage("diagnosis"):
        warnings = data.warnings + parity_warnings(variants)
        warnings += slowdown_warnings(variants, builder.made_by, measurer.profile)
        warnings += [w for w in (noise_warning(variants), deadline.cut_warning(variants)) if w]
    with clock.stage("timing the fastest head to head"):
        contest, contest_warning = head_to_head(variants, measurer)
    warnings += contest_warning
    choice = choose(variants, contest)
    with clock.stage("profiling the pick"):
        if choice.pick is not None and choice.pick.runtime == "torch":
            op_profile = torch_runs.profile(choice.pick)
        else:
            op_profile = measurer.profile(choice.pick_onnx) if choice.pick_onnx else []

    results = Results(
        source_path=source.path,
        source_form=source.form,
        source_id=source.source_id,
        inputs=source.inputs,
        target=str(target),
        variants=variants,
        pick=choice.pick,
        pick_onnx=choice.pick_onnx,
        pareto_front=choice.front,
        tolerance=recipe.limits,
        eval_data=data.description,
        environment=host.to_dict(),
        out_dir=out_dir,
        warnings=warnings,
        repairs=repairs,
        prune_sweep=sweep,
        op_profile=op_profile,
        chains=[{"passes": [p.label() for p in c.passes], "why": c.why} for c in chains],
        preprocessing=data.preprocessing.summary() if data.preprocessing else "",
        contest=contest,
        stage_seconds=clock.seconds,
        task=recipe.task,
        finished_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        cluster=executor.summary(),
    )
    with clock.stage("writing the outputs"):
        write_outputs(results)
    if recipe.serve.sweep and results.pick is not None:
        with clock.stage("load sweep of the pick"):
            pick = ServedPick.read(out_dir)
            results.load_sweeps = sweep_pick(pick, recipe.serve, lambda m: progress(m, 0, 0))
        with clock.stage("writing the outputs with the load sweep"):
            write_outputs(results)
    return results
