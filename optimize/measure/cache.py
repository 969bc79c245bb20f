"""Reusing what children measured (a variant's figures, a runtime row's, the head-to-head,
an operator profile) when nothing that shapes it has changed, so an interrupted run resumes
where it stopped and a re-run with nothing changed measures nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from hardware.profile import Measurements
from optimize.measure.workload import Workload
from optimize.records.fidelity import Fidelity
from optimize.store import write_json_atomic

MEASUREMENTS_FILE = "measurements.json"


def _digest_arrays(digest, arrays) -> None:
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(str((contiguous.dtype, contiguous.shape)).encode())
        digest.update(contiguous.tobytes())


def measurement_key(workload: Workload, thread_options: tuple, machine: dict[str, Any]) -> str:
    """Hash of everything a measurement depends on besides the model file: target, inputs,
    reference outputs, labels, batches, budget, thread settings, and the machine."""
    digest = hashlib.sha256()
    settings = {
        field.name: getattr(workload, field.name)
        for field in dataclasses.fields(workload)
        if field.name not in ("eval_store", "timing_feeds")
    }
    settings["thread_options"] = thread_options
    digest.update(json.dumps(_plain(settings), sort_keys=True, default=str).encode())
    digest.update(json.dumps(machine, sort_keys=True, default=str).encode())
    digest.update(workload.eval_store.digest.encode())
    digest.update(str(workload.eval_store.metric).encode())  # scores the fidelity
    _digest_arrays(digest, [workload.timing_feeds[k] for k in sorted(workload.timing_feeds)])
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load_result(path: Path, key: str) -> Any | None:
    """The result stored at `path` when it was produced under `key`, else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # never stored, or not by this tool: measure again
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return data.get("result")


def store_result(path: Path, key: str, result: Any) -> None:
    """Keep a finished result (plain JSON data) under `key`, written whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"key": key, "result": result})


def load_figures(path: Path, key: str) -> tuple[Measurements, Fidelity | None] | None:
    """The stored figures at `path` when they were taken under `key`."""
    result = load_result(path, key)
    return figures_from_dict(result) if result and "measurements" in result else None


def figures_from_dict(result: dict[str, Any]) -> tuple[Measurements, Fidelity | None]:
    """Figures as store_figures keeps them (no fidelity: outputs not judged)."""
    fidelity = result["fidelity"] and Fidelity.from_dict(result["fidelity"])
    return Measurements.from_dict(result["measurements"]), fidelity


def store_figures(
    path: Path, key: str, measurements: Measurements, fidelity: Fidelity | None
) -> None:
    """Keep a finished measurement's figures under `key`, written whole."""
    result = {
        "measurements": measurements.to_dict(),
        "fidelity": fidelity.to_dict() if fidelity else None,
    }
    store_result(path, key, result)
