"""The --dry-run plan of a recipe: its chains, the variants to build, a time estimate."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.profile import TimingBudget
from hardware.targets import parse_target
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe

# The estimate's costs on a 2-core CPU, fitted to the digits CNN, MiniLM and ResNet-18 runs
# of benchmarks/results/time_to_answer.md, in seconds: starting the process and writing the
# outputs; loading the model; exporting it, and per MB of it; building a variant, and per
# MB; opening and judging a candidate (its sessions, its fidelity), and per MB; the fresh
# process of a full timing; the head-to-head.
START_S = 3.0
LOAD_S = 2.0
EXPORT_S, EXPORT_S_PER_MB = 1.2, 0.064
BUILD_S, BUILD_S_PER_MB = 0.15, 0.012
OPEN_S, OPEN_S_PER_MB = 0.2, 0.025
FULL_PROCESS_S = 0.6
CONTEST_S = 1.0
# A calibrating pass (static int8, NNCF) takes about this many runs per calibration sample:
# it runs an instrumented model and then histograms what it saw.
CALIBRATION_RUNS = 3
# ONNX Runtime runs an exported model in about a third of PyTorch eager's single-thread
# time (MiniLM 10.5 vs 31.8 ms, ResNet-18 8.1 vs 27.6 ms per sample).
ORT_SHARE_OF_EAGER = 0.33
# Candidates timed in full: the fastest and commonly one rival within the margin; up to
# optimize.choose.contest.MAX_CONTENDERS when many tie (tiny models, where noise is wide).
TIMED_IN_FULL = 2


@dataclass(frozen=True)
class ModelProbe:
    """What the estimate knows of the model (optimize.measure.probe): its size on disk,
    one sample's time in its own runtime, whether it is exported first, and how many
    samples every candidate is evaluated on and static quantization calibrates on."""

    size_mb: float
    sample_ms: float
    exported: bool
    eval_samples: int
    calibration_samples: int
    throughput_batch: int
    # A language model, searched by its generative chains.
    generative: bool = False


def describe_plan(
    recipe: Recipe, chains: list[Chain], probe: ModelProbe, thread_settings: int | None = None
) -> str:
    """What a run of `recipe` over `chains` would do, for --dry-run: each chain with its
    reason, the variants to build and a time estimate from the `probe` of the model.

    `thread_settings` is how many settings each variant is timed under (default, as the run
    does: on CPU the recipe's thread counts, else all cores and one, and ONNX Runtime's
    portable graph level; 1 on GPU).
    """
    target = parse_target(recipe.target)
    counts = len(recipe.measure.threads or ()) or 2
    threads = thread_settings or (1 if target.is_gpu else counts + 1)
    lines = [f"model {recipe.model} on {target}, out {recipe.out}"]
    lines += [f"inputs: {', '.join(recipe.input_flags)}"] if recipe.inputs else []
    lines += _data_lines(recipe, probe.generative)
    if recipe.prune.ratios:
        ratios = ", ".join(f"{r:g}" for r in recipe.prune.ratios)
        tuning = f", fine-tuned by {recipe.prune.finetune}" if recipe.prune.finetune else ""
        lines.append(f"pruning sweep: ratios {ratios}{tuning}; stops at the first outside limits")
    lines.append(f"{len(chains)} chains:")
    for i, chain in enumerate(chains, 1):
        baseline = "the model in transformers" if probe.generative else "the source as ONNX"
        label = " → ".join(p.label() for p in chain.passes) or f"baseline ({baseline})"
        origin = "recipe" if chain in recipe.chains else "built-in"
        lines.append(f"  {i:2}. {label}  [{origin}]")
        lines.append(f"      {chain.why}")
    # Every prefix of every chain is a variant (the run shares equal prefixes); the baseline
    # is always one. A prefix with a pass the target cannot use is skipped, not measured.
    prefixes = {c.passes[:n] for c in chains for n in range(1, len(c.passes) + 1)}
    skipped = {p for p in prefixes if any(s.unsupported(target) for s in p)}
    measured = 1 + len(prefixes) - len(skipped)
    lines.append(
        f"variants: {measured} to build and measure (every distinct prefix of the chains, "
        f"baseline included)" + (f", {len(skipped)} skipped on {target}" if skipped else "")
    )
    for pass_ in sorted({s for p in skipped for s in p if s.unsupported(target)}, key=str):
        lines.append(f"  skipped: {pass_.label()}: {pass_.unsupported(target)}")
    built = list(prefixes - skipped)
    if probe.generative:
        lines.append(
            "time: not estimated for a language model (its exports take minutes, its "
            "measurements seconds per candidate); benchmarks/results/generative.md has a run"
        )
    else:
        lines.append(_time_estimate(recipe, built, probe, threads))
    return "\n".join(lines)


def _data_lines(recipe: Recipe, generative: bool) -> list[str]:
    """What the run judges candidates on and against."""
    if generative:
        return [
            f"eval text: {recipe.data.eval or 'the bundled sample text'}",
            f"limits: perplexity at most +{recipe.limits.max_perplexity_increase:g}% of the "
            "original's",
        ]
    return [
        f"eval data: {recipe.data.eval or 'generated inputs (no accuracy figures)'}",
        f"calibration data: {recipe.data.calibration or 'the eval data'}",
        f"limits: {recipe.limits.describe()}",
        f"export of a PyTorch model: exporter {recipe.export.exporter}, opset "
        f"{recipe.export.opset}",
    ]


def _duration(seconds: float) -> str:
    """Rounded as coarsely as an estimate deserves."""
    if seconds < 90:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    if seconds < 600:
        return f"{round(seconds / 30) / 2:g} min"
    return f"{round(seconds / 60)} min"


def _time_estimate(recipe: Recipe, built: list[tuple], probe: ModelProbe, threads: int) -> str:
    """The run's time as it spends it, from the model's size and speed: exporting, building
    each variant (calibrating ones on every calibration sample), screening every candidate
    (opening it, its fidelity on every evaluation sample, a short timing), a few timed in
    full, the head-to-head; bounded by the budget."""
    measure = recipe.measure
    sample_s = probe.sample_ms / 1000 * (ORT_SHARE_OF_EAGER if probe.exported else 1.0)
    open_s = OPEN_S + OPEN_S_PER_MB * probe.size_mb
    start_s = START_S + LOAD_S + probe.eval_samples * probe.sample_ms / 1000
    if probe.exported:
        start_s += EXPORT_S + EXPORT_S_PER_MB * probe.size_mb
    calibrating = [p for p in built if p[-1].calibrates]
    build_s = len(built) * (BUILD_S + BUILD_S_PER_MB * probe.size_mb)
    build_s += len(calibrating) * CALIBRATION_RUNS * probe.calibration_samples * sample_s
    # OpenVINO runs the baseline in two precisions; its rows on the int8 variants that meet
    # the limits are left out, since only the run knows which do.
    other_rows = 2 if measure.onnx_runtimes != () else 0
    torch_rows = 1 if measure.torch_runtimes and probe.exported else 0
    screened = 1 + len(built) + other_rows + torch_rows
    screen_s = screened * (
        open_s + probe.eval_samples * sample_s + _loop_s(measure.screen_budget(), sample_s)
    )
    full_budget = measure.budget()
    one_full_s = (
        FULL_PROCESS_S
        + open_s
        + threads
        * (_loop_s(full_budget, sample_s) + _loop_s(full_budget, sample_s * probe.throughput_batch))
    )
    total = start_s + build_s + screen_s + TIMED_IN_FULL * one_full_s + CONTEST_S
    bounded = ""
    if recipe.search.budget_minutes is not None and total > 60 * recipe.search.budget_minutes:
        total = 60 * recipe.search.budget_minutes
        bounded = f", bounded by the budget of {recipe.search.budget_minutes:g} min"
    return (
        f"time: roughly {_duration(total)}{bounded}, an estimate from one sample's "
        f"{probe.sample_ms:.2f} ms in {'PyTorch' if probe.exported else 'ONNX Runtime'} and "
        f"{probe.size_mb:.1f} MB: {len(built)} variants built, {screened:.0f} candidates "
        f"screened ({other_rows} OpenVINO rows, {torch_rows} PyTorch row) on "
        f"{probe.eval_samples} evaluation samples each; about {TIMED_IN_FULL} of them timed in "
        f"full, {threads} setting(s) × 2 timed loops (batch 1 and "
        f"{probe.throughput_batch}) ≈ {one_full_s:.1f} s each. OpenVINO on int8 variants "
        "that meet the limits, more candidates tying for the lead, torch.compile and "
        "accuracy-fallback steps, when they run, come on top"
    )


def _loop_s(budget: TimingBudget, run_s: float) -> float:
    """How long a timed loop takes at `run_s` per run: its warm-up, then at least its
    fewest runs, and commonly a quarter of its budget before its median is stable."""
    warm_up = max(budget.warmup_runs * run_s, budget.warmup_s)
    return warm_up + max(budget.min_runs * run_s, budget.measure_s / 4)
