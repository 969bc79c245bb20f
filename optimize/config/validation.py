"""The base of every configuration section: strict, closed, frozen, and failing in one line.

A mistake anywhere in a recipe, whether it came from optimize.toml, a CLI flag or Python,
is a UserError naming the key ("limits.min_cosine: expected a number, got 'high'"), with
"did you mean" for a misspelt key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from optimize.errors import UserError


def above_zero(value: float) -> float:
    """`value`, when it is a finite number above 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a number above 0, got {show(value)}")
    return value


# A duration, a ceiling or a budget: a finite number above 0.
AboveZero = Annotated[float, AfterValidator(above_zero)]


class KeyedError(ValueError):
    """A validation failure below the key pydantic reports: `path` goes after its
    location (a chain's pass, an option of that pass)."""

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message


class SectionError(UserError):
    """A section built on its own (in Python) failed its checks; inside a larger section
    it reports its key path, so the outer message names the whole location."""

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        super().__init__(f"{location(path)}: {message}")
        self.path = tuple(path)
        self.message = message


class Section(BaseModel):
    """A part of the recipe. Unknown keys are refused, values are not converted between
    kinds (a TOML string is no number), and a bad value raises UserError."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SectionError(*first_problem(exc, type(self))) from None


def describe_validation_error(
    exc: ValidationError, model: type[BaseModel], names: dict[str, str] | None = None
) -> str:
    """The first problem of a validation error as one line: "where: what". `names` renames
    locations (a CLI flag for the key it sets)."""
    loc, message = first_problem(exc, model)
    where = location(loc)
    return f"{(names or {}).get(where, where)}: {message}"


def first_problem(exc: ValidationError, model: type[BaseModel]) -> tuple[list[str | int], str]:
    """Where the first problem of a validation error is, and what it is."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, (KeyedError, SectionError)):
        return loc + list(cause.path), cause.message
    return loc, _problem(error, loc, model, cause)


def location(loc: Iterable[str | int]) -> str:
    """A key path as a recipe names it: `chains[1].passes[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known word, or ''."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show(value: Any) -> str:
    """A value as a message shows it: strings quoted, containers by their kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    return repr(value) if isinstance(value, str) else str(value)


EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "an array",
    "tuple_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
    "dataclass_type": "a table",
    "path_type": "a path",
    "finite_number": "a finite number",
}


def _problem(error: dict[str, Any], loc: list[str | int], model: type, cause: Any) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(cause)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        known = list(_fields_at(model, loc[:-1]))
        return f"unknown key{did_you_mean(str(loc[-1]), known)}; known: {', '.join(known)}"
    if kind in EXPECTED:
        value = error["input"]
        if kind in ("list_type", "tuple_type") and _is_table_list(model, loc):
            return f"expected an array of tables ([[{loc[-1]}]]), got {show(value)}"
        return f"expected {EXPECTED[kind]}, got {show(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"expected a number {error['msg'].removeprefix('Input should be ')}, got {show(error['input'])}"
    return f"{error['msg']}, got {show(error.get('input'))}"


def _field_type(model: Any, loc: list[str | int]) -> Any:
    """The type hint a location points at, walking sections, lists and optionals."""
    hint: Any = model
    for part in loc:
        hint = _unwrap(hint)
        if isinstance(part, int):
            args = typing.get_args(hint)
            hint = args[0] if args else Any
        elif isinstance(hint, type) and issubclass(hint, BaseModel) and part in hint.model_fields:
            hint = hint.model_fields[part].annotation
        else:
            return Any
    return hint


def _unwrap(hint: Any) -> Any:
    """The one non-None member of an optional hint, or the hint."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else hint
    return hint


def _fields_at(model: type, loc: list[str | int]) -> Iterable[str]:
    hint = _unwrap(_field_type(model, loc))
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint.model_fields
    return ()


def _is_table_list(model: type, loc: list[str | int]) -> bool:
    item = typing.get_args(_unwrap(_field_type(model, loc)))
    first = item[0] if item else None
    if typing.get_origin(first) is typing.Annotated:
        first = typing.get_args(first)[0]
    return isinstance(first, type) and (
        issubclass(first, BaseModel) or dataclasses.is_dataclass(first)
    )
