"""The evaluation set kept in the output folder's cache under a key of everything it is made
from (the model file, its inputs, the user's data file, the batch), so a re-run streams it
again instead of running the original model over it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from optimize.data.eval_store import EvalStore
from optimize.store import write_json_atomic
from passes.base import TensorSpec

RECORD = "eval_set.json"


def eval_set_key(
    source_id: str, inputs: list[TensorSpec], data: Path | str | None, batch: int, extra: Any
) -> str | None:
    """The key of an evaluation set, or None when it cannot be known without making it
    (data from the user's function)."""
    if isinstance(data, str):
        return None
    digest = hashlib.sha256()
    plain = [source_id, [asdict(s) for s in inputs], batch, extra]
    digest.update(json.dumps(plain, sort_keys=True, default=str).encode())
    if data is not None:
        files = sorted(data.rglob("*")) if data.is_dir() else [data]
        for file in (f for f in files if f.is_file()):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def load_eval_set(folder: Path) -> tuple[EvalStore, str, list[str]] | None:
    """The store kept in `folder`, with the description of its data and the notes on it;
    None when there is none, or it was not finished."""
    try:
        record = json.loads((folder / RECORD).read_text())
        store = EvalStore(**{**record["store"], "folder": folder})
        return store, record["description"], record["notes"]
    except (OSError, ValueError, TypeError, KeyError):
        # Unreadable, or written by another version of the tool: made again.
        return None


def keep_eval_set(store: EvalStore, description: str, notes: list[str]) -> None:
    """Record a finished store in its folder: the record is written last, whole."""
    plain = {k: v for k, v in asdict(store).items() if k != "folder"}
    record = {"store": plain, "description": description, "notes": notes}
    write_json_atomic(store.folder / RECORD, record)
