"""run(recipe) -> Results: the stages of a run in order, as the CLI and notebooks call it."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from hardware.detect import HostInfo, check_target, describe_host
from hardware.runtimes.registry import runtime
from hardware.targets import Target, parse_target
from optimize.build.builder import VariantBuilder
from optimize.build.setup import builder_for
from optimize.build.variant import Candidate, Variant
from optimize.choose.contest import head_to_head
from optimize.choose.full_timing import settle_race, time_contenders
from optimize.choose.objective import RankKey, rank_key
from optimize.choose.screening import fastest_within_limits
from optimize.choose.select import choose
from optimize.cluster.hardware_class import class_id
from optimize.cluster.placement import executor_for, for_the_cluster
from optimize.config.chains import Chain, int8_scheme
from optimize.config.plan import describe_plan
from optimize.config.recipe import Recipe
from optimize.data.prepare import RunData, prepare_data
from optimize.data.text_data import prepare_text_data
from optimize.errors import UserError
from optimize.execution import UNIT_IMPORTS, Executor
from optimize.isolation import close_warm_worker
from optimize.measure.diagnose import (
    load_warning,
    noise_warning,
    parity_warnings,
    slowdown_warnings,
)
from optimize.measure.measurer import Measurer
from optimize.measure.pick_profile import profile, profile_pick
from optimize.measure.probe import probe_model
from optimize.measure.quant_errors import node_errors
from optimize.measure.runtime_rows import FileRows, RowMaker
from optimize.measure.torch_rows import TorchRuns
from optimize.report.outputs import write_outputs
from optimize.report.results import Results
from optimize.search.chain_search import Deadline, search
from optimize.search.expected_gain import (
    expected_gain_order,
    observed_gains,
    read_gains,
    remember_gains,
)
from optimize.search.fallback import repair_outside_tolerance
from optimize.search.found import Found
from optimize.search.prune_sweep import prune_sweep
from optimize.serve.bench import sweep_pick
from optimize.serve.pick_json import ServedPick
from optimize.source.known import load_known_source
from optimize.source.load import Source, SourceSpec
from optimize.stage_clock import StageClock
from optimize.store import check_output_folder, remove_unfinished_writes, run_temp_folder

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


def dry_run(recipe: Recipe) -> str:
    """The plan of a run of `recipe`, checked as the run would check it (the target, the
    model loaded), without building anything or writing to its output folder."""
    check_target(parse_target(recipe.target))
    # A GGUF source is dequantized to be probed: into a folder of its own, not --out.
    with tempfile.TemporaryDirectory() as scratch:
        spec = dataclasses.replace(SourceSpec.from_recipe(recipe), cache_dir=Path(scratch))
        probe = probe_model(spec, recipe.data)
    host = describe_host(include_gpus=False)
    chains = _ordered_chains(recipe, host, probe.generative)
    return describe_plan(recipe, chains, probe)


def _ordered_chains(recipe: Recipe, host: HostInfo, generative: bool) -> list[Chain]:
    """The chains to try, in the order of their expected speed-up on `host`."""
    chains = recipe.chains_to_try(host.cpu_flags, generative)
    return expected_gain_order(chains, host.cpu_flags, read_gains(class_id(host)))


@dataclass
class RunContext:
    """What the stages of one run share: where it runs and writes, its clock and budget."""

    recipe: Recipe
    target: Target
    out_dir: Path
    executor: Executor
    host: HostInfo
    clock: StageClock
    deadline: Deadline
    progress: Progress
    warnings: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        """A progress line with no count."""
        self.progress(message, 0, 0)


def _stages(recipe: Recipe, progress: Progress, cleanup: ExitStack) -> Results:
    run = _start(for_the_cluster(recipe), progress, cleanup)
    clock = run.clock
    with clock.stage("loading the model"):
        source = load_known_source(SourceSpec.from_recipe(run.recipe), run.out_dir / "cache")
    key = _rank_key(run.recipe, source)
    with clock.stage("reference outputs of the original model"):
        data = _prepare_data(run, source)
    chains = _ordered_chains(run.recipe, run.host, source.generative)
    builder = _builder(run, source, data)
    measurer = Measurer.for_run(
        run.recipe.measure, run.recipe.limits, run.target, run.host, data, run.out_dir, run.executor
    )
    measurer.on_measure = lambda label: run.say(f"screening {label}")
    found = _candidates(run, chains, source, data, builder, measurer)
    deadline = run.deadline
    with clock.stage("timing the contenders in full"):
        racing = time_contenders(
            found.variants,
            measurer,
            deadline.untimed,
            deadline.seconds_left,
            _everything(run.recipe),
            run.say,
            key,
        )
    with clock.stage("diagnosis"):
        warnings = data.warnings + _diagnosis(run, found.variants, builder, measurer)
    with clock.stage("timing the fastest head to head"):
        contest, contest_warning = head_to_head(found.variants, measurer)
        settle_race(racing, contest, measurer, deadline.untimed)
    choice = choose(found.variants, contest, key)
    baseline = found.variants[0]
    if isinstance(baseline, Variant):
        remember_gains(class_id(run.host), observed_gains(chains, baseline, found.variants))
    with clock.stage("profiling the pick"):
        op_profile = profile_pick(measurer, choice.pick, choice.pick_onnx)
    results = Results.of(
        source,
        run.recipe,
        found,
        choice,
        contest=contest,
        warnings=warnings + contest_warning,
        eval_data=data.description,
        environment=run.host.to_dict(),
        out_dir=run.out_dir,
        op_profile=op_profile,
        chains=chains,
        preprocessing=data.preprocessing,
        stage_seconds=clock.seconds,
        cluster=run.executor.summary(),
    )
    return _write(run, results)


def _start(recipe: Recipe, progress: Progress, cleanup: ExitStack) -> RunContext:
    """The run's context: its folder checked, its executor and host, its clock and budget."""
    out_dir = recipe.out.resolve()
    check_output_folder(out_dir)
    remove_unfinished_writes(out_dir)
    # Before a runtime is imported (they write temporary files then); removed last.
    cleanup.enter_context(run_temp_folder(out_dir / "cache"))
    executor = executor_for(recipe, out_dir)
    cleanup.callback(executor.close)
    executor.prepare(UNIT_IMPORTS)
    target = parse_target(recipe.target)
    return RunContext(
        recipe,
        target,
        out_dir,
        executor,
        executor.host(target),
        StageClock(progress),
        Deadline(recipe.search.budget_minutes),
        progress,
    )


def _prepare_data(run: RunContext, source: Source) -> RunData:
    """The run's evaluation data: windows of text for a language model, model inputs for
    any other."""
    if source.generative:
        if run.target.is_gpu:
            raise UserError(
                "language models are measured on the CPU only (their runtimes here are CPU "
                "builds): use --target cpu"
            )
        return prepare_text_data(source, run.recipe.data, run.out_dir)
    return prepare_data(source, run.recipe.data, run.recipe.preprocess, run.out_dir)


def _builder(run: RunContext, source: Source, data: RunData) -> VariantBuilder:
    return builder_for(
        source,
        data,
        run.target,
        run.out_dir,
        run.recipe.search.build_timeout_s,
        on_step=lambda label: run.say(f"building {label}"),
        export=run.recipe.export,
        executor=run.executor,
    )


def _candidates(
    run: RunContext,
    chains: list[Chain],
    source: Source,
    data: RunData,
    builder: VariantBuilder,
    measurer: Measurer,
) -> Found:
    """Every candidate built and screened: the baseline, the runtimes that take ONNX files
    on it, the chains (`chains` comes most expected gain first, each int8 variant in those
    runtimes too), the pruning sweep, the accuracy fallback, then each runtime beside ONNX
    Runtime on what it runs, in the registry's order (a fast runtime spares repairing
    variants that could no longer win)."""
    recipe, clock, stop = run.recipe, run.clock, run.deadline.reason
    confirm = measurer.rescreen
    # The other runtimes see the baseline first: OpenVINO in bf16 or int8 is often the
    # largest gain on a CPU, and a budget should not run out before it is tried.
    with clock.stage("building and screening the baseline"):
        variants = search(chains[:1], builder, measurer.screen, run.deadline, confirm=confirm)
    rows = _row_makers(run, source, data, builder, measurer)
    # A language model's runtimes each take their own export, made by its chains.
    beside = () if source.generative else recipe.measure.runtimes_beside_onnxruntime()
    others = [runtime(name) for name in beside]
    if on_files := [found for found in others if found.takes == "onnx"]:
        with clock.stage("screening the other runtimes on the baseline"):
            for found in on_files:
                variants += rows[found.takes].measure(found, variants[:1], run.progress, stop)
    beside: list[Candidate] = []

    def screen_everywhere(variant: Variant) -> None:
        # A portable int8 variant goes to those runtimes as soon as it is screened:
        # OpenVINO's int8 is often the largest gain, and a budget may end before the chains.
        measurer.screen(variant)
        for found in on_files:
            beside.extend(rows["onnx"].measure(found, [variants[0], variant], run.progress, stop))

    with clock.stage("building and screening the chains"):
        chained = search(chains, builder, screen_everywhere, run.deadline, run.progress, confirm)
        variants += [v for v in chained if v not in variants] + beside
    sweep = None
    if recipe.prune.ratios and not source.generative:
        with clock.stage("pruning sweep"):
            reduce_range = int8_scheme(run.host.cpu_flags).reduce_range
            pruned, sweep = prune_sweep(
                builder,
                measurer.screen,
                recipe.prune.ratios,
                recipe.prune.finetune,
                reduce_range,
                should_stop=stop,
            )
        variants += [v for v in pruned if v not in variants]
    repairs = []
    if recipe.search.fallback:
        with clock.stage("accuracy fallback"):
            repairs = repair_outside_tolerance(
                variants,
                builder,
                measurer.screen,
                partial(node_errors, measurer),
                recipe.search.max_excluded,
                run.progress,
                stop,
            )
    for found in others:
        with clock.stage(f"screening {found.name}"):
            variants += rows[found.takes].measure(found, variants, run.progress, stop)
    return Found(variants, repairs, sweep)


def _row_makers(
    run: RunContext, source: Source, data: RunData, builder: VariantBuilder, measurer: Measurer
) -> dict[str, RowMaker]:
    """What makes a runtime's rows, by what the runtime takes: the tool's ONNX files, or
    the PyTorch source itself."""
    files = FileRows(measurer, run.target, run.host.cpu_flags)
    torch = TorchRuns(
        source,
        measurer,
        run.target,
        run.host.cpu_flags,
        builder.root_id,
        data.preprocessing,
        data.calibration,
        fastest_of=(lambda candidates: None) if _everything(run.recipe) else fastest_within_limits,
    )
    return {"onnx": files, "torch": torch}


def _rank_key(recipe: Recipe, source: Source) -> RankKey:
    """What the candidates are ranked by: a language model's objective, else latency."""
    if recipe.objective is not None and not source.generative:
        raise UserError(
            f"--objective {recipe.objective} is for language models, and {source.path.name} "
            "is not one: leave it out, and the pick is the fastest by batch-1 latency"
        )
    return rank_key(recipe.objective if source.generative else None)


def _everything(recipe: Recipe) -> bool:
    """Whether every candidate is timed in full, however far behind it screened."""
    return recipe.measure.time_in_full == "all"


def _diagnosis(
    run: RunContext, variants: list[Candidate], builder: VariantBuilder, measurer: Measurer
) -> list[str]:
    """What the run warns about the candidates: parity, slowdowns, noise, a busy machine,
    the budget."""
    warnings = parity_warnings(variants)
    warnings += slowdown_warnings(variants, builder.made_by, partial(profile, measurer))
    cut = run.deadline.cut_warning(variants)
    return warnings + [w for w in (noise_warning(variants), load_warning(variants), cut) if w]


def _write(run: RunContext, results: Results) -> Results:
    """Write the output folder; with a load sweep asked for, sweep the pick and write it
    again with the sweep."""
    with run.clock.stage("writing the outputs"):
        write_outputs(results)
    if run.recipe.serve.sweep and results.pick is not None:
        with run.clock.stage("load sweep of the pick"):
            pick = ServedPick.read(run.out_dir)
            results.load_sweeps, results.stream_sweep = sweep_pick(pick, run.recipe.serve, run.say)
        with run.clock.stage("writing the outputs with the load sweep"):
            write_outputs(results)
    return results
