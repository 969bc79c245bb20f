"""Evaluation data in the forms teams keep it, read as a stream of (inputs, labels) batches.

Three forms:
- an `.npz` file: one array per model input, named as the inputs, batch first, plus an
  optional `labels` array; other arrays are ignored (and named in a note);
- a folder of `.npy` files: `<input name>.npy` per input and optional `labels.npy`, read
  memory-mapped, so a dataset larger than memory works;
- a callable `module:function` (a dotted module or a path to a .py file) taking the batch
  size and yielding `(inputs, labels)` pairs: `inputs` a dict of arrays named as the model's
  inputs, `labels` an array or None. Anything else (images on disk, a database) fits here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optimize.errors import UserError
from passes.base import DTYPES, TensorSpec
from passes.user_code import import_callable

LABELS_KEY = "labels"
Batch = tuple[dict[str, np.ndarray], np.ndarray | None]


@dataclass
class EvalData:
    """An opened evaluation data source: its batches on demand and notes for the report."""

    description: str
    batches: Iterator[Batch]
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def open_eval_data(spec: str | Path, inputs: list[TensorSpec], batch: int) -> EvalData:
    """Open evaluation data given as an .npz, a folder of .npy files or `module:function`."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return _npy_folder(path, inputs, batch)
    if path.is_file():
        return _npz(path, inputs, batch)
    if ":" in text and not text.endswith((".npz", ".npy")):
        function = import_callable(text, "evaluation data")
        return EvalData(f"batches from {text}", _checked(function(batch), inputs, text))
    raise UserError(
        f"evaluation data not found: {text}; give an .npz, a folder of .npy files or "
        "module:function"
    )


def _npz(path: Path, inputs: list[TensorSpec], batch: int) -> EvalData:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .npz file ({exc})") from exc
    if not hasattr(data, "files"):
        raise UserError(f"{path} holds one array, not named ones: save it with np.savez")
    arrays = {name: data[name] for name in _named(inputs, data.files, path)}
    notes = _ignored(data.files, inputs, path)
    return EvalData(str(path), _slices(arrays, inputs, batch, path), notes)


def _npy_folder(folder: Path, inputs: list[TensorSpec], batch: int) -> EvalData:
    files = {p.stem: p for p in folder.glob("*.npy")}
    arrays = {}
    for name in _named(inputs, list(files), folder):
        try:
            arrays[name] = np.load(files[name], mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"{files[name]} is not a readable .npy file ({exc})") from exc
    notes = _ignored(list(files), inputs, folder)
    return EvalData(
        f"{folder} (.npy, memory-mapped)", _slices(arrays, inputs, batch, folder), notes
    )


def _named(inputs: list[TensorSpec], names: list[str], where: Path) -> list[str]:
    """The array names to read: one per model input, and labels when present."""
    missing = [s.name for s in inputs if s.name not in names]
    if missing:
        raise UserError(
            f"{where} lacks arrays for model input(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(names)) or 'none'} (name one array per input, plus '{LABELS_KEY}')"
        )
    return [s.name for s in inputs] + ([LABELS_KEY] if LABELS_KEY in names else [])


def _ignored(names: list[str], inputs: list[TensorSpec], where: Path) -> list[str]:
    extra = sorted(set(names) - {s.name for s in inputs} - {LABELS_KEY})
    if not extra:
        return []
    return [f"{where}: arrays {', '.join(extra)} are not model inputs or labels and were ignored"]


def _slices(
    arrays: dict[str, np.ndarray], inputs: list[TensorSpec], batch: int, where: Path
) -> Iterator[Batch]:
    sizes = {len(a) for a in arrays.values()}
    if len(sizes) != 1:
        raise UserError(f"{where}: arrays differ in their first (batch) dimension: {sizes}")
    total = sizes.pop()
    if total == 0:
        raise UserError(f"{where}: the arrays hold no samples")
    labels = arrays.get(LABELS_KEY)

    def generate() -> Iterator[Batch]:
        for start in range(0, total, batch):
            feeds = {s.name: _cast(arrays[s.name][start : start + batch], s, where) for s in inputs}
            yield feeds, None if labels is None else np.asarray(labels[start : start + batch])

    return generate()


def _checked(batches, inputs: list[TensorSpec], where: str) -> Iterator[Batch]:
    """The user's batches, each checked for the model's inputs and a matching label count."""
    for index, item in enumerate(batches):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], dict)):
            raise UserError(
                f"{where}: batch {index} is not an (inputs dict, labels) pair; yield "
                "({'input name': array, ...}, labels or None)"
            )
        feeds, labels = item
        missing = [s.name for s in inputs if s.name not in feeds]
        if missing:
            raise UserError(f"{where}: batch {index} lacks model input(s) {', '.join(missing)}")
        cast = {s.name: _cast(np.asarray(feeds[s.name]), s, where) for s in inputs}
        rows = {len(a) for a in cast.values()} | ({len(labels)} if labels is not None else set())
        if len(rows) != 1:
            raise UserError(f"{where}: batch {index} arrays differ in length: {sorted(rows)}")
        yield cast, None if labels is None else np.asarray(labels)


def _cast(array: np.ndarray, spec: TensorSpec, where: Path | str) -> np.ndarray:
    """The array as the model input `spec` takes it; UserError naming the array when its
    values or shape cannot be that input."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise UserError(
            f"{where}: array '{spec.name}' holds {array.dtype} values, but the model's input "
            f"takes {spec.dtype}: save numbers"
        )
    expected = tuple(spec.dims)
    fixed = [(i, d) for i, d in enumerate(expected) if isinstance(d, int) and i > 0]
    if array.ndim != len(expected) or any(array.shape[i] != d for i, d in fixed):
        dims = ", ".join(str(d) for d in expected)
        raise UserError(
            f"{where}: array '{spec.name}' has shape {tuple(array.shape)}, but the model's "
            f"input is ({dims}), batch first: give arrays of that shape"
        )
    return array.astype(DTYPES[spec.dtype], copy=False)
