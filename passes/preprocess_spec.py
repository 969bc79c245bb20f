"""Preprocessing specs: steps per model input, parsed from a recipe, fitted on data, run in NumPy."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hardware.errors import UserError
from passes.base import TensorSpec
from passes.preprocess_steps import LAYOUTS, RAW_DTYPES, STEPS, Layout, OneHot, Step, is_fitted

# Recipe keys that are Python keywords, and the field each one fills.
KEY_ALIASES = {"with": "strategy"}
FIELD_KEYS = {field: key for key, field in KEY_ALIASES.items()}


@dataclass(frozen=True)
class PreprocessSpec:
    """Ordered steps per model input; the raw input of the same name feeds the steps."""

    inputs: tuple[tuple[str, tuple[Step, ...]], ...]

    def steps(self) -> dict[str, tuple[Step, ...]]:
        """Input name -> its steps."""
        return dict(self.inputs)

    def unfitted(self) -> list[str]:
        """'input: step' for every step still missing a statistic."""
        return [f"{n}: {s.step}" for n, steps in self.inputs for s in steps if not is_fitted(s)]

    def summary(self) -> str:
        """e.g. 'x: replace_invalid, standardize; cat: one_hot'."""
        return "; ".join(f"{n}: {', '.join(s.step for s in st)}" for n, st in self.inputs)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """The spec as plain JSON-able data that `parse_preprocessing` reads back."""
        return {name: [_step_dict(s) for s in steps] for name, steps in self.inputs}

    def to_json(self) -> str:
        """Compact JSON with sorted keys: the same spec always gives the same text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _step_dict(step: Step) -> dict[str, Any]:
    options = {
        FIELD_KEYS.get(k, k): _lists(v)
        for k, v in dataclasses.asdict(step).items()
        if v is not None
    }
    return {"step": step.step, **options}


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def parse_preprocessing(table: dict[str, Any]) -> PreprocessSpec:
    """Read {input name: [{"step": name, option: value, ...}, ...]} as a recipe gives it."""
    if not isinstance(table, dict):
        raise UserError(f"preprocess must map input names to lists of steps, got {table!r}")
    return PreprocessSpec(tuple((name, _parse_steps(name, steps)) for name, steps in table.items()))


def _parse_steps(name: str, entries: Any) -> tuple[Step, ...]:
    if not isinstance(entries, (list, tuple)) or not entries:
        raise UserError(f"preprocess '{name}': give a non-empty list of steps, got {entries!r}")
    return tuple(_parse_step(name, i, entry) for i, entry in enumerate(entries))


def _parse_step(name: str, index: int, entry: Any) -> Step:
    if not isinstance(entry, dict) or "step" not in entry:
        raise UserError(f"preprocess '{name}': each step needs a 'step' key, got {entry!r}")
    cls = STEPS.get(entry["step"])
    if cls is None:
        choices = ", ".join(STEPS)
        raise UserError(
            f"preprocess '{name}': unknown step '{entry['step']}'; use one of {choices}"
        )
    where = f"preprocess '{name}', step '{entry['step']}'"
    valid = [FIELD_KEYS.get(f.name, f.name) for f in dataclasses.fields(cls)]
    options = {k: v for k, v in entry.items() if k != "step"}
    for key in options:
        if key not in valid:
            raise UserError(f"{where}: unknown option '{key}'; valid options: {', '.join(valid)}")
    if index > 0 and cls in RAW_DTYPES:
        raise UserError(f"{where}: must be the first step, as it reads the raw integer data")
    try:
        return cls(**{KEY_ALIASES.get(k, k): v for k, v in options.items()})
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def fit(spec: PreprocessSpec, data: dict[str, np.ndarray]) -> PreprocessSpec:
    """Fill every unset statistic from raw `data` (input name -> array), each step fitted on
    the output of the steps before it; invalid values (NaN, ±inf) never count."""
    inputs = []
    for name, steps in spec.inputs:
        if all(map(is_fitted, steps)):
            inputs.append((name, steps))
            continue
        if name not in data:
            raise UserError(f"preprocess '{name}': no data to fit it on; have {', '.join(data)}")
        x, fitted = data[name], []
        for step in steps:
            fitted.append(step if is_fitted(step) else step.fit(x))
            x = fitted[-1].apply_numpy(x)
        inputs.append((name, tuple(fitted)))
    return PreprocessSpec(tuple(inputs))


def read_fit_data(path: Path) -> dict[str, np.ndarray]:
    """Raw data to fit on, from an .npz file holding one array per input name."""
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}


def apply_numpy(spec: PreprocessSpec, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference: raw feeds -> model feeds; inputs the spec does not name pass through."""
    out = dict(feeds)
    for name, steps in spec.inputs:
        x = feeds[name]
        for step in steps:
            x = step.apply_numpy(x)
        out[name] = x
    return out


def raw_input_specs(spec: PreprocessSpec, inputs: list[TensorSpec]) -> list[TensorSpec]:
    """The raw inputs that feed a model with `inputs` through the spec: same names, with the
    dtype and dims the first step reads (e.g. int64 [batch, columns] for one_hot)."""
    by_name, raw = spec.steps(), []
    for model_input in inputs:
        steps = by_name.get(model_input.name)
        if steps is None:
            raw.append(model_input)
            continue
        dims = model_input.dims
        for step in reversed(steps):
            if isinstance(step, Layout):
                perm = LAYOUTS[step.order]
                dims = tuple(dims[perm.index(i)] for i in range(len(dims)))
            elif isinstance(step, OneHot):
                dims = (dims[0], len(step.categories) if step.categories else "columns")
        raw.append(TensorSpec(model_input.name, dims, RAW_DTYPES.get(type(steps[0]), "float32")))
    return raw
