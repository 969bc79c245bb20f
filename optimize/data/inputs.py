"""Model inputs for measuring: the user's evaluation data, or inputs generated from the spec."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from optimize.data.eval_data import EvalData, open_eval_data
from optimize.data.eval_store import EvalStore
from optimize.errors import UserError
from passes.base import DTYPES, TensorSpec

if TYPE_CHECKING:
    from optimize.source.load import Source

GENERATED_SAMPLES = 64
# The size of a generated symbolic dim past the batch (a sequence) when no saved sample
# says it: torch.export takes a size of 1 for a constant, and a model whose code branches
# on it (transformers' causal-attention test on the query length) then fails to export.
GENERATED_SYMBOLIC_SIZE = 16
# Enough samples for stable activation ranges; more only costs calibration time and memory.
CALIBRATION_SAMPLES = 1024


def generate_inputs(
    specs: list[TensorSpec],
    count: int,
    seed: int = 0,
    like: dict[str, np.ndarray] | None = None,
    index_limits: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Random inputs: standard normal for floats, random booleans, and for ints ids drawn
    over the whole table of an input in `index_limits` (the embedding it indexes), else 0
    or 1 (safe as indices into any embedding). A symbolic dim past the batch (a sequence)
    takes its size from the array of that input in `like` (samples saved with the model),
    else GENERATED_SYMBOLIC_SIZE."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = list(spec.concrete_shape(batch=count, symbolic_size=GENERATED_SYMBOLIC_SIZE))
        sample = (like or {}).get(spec.name)
        for axis, dim in enumerate(spec.dims[1:], start=1):
            if isinstance(dim, str) and sample is not None and sample.ndim > axis:
                shape[axis] = sample.shape[axis]
        dtype = DTYPES[spec.dtype]
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            high = (index_limits or {}).get(spec.name, 2)
            feeds[spec.name] = rng.integers(0, high, shape).astype(dtype)
    return feeds


def rows(feeds: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` rows of every input, repeating rows when there are fewer."""
    out = {}
    for name, array in feeds.items():
        reps = -(-count // len(array))
        out[name] = np.concatenate([array] * reps)[:count] if reps > 1 else array[:count]
    return out


def padded(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]], batch: int
) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    """`run` on batches of at most `batch` rows, padded by repetition and trimmed again,
    for models with a fixed batch."""

    def padded_run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        count = len(next(iter(feeds.values())))
        return [o[:count] for o in run(rows(feeds, batch) if count < batch else feeds)]

    return padded_run


def in_batches(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]], batch: int
) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    """`run` on consecutive slices of at most `batch` rows, each padded as `padded` does,
    their outputs joined again."""
    one = padded(run, batch)

    def batched_run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        parts = [one(part) for part in iter_batches(feeds, batch)]
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    return batched_run


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


def evaluation_data(
    source: Source,
    inputs: list[TensorSpec],
    eval_data: str | Path | None,
    batch: int,
    use_saved_samples: bool = True,
) -> EvalData:
    """The user's evaluation data for `inputs` in any of its forms (optimize.data.eval_data),
    else the .pt2's saved samples topped up with generated ones, else generated inputs
    (marked synthetic)."""
    if eval_data is not None:
        return open_eval_data(eval_data, inputs, batch)
    feeds = generate_inputs(
        inputs, GENERATED_SAMPLES, like=source.sample_inputs, index_limits=source.index_limits
    )
    if source.sample_inputs and use_saved_samples:
        feeds = {
            name: np.concatenate([source.sample_inputs[name], feeds[name]])[:GENERATED_SAMPLES]
            for name in feeds
        }
    batches = ((part, None) for part in iter_batches(feeds, batch))
    return EvalData("generated inputs (seeded)", batches, synthetic=True)


def calibration_inputs(
    inputs: list[TensorSpec], store: EvalStore, path: str | Path | None, warnings: list[str]
) -> dict[str, np.ndarray]:
    """Up to CALIBRATION_SAMPLES inputs for calibrating static quantization, with a warning
    when they are not real data set apart for it."""
    if path is not None:
        data = open_eval_data(path, inputs, CALIBRATION_SAMPLES)
        feeds, _ = next(data.batches, ({}, None))
        if not feeds:
            raise UserError(f"calibration data {path} holds no samples")
        return feeds
    if store.synthetic:
        warnings.append(
            "static quantization is calibrated on generated inputs: its accuracy figures are "
            "unreliable; pass --calibration-data (or --eval-data) with real inputs"
        )
    else:
        warnings.append(
            "static quantization is calibrated on the evaluation inputs themselves, which "
            "flatters its accuracy; pass --calibration-data with other samples"
        )
    return store.head(min(store.samples, CALIBRATION_SAMPLES))


def describe_evalset(store: EvalStore, described: str, notes: list[str]) -> dict[str, object]:
    """What the fidelity inputs were, for the report: the store, what its data came from,
    and the notes on that data."""
    labels = "with labels" if store.labelled else "without labels"
    return {
        "description": f"{store.samples} samples from {described}, {labels}",
        "samples": store.samples,
        "synthetic": store.synthetic,
        "labels": store.labelled,
        "metric": store.metric,
        "notes": notes,
    }
