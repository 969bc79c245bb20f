"""Where a recipe's run executes: this machine, or the recipe's Ray cluster, whose nodes
open the recipe's paths made absolute."""

from __future__ import annotations

from pathlib import Path

from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.execution import Executor, LocalExecutor


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


def for_the_cluster(recipe: Recipe) -> Recipe:
    """The recipe with the paths units on other nodes open, made absolute: they resolve
    them from their own folders."""
    if recipe.cluster.address is None:
        return recipe
    paths = {"model": recipe.model.resolve()}
    if recipe.model_code:
        paths["model_code"] = recipe.model_code.resolve()
    return recipe.model_copy(update=paths)
