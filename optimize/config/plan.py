"""The --dry-run plan of a recipe: its chains, the variants to build, a time estimate."""

from __future__ import annotations

from hardware.targets import parse_target
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe

# Building, loading and checking one variant, besides its timed loops: an estimate.
VARIANT_OVERHEAD_S = 5.0


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
    # As the run times them: under each thread setting, a batch-1 and a throughput loop,
    # each warming up for min(0.2 s, half the measure time) before the timed part.
    warmup = recipe.measure.budget().warmup_s
    per_variant = threads * 2 * (recipe.measure.seconds + warmup) + VARIANT_OVERHEAD_S
    lines.append(
        f"time: roughly {_duration(measured * per_variant)}, an estimate assuming each variant "
        f"takes {threads} thread setting(s) × 2 timed loops (batch 1 and a larger batch) × ({recipe.measure.seconds:g} s + "
        f"{warmup:g} s warm-up) + ~{VARIANT_OVERHEAD_S:g} s to build, load and check it "
        f"≈ {per_variant:.1f} s; slow passes on large models, the export, PyTorch runtime "
        f"rows and accuracy-fallback steps come on top"
    )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """Rounded as coarsely as an estimate deserves."""
    if seconds < 90:
        return f"{max(10, round(seconds, -1)):.0f} s"
    return f"{round(seconds / 60)} min"
