"""Model inputs for measuring: real ones from an evaluation .npz, or generated from the spec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from optimize.errors import OptimizeError
from passes.base import DTYPES, TensorSpec

if TYPE_CHECKING:
    from optimize.load import Source

LABELS_KEY = "labels"
GENERATED_SAMPLES = 64


@dataclass
class EvalSet:
    """Inputs (batch first, one array per model input), optional labels, and whether the
    inputs were generated rather than real."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None
    synthetic: bool

    def __len__(self) -> int:
        return int(next(iter(self.feeds.values())).shape[0])


def generate_inputs(specs: list[TensorSpec], count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs: standard normal for floats, small non-negative integers for ints
    (safe as indices into any embedding), random booleans."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = spec.concrete_shape(batch=count)
        dtype = DTYPES[spec.dtype]
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def load_eval_npz(path: Path, specs: list[TensorSpec]) -> EvalSet:
    """Read an .npz holding one array per model input (named as the inputs) and, optionally,
    `labels`."""
    if not path.is_file():
        raise OptimizeError(f"evaluation data not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OptimizeError(f"{path} is not a readable .npz file ({exc})") from exc
    missing = [s.name for s in specs if s.name not in data.files]
    if missing:
        raise OptimizeError(
            f"{path} lacks arrays for model input(s) {', '.join(missing)}; it has "
            f"{', '.join(data.files) or 'none'} (name one array per input, plus '{LABELS_KEY}')"
        )
    feeds = {s.name: data[s.name].astype(DTYPES[s.dtype], copy=False) for s in specs}
    sizes = {len(a) for a in feeds.values()}
    labels = data[LABELS_KEY] if LABELS_KEY in data.files else None
    if labels is not None:
        sizes.add(len(labels))
    if len(sizes) != 1:
        raise OptimizeError(f"{path}: arrays differ in their first (batch) dimension: {sizes}")
    return EvalSet(feeds, labels, synthetic=False)


def rows(feeds: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` rows of every input, repeating rows when there are fewer."""
    out = {}
    for name, array in feeds.items():
        reps = -(-count // len(array))
        out[name] = np.concatenate([array] * reps)[:count] if reps > 1 else array[:count]
    return out


def iter_batches(feeds: dict[str, np.ndarray], size: int) -> Iterator[dict[str, np.ndarray]]:
    """Consecutive slices of `size` rows; the last is padded by repetition when a model
    needs a fixed batch, which callers trim from the outputs."""
    total = len(next(iter(feeds.values())))
    for start in range(0, total, size):
        yield {name: array[start : start + size] for name, array in feeds.items()}


def fixed_batch(specs: list[TensorSpec]) -> int | None:
    """The batch size a model requires, or None when its batch dimension is symbolic."""
    first = {s.dims[0] for s in specs if s.dims}
    fixed = [d for d in first if isinstance(d, int)]
    return fixed[0] if fixed else None


def evaluation_set(source: Source, eval_data: Path | None) -> EvalSet:
    """Real inputs from an .npz, else the .pt2's saved samples topped up with generated
    ones, else generated inputs."""
    if eval_data is not None:
        return load_eval_npz(eval_data, source.inputs)
    if source.sample_inputs:
        count = max(GENERATED_SAMPLES, len(next(iter(source.sample_inputs.values()))))
        generated = generate_inputs(source.inputs, count)
        merged = {
            name: np.concatenate([source.sample_inputs[name], generated[name]])[:count]
            for name in generated
        }
        return EvalSet(merged, None, synthetic=True)
    return EvalSet(generate_inputs(source.inputs, GENERATED_SAMPLES), None, synthetic=True)


def calibration_inputs(
    source: Source, evalset: EvalSet, path: str | Path | None, warnings: list[str]
) -> dict[str, np.ndarray]:
    """Inputs for calibrating static quantization, with a warning when they are not real
    data set apart for it."""
    if path is not None:
        return load_eval_npz(Path(path), source.inputs).feeds
    if evalset.synthetic:
        warnings.append(
            "static quantization is calibrated on generated inputs: its accuracy figures are "
            "unreliable; pass --calibration-data (or --eval-data) with real inputs"
        )
    else:
        warnings.append(
            "static quantization is calibrated on the evaluation inputs themselves, which "
            "flatters its accuracy; pass --calibration-data with other samples"
        )
    return evalset.feeds


def describe_evalset(evalset: EvalSet, eval_data: str | Path | None) -> dict[str, object]:
    """What the fidelity inputs were, for the report."""
    kind = "generated inputs (seeded)" if evalset.synthetic else f"{eval_data}"
    labels = "with labels" if evalset.labels is not None else "without labels"
    return {
        "description": f"{len(evalset)} samples from {kind}, {labels}",
        "samples": len(evalset),
        "synthetic": evalset.synthetic,
        "labels": evalset.labels is not None,
        "path": str(eval_data) if eval_data else None,
    }
