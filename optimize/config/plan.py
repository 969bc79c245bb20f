"""The --dry-run plan of a recipe: its chains, the variants to build, a time estimate."""

from __future__ import annotations

from hardware.targets import parse_target
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe

# Seconds per unit of work besides its timed loops, on a 2-core CPU with a small model
# (benchmarks/results/time_to_answer.md): starting, loading and exporting; building one
# variant in the warm worker; opening and judging a screened candidate; the fresh process
# of a full timing; the head-to-head.
START_S = 4.0
BUILD_S = 0.3
SCREEN_OVERHEAD_S = 0.1
FULL_PROCESS_S = 0.6
CONTEST_S = 2.0
# Candidates timed in full, at most (see optimize.choose.contest.MAX_CONTENDERS).
TIMED_IN_FULL = 6


def describe_plan(recipe: Recipe, chains: list[Chain], thread_settings: int | None = None) -> str:
    """What a run of `recipe` over `chains` would do, for --dry-run: each chain with its
    reason, the variants to build and a rough time estimate.

    `thread_settings` is how many thread settings each variant is timed under (default:
    the recipe's thread counts, else 2 on CPU, all cores and one, as the run does; 1 on GPU).
    """
    target = parse_target(recipe.target)
    threads = thread_settings or len(recipe.measure.threads or ()) or (1 if target.is_gpu else 2)
    lines = [f"model {recipe.model} on {target}, out {recipe.out}"]
    lines += [f"inputs: {', '.join(recipe.input_flags)}"] if recipe.inputs else []
    lines.append(f"eval data: {recipe.data.eval or 'generated inputs (no accuracy figures)'}")
    lines.append(f"calibration data: {recipe.data.calibration or 'the eval data'}")
    lines.append(f"limits: {recipe.limits.describe()}")
    if recipe.prune.ratios:
        ratios = ", ".join(f"{r:g}" for r in recipe.prune.ratios)
        tuning = f", fine-tuned by {recipe.prune.finetune}" if recipe.prune.finetune else ""
        lines.append(f"pruning sweep: ratios {ratios}{tuning}; stops at the first outside limits")
    lines.append(f"{len(chains)} chains:")
    for i, chain in enumerate(chains, 1):
        label = " → ".join(p.label() for p in chain.passes) or "baseline (the source as ONNX)"
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
    lines.append(_time_estimate(recipe, chains, measured, threads))
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """Rounded as coarsely as an estimate deserves."""
    if seconds < 90:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    return f"{round(seconds / 60)} min"


def _time_estimate(recipe: Recipe, chains: list[Chain], variants: int, threads: int) -> str:
    """The plan's time as the run spends it: every candidate screened, a few timed in full.
    Timed loops stop early once their median is known, so a full loop is counted at a
    quarter of its budget, its warm-up included."""
    measure = recipe.measure
    screen_s = min(measure.screen_seconds, measure.seconds)
    int8 = sum(any(p.portable_int8 for p in c.passes) for c in chains)
    other_rows = 2 * (1 + int8) if measure.onnx_runtimes != () else 0
    torch_rows = 1 if measure.torch_runtimes else 0
    screened = variants + other_rows + torch_rows
    loop_s = measure.seconds / 4
    full_s = FULL_PROCESS_S + threads * 2 * loop_s
    total = (
        START_S
        + variants * BUILD_S
        + screened * (screen_s + SCREEN_OVERHEAD_S)
        + TIMED_IN_FULL * full_s
        + CONTEST_S
    )
    return (
        f"time: roughly {_duration(total)}, an estimate: {screened} candidates screened "
        f"({variants} variants, {other_rows} OpenVINO rows, {torch_rows} PyTorch row) for "
        f"{screen_s:g} s each under one thread setting; up to {TIMED_IN_FULL} of them timed "
        f"in full, {threads} thread setting(s) × 2 timed loops (batch 1 and a larger batch) "
        f"≈ {full_s:.1f} s each; ~{BUILD_S:g} s to build a variant. A model slower than a "
        "few milliseconds per run adds its own time to every loop's fewest runs, and "
        "slow passes (static quantization, NNCF) on large models, torch.compile and "
        "accuracy-fallback steps come on top"
    )
