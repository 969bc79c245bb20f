"""Writing a recipe back as TOML that load_recipe reads equal."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from optimize.config.recipe import Recipe
from optimize.config.validation import Section
from passes.base import Pass

SECTIONS = ("export", "data", "limits", "measure", "search", "prune", "serve")


def recipe_to_toml(recipe: Recipe, relative_to: Path | None = None) -> str:
    """The recipe as TOML that load_recipe reads back equal. Paths are written relative to
    `relative_to` (the folder the file will live in) when given, else absolute; options
    are written only where they differ from their defaults."""

    def value(v: Any) -> str:
        if isinstance(v, Path):
            return _toml(os.path.relpath(v, relative_to) if relative_to else str(v))
        return _toml(v)

    top = {"model": recipe.model, "target": recipe.target, "out": recipe.out}
    top |= _changed(recipe, ("model_code", "trust_pickle", "task", "builtin"))
    lines = [f"{k} = {value(v)}" for k, v in top.items()]
    for entry in recipe.inputs:
        lines += ["", "[[inputs]]"] + [f"{k} = {value(v)}" for k, v in _changed(entry).items()]
    for name in SECTIONS:
        changed = _changed(getattr(recipe, name))
        if changed:
            lines += ["", f"[{name}]"] + [f"{k} = {value(v)}" for k, v in changed.items()]
    if recipe.preprocess:
        lines += ["", "[preprocess]"]
        lines += [f"fit = {value(recipe.preprocess.fit)}"] if recipe.preprocess.fit else []
        lines += [f"{k} = {_toml(v)}" for k, v in recipe.preprocess.steps.to_dict().items()]
    for chain in recipe.chains:
        lines += ["", "[[chains]]", f"why = {_toml(chain.why)}", "passes = ["]
        lines += [f"  {_pass_table(p)}," for p in chain.passes] + ["]"]
    return "\n".join(lines) + "\n"


def _changed(section: Section, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The fields of `section` (or just `names`) that differ from their defaults; a
    required field always counts as changed."""
    fields = type(section).model_fields
    return {
        name: getattr(section, name)
        for name in names or tuple(fields)
        if fields[name].is_required() or getattr(section, name) != fields[name].default
    }


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
    if isinstance(value, Path):
        return _toml(str(value))
    if isinstance(value, str):
        # JSON's string escapes are TOML's, except DEL, which TOML wants escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")
