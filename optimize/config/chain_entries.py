"""Chains as a recipe writes them ({why, passes = [{pass = NAME, option = value}, ...]})
read into Chain values, every option checked against the pass's own field types."""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from optimize.config.chains import Chain
from optimize.config.validation import EXPECTED, KeyedError, did_you_mean, show
from passes.base import Pass
from passes.registry import CHAINABLE, PASSES

CHAIN_KEYS = ("why", "passes")


def chain_from_entry(entry: Any) -> Chain:
    """A Chain as given (Python), or read from its table form (a recipe file)."""
    if isinstance(entry, Chain):
        return entry
    if not isinstance(entry, dict):
        raise KeyedError((), f"expected a table with why and passes, got {show(entry)}")
    for key in entry:
        if key not in CHAIN_KEYS:
            known = ", ".join(CHAIN_KEYS)
            raise KeyedError((key,), f"unknown key{did_you_mean(key, CHAIN_KEYS)}; known: {known}")
    if "why" not in entry:
        raise KeyedError(("why",), "required key is missing (say why the chain is worth trying)")
    if "passes" not in entry:
        raise KeyedError(
            ("passes",), 'required key is missing (e.g. passes = [{pass = "ort_graph"}])'
        )
    why = _typed(entry["why"], str, ("why",))
    passes = _typed(entry["passes"], list[Any], ("passes",))
    return Chain(tuple(pass_from_entry(p, ("passes", i)) for i, p in enumerate(passes)), why)


def pass_from_entry(entry: Any, where: tuple[str | int, ...] = ()) -> Pass:
    """A pass as given, or from a bare name or a {pass = NAME, option = value} table."""
    if isinstance(entry, Pass):
        return entry
    if isinstance(entry, str):
        entry = {"pass": entry}  # a bare name is the pass with its default options
    if not isinstance(entry, dict):
        raise KeyedError(where, f'expected a table like {{pass = "ort_graph"}}, got {show(entry)}')
    if "pass" not in entry:
        raise KeyedError((*where, "pass"), "required key is missing (the pass name)")
    name = _typed(entry["pass"], str, (*where, "pass"))
    if name in PASSES and name not in CHAINABLE:
        raise KeyedError(where, f"{name} runs before every chain by itself; leave it out")
    if name not in CHAINABLE:
        known = ", ".join(sorted(CHAINABLE))
        raise KeyedError(
            where, f"unknown pass {show(name)}{did_you_mean(name, CHAINABLE)}; known: {known}"
        )
    cls = CHAINABLE[name]
    hints = typing.get_type_hints(cls)
    fields = tuple(f.name for f in dataclasses.fields(cls))
    options = {k: v for k, v in entry.items() if k != "pass"}
    for key in options:
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise KeyedError(
                (*where, key),
                f"unknown option of {name}{did_you_mean(key, fields)}; known: {known}",
            )
    typed = {k: _typed(v, hints[k], (*where, k)) for k, v in options.items()}
    try:
        return cls(**typed)
    except ValueError as exc:  # the pass's own __post_init__ checks
        raise KeyedError(where, str(exc)) from None


@functools.cache
def _adapter(hint: Any) -> TypeAdapter:
    return TypeAdapter(hint, config=ConfigDict(strict=True))


def _typed(value: Any, hint: Any, where: tuple[str | int, ...]) -> Any:
    """`value` checked against `hint` without conversion, except arrays to tuples and
    integers to floats, as a TOML file cannot say otherwise."""
    try:
        return _adapter(hint).validate_python(_tuples(value, hint))
    except ValidationError as exc:
        error = exc.errors()[0]
        expected = EXPECTED.get(error["type"], error["msg"])
        raise KeyedError(
            (*where, *error["loc"]), f"expected {expected}, got {show(error['input'])}"
        ) from None


def _tuples(value: Any, hint: Any) -> Any:
    """TOML arrays are lists; a pass field typed as a tuple takes them as one."""
    if isinstance(value, list) and typing.get_origin(hint) is tuple:
        return tuple(value)
    return value
