"""optimize.toml -> Recipe: the file's paths taken relative to the file, then the Recipe's
own checks; every mistake is one line naming the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optimize.config.recipe import Recipe
from optimize.config.sections import data_source
from optimize.config.validation import describe_validation_error
from optimize.errors import UserError

DEFAULT_NAME = "optimize.toml"


def base_recipe(model: Path | None, recipe: Path | None) -> Recipe:
    """The recipe a command line starts from: the file it names, else ./optimize.toml when
    it names no model, else the model with every default."""
    if recipe is None and model is None and Path(DEFAULT_NAME).is_file():
        recipe = Path(DEFAULT_NAME)
    if recipe is None and model is None:
        raise UserError(f"give a model file, or a recipe with --recipe (or an {DEFAULT_NAME} here)")
    return load_recipe(recipe) if recipe else Recipe(model=model)


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: no recipe file here; write one (see examples/optimize.toml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the recipe file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Recipe.model_validate(relative_to(data, path.absolute().parent))
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation_error(exc, Recipe)}") from None


def relative_to(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """The file's data with its paths resolved against `base`, the file's folder; values
    of the wrong kind are left for the Recipe to name."""
    data = dict(data)
    for key in ("model", "out", "model_code"):
        data[key] = _path(data.get(key), base)
    for section, keys in (("data", ("eval", "calibration")), ("preprocess", ("fit",))):
        if isinstance(data.get(section), dict):
            table = dict(data[section])
            for key in keys:
                table[key] = (
                    _data(table.get(key), base)
                    if section == "data"
                    else _path(table.get(key), base)
                )
            data[section] = {k: v for k, v in table.items() if v is not None}
    return {k: v for k, v in data.items() if v is not None}


def _path(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value
    return (base / Path(value).expanduser()).resolve()


def _data(value: Any, base: Path) -> Any:
    """A data path resolved like any path, or `module:function` whose module, when it is a
    .py file, is resolved the same way."""
    if not isinstance(value, str):
        return value
    module, _, function = value.rpartition(":")
    if isinstance(data_source(value), Path):
        return _path(value, base)
    if module.endswith(".py"):
        module = str(_path(module, base))
    return f"{module}:{function}"
