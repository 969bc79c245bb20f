"""Writing a recipe back as TOML that load_recipe reads equal."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from optimize.config.recipe_file import Recipe
from passes.base import Pass


def recipe_to_toml(recipe: Recipe, relative_to: Path | None = None) -> str:
    """The recipe as TOML that load_recipe reads back equal. Paths are written relative to
    `relative_to` (the folder the file will live in) when given, else absolute; pass options
    are written only where they differ from the pass's defaults."""

    def path(value: Path) -> str:
        return _toml(os.path.relpath(value, relative_to) if relative_to else str(value))

    lines = [f"model = {path(recipe.model)}", f"target = {_toml(recipe.target)}"]
    lines += [f"out = {path(recipe.out)}"] if recipe.out else []
    lines += [f"model_code = {path(recipe.model_code)}"] if recipe.model_code else []
    lines += [f"trust_pickle = {_toml(recipe.trust_pickle)}", f"builtin = {_toml(recipe.builtin)}"]
    for text in recipe.inputs:
        name, dims, *dtype = text.split(":")
        parsed = [int(d) if d.isdigit() else d for d in dims.split(",")]
        lines += ["", "[[inputs]]", f"name = {_toml(name)}", f"dims = {_toml(parsed)}"]
        lines += [f"dtype = {_toml(dtype[0])}"] if dtype else []
    data = {"eval": recipe.eval_data, "calibration": recipe.calibration_data}
    if any(data.values()) or recipe.metric:
        lines += ["", "[data]"]
        lines += [
            f"{k} = {path(v) if isinstance(v, Path) else _toml(v)}" for k, v in data.items() if v
        ]
        lines += [f"metric = {_toml(recipe.metric)}"] if recipe.metric else []
    limits = dataclasses.asdict(recipe.limits)
    lines += ["", "[limits]"] + [f"{k} = {_toml(v)}" for k, v in limits.items() if v is not None]
    lines += ["", "[measure]", f"seconds = {_toml(recipe.measure_seconds)}"]
    lines += [f"torch_runtimes = {_toml(recipe.torch_runtimes)}"]
    if recipe.prune_ratios:
        lines += ["", "[prune]", f"ratios = {_toml(list(recipe.prune_ratios))}"]
        lines += [f"finetune = {_toml(recipe.finetune)}"] if recipe.finetune else []
    if recipe.preprocess:
        lines += ["", "[preprocess]"]
        lines += [f"fit = {path(recipe.preprocess_fit)}"] if recipe.preprocess_fit else []
        lines += [f"{name} = {_toml(steps)}" for name, steps in recipe.preprocess.to_dict().items()]
    for chain in recipe.chains:
        lines += ["", "[[chains]]", f"why = {_toml(chain.why)}", "passes = ["]
        lines += [f"  {_pass_table(p)}," for p in chain.passes] + ["]"]
    return "\n".join(lines) + "\n"


def _pass_table(pass_: Pass) -> str:
    """A pass as an inline table: its name and the options that differ from the defaults."""
    defaults = {f.name: f.default for f in dataclasses.fields(pass_)}
    items = [f"pass = {_toml(pass_.name)}"] + [
        f"{k} = {_toml(v)}" for k, v in pass_.params().items() if v != defaults.get(k)
    ]
    return "{ " + ", ".join(items) + " }"


def _toml(value: Any) -> str:
    """A TOML literal for the value kinds a recipe holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # Python's int and float reprs are valid TOML, inf and nan included
    if isinstance(value, str):
        # JSON's string escapes are TOML's, except DEL, which TOML wants escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")
