"""Running what a recipe file states: its options, its chains, and the run itself."""

from __future__ import annotations

from hardware.detect import describe_host
from hardware.profile import TimingBudget
from hardware.targets import parse_target
from optimize.api import DEFAULT_OUT, Progress, RunOptions, no_progress, run
from optimize.config.chains import Chain, builtin_chains
from optimize.config.recipe_file import Recipe
from optimize.report.results import Results


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
        prune_ratios=recipe.prune_ratios,
        finetune=recipe.finetune,
        metric=recipe.metric,
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
    progress: Progress = no_progress,
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
        preprocess=recipe.preprocess,
        preprocess_fit=recipe.preprocess_fit,
    )
