"""The table of `optimize run` options: every option sets a real Recipe field, a given flag
overrides the recipe and one left out does not, and the help shows the Recipe's defaults."""

from pathlib import Path

from typer.testing import CliRunner

from optimize.cli import app
from optimize.cli_flags import RUN_FLAGS, overrides, recipe_default
from optimize.config.recipe import Recipe


def test_every_flag_names_a_field_of_the_recipe():
    recipe = Recipe(model=Path("m.onnx"))
    for flag in RUN_FLAGS:
        if flag.field is None:
            continue
        *sections, key = flag.field.split(".")
        owner = getattr(recipe, sections[0]) if sections else recipe
        assert key in type(owner).model_fields, flag.field
        recipe_default(flag.field)


def test_only_given_flags_override_the_recipe():
    defaults = {flag.param: flag.default for flag in RUN_FLAGS} | {"model": None}
    assert overrides(defaults) == {}
    given = defaults | {
        "target": "gpu",
        "eval_data": "eval.npz",
        "openvino": False,
        "remeasure": True,
        "prune_ratios": "0.2,0.4",
        "input": ["x:batch,4"],
    }
    assert overrides(given) == {
        "target": "gpu",
        "data": {"eval": "eval.npz"},
        "measure": {"left_out": ("openvino",), "reuse": False},
        "prune": {"ratios": "0.2,0.4"},
        "inputs": ["x:batch,4"],
    }
    recipe = Recipe(model=Path("m.onnx")).with_overrides(overrides(given | {"prune": True}))
    assert recipe.measure.other_runtimes() == () and recipe.prune.ratios == (0.2, 0.4)
    swept = Recipe(model=Path("m.onnx")).with_overrides(overrides(defaults | {"prune": True}))
    assert swept.prune.ratios == (0.1, 0.2, 0.3, 0.5, 0.7)


def test_the_help_shows_each_default_from_the_recipe():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for option, default in (("--target", "cpu"), ("--out", "optimized"), ("--opset", "18")):
        line = next(line for line in lines if f"│ {option} " in line)
        assert f"[default: {default}]" in line, line
