"""The evaluation set of a run on disk: fixed-size batches of inputs, labels and the original
model's outputs, written once and streamed by every measurement, in any process."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimize.data.eval_data import Batch
from optimize.errors import UserError

INPUT_PREFIX, OUTPUT_PREFIX, LABELS = "input:", "output:", "labels"


@dataclass(frozen=True)
class StoredBatch:
    """One batch: the model inputs, the labels (or None) and the original model's outputs."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None
    reference: list[np.ndarray]


@dataclass(frozen=True)
class EvalStore:
    """A folder of batch files; cheap to pickle, so child processes stream it themselves."""

    folder: Path
    batch_count: int
    samples: int
    labelled: bool
    digest: str
    synthetic: bool = False  # generated inputs, not the user's data
    metric: str | None = None  # the task metric scored on the labels (optimize.records.metrics)
    # Seconds the original took over every batch: what the run's time limits grow with.
    reference_s: float = 0.0

    def batches(self) -> Iterator[StoredBatch]:
        """The batches in order, one in memory at a time."""
        for index in range(self.batch_count):
            with np.load(self.folder / _name(index)) as data:
                yield StoredBatch(
                    {
                        k[len(INPUT_PREFIX) :]: data[k]
                        for k in data.files
                        if k.startswith(INPUT_PREFIX)
                    },
                    data[LABELS] if LABELS in data.files else None,
                    [data[f"{OUTPUT_PREFIX}{i}"] for i in range(_outputs(data.files))],
                )

    def head(self, count: int) -> dict[str, np.ndarray]:
        """The first `count` rows of every input, repeating rows when there are fewer."""
        parts: list[dict[str, np.ndarray]] = []
        have = 0
        for batch in self.batches():
            parts.append(batch.feeds)
            have += len(next(iter(batch.feeds.values())))
            if have >= count:
                break
        feeds = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        reps = -(-count // have)
        return {name: np.concatenate([a] * reps)[:count] for name, a in feeds.items()}


def write_eval_store(
    folder: Path,
    batches: Iterable[Batch],
    batch_size: int,
    reference: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    synthetic: bool = False,
) -> EvalStore:
    """Re-cut `batches` into `batch_size` rows, run the original model on each (`reference`)
    and write them under `folder`, replacing what was there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    digest = hashlib.sha256()
    count = samples = 0
    labelled: bool | None = None
    any_finite = False
    reference_s = 0.0
    for feeds, labels in _recut(batches, batch_size):
        if labelled is not None and labelled != (labels is not None):
            raise UserError("evaluation data: some batches have labels and others not")
        labelled = labels is not None
        started = time.perf_counter()
        outputs = reference(feeds)
        reference_s += time.perf_counter() - started
        any_finite = any_finite or any(_has_finite(o) for o in outputs)
        arrays = {f"{INPUT_PREFIX}{k}": v for k, v in feeds.items()}
        arrays |= {f"{OUTPUT_PREFIX}{i}": o for i, o in enumerate(outputs)}
        arrays |= {LABELS: labels} if labels is not None else {}
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            digest.update(f"{key}{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        np.savez(folder / _name(count), **arrays)
        count += 1
        samples += len(next(iter(feeds.values())))
    if count == 0:
        raise UserError("evaluation data: no batches came out of it")
    if not any_finite:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(
            f"the model's outputs are NaN or infinite for every one of the {samples} "
            "evaluation inputs: no variant could be judged against them; check the model's "
            "weights and the inputs it expects"
        )
    return EvalStore(
        folder,
        count,
        samples,
        bool(labelled),
        digest.hexdigest(),
        synthetic,
        reference_s=reference_s,
    )


def _has_finite(output: np.ndarray) -> bool:
    """Whether a float output holds any finite value; other outputs count as finite."""
    array = np.asarray(output)
    return not np.issubdtype(array.dtype, np.floating) or bool(np.isfinite(array).any())


def _recut(batches: Iterable[Batch], size: int) -> Iterator[Batch]:
    """Batches of exactly `size` rows (the last may be short), from batches of any size."""
    pending: list[Batch] = []
    held = 0
    for feeds, labels in batches:
        pending.append((feeds, labels))
        held += len(next(iter(feeds.values())))
        while held >= size:
            joined = _join(pending)
            yield _take(joined, 0, size)
            rest = _take(joined, size, held)
            held -= size
            pending = [rest] if held else []
    if held:
        yield _join(pending)


def _join(parts: list[Batch]) -> Batch:
    feeds = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
    labels = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
    return feeds, labels


def _take(batch: Batch, start: int, stop: int) -> Batch:
    feeds, labels = batch
    return {k: v[start:stop] for k, v in feeds.items()}, None if labels is None else labels[
        start:stop
    ]


def _name(index: int) -> str:
    return f"batch_{index:06d}.npz"


def _outputs(files: list[str]) -> int:
    return sum(1 for k in files if k.startswith(OUTPUT_PREFIX))
