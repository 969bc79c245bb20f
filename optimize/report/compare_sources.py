"""Whether two reports can be compared: from one machine (else latencies say nothing), of
one model (else nothing compares), and with which package versions or model file changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimize.errors import UserError

# What makes two runs' latencies comparable: the same CPU and cores.
HOST_KEYS = ("cpu_model", "logical_cores")
# The packages whose versions move latencies.
VERSION_KEYS = ("onnxruntime", "onnxruntime-gpu", "torch", "openvino", "onnx")


def model_notes(old: dict[str, Any], new: dict[str, Any], allow_different_model: bool) -> list[str]:
    """A refusal when the two reports are of models taking different inputs (a note when
    allowed); a note when the same inputs come from a changed file (a retrained model)."""
    before, after = old.get("source") or {}, new.get("source") or {}

    def inputs(source: dict[str, Any]) -> list[tuple]:
        return [
            (i.get("name"), tuple(i.get("dims", ())), i.get("dtype"))
            for i in source.get("inputs", [])
        ]

    if inputs(before) != inputs(after):
        said = (
            f"the reports are of different models ({Path(str(before.get('path'))).name} takes "
            f"{_inputs_text(before)}, {Path(str(after.get('path'))).name} takes {_inputs_text(after)})"
        )
        if not allow_different_model:
            raise UserError(f"{said}; compare runs of one model, or pass --allow-different-model")
        return [said]
    if before.get("sha256") != after.get("sha256"):
        return [
            "the model file changed (another sha256): a difference may come from the model itself"
        ]
    return []


def _inputs_text(source: dict[str, Any]) -> str:
    specs = source.get("inputs", [])
    return (
        ", ".join(f"{i.get('name')}:{','.join(map(str, i.get('dims', ())))}" for i in specs)
        or "no inputs"
    )


def host_notes(old: dict[str, Any], new: dict[str, Any], allow_different_host: bool) -> list[str]:
    """A refusal when the runs were on different machines (a note when allowed), and a
    note naming the packages whose versions differ."""
    before, after = old.get("environment") or {}, new.get("environment") or {}
    moved = [
        f"{k} {before.get(k)!r} → {after.get(k)!r}"
        for k in HOST_KEYS
        if before.get(k) != after.get(k)
    ]
    notes = []
    if moved:
        if not allow_different_host:
            raise UserError(
                f"the reports come from different machines ({'; '.join(moved)}): their "
                "latencies are not comparable; compare runs from one machine, or pass "
                "--allow-different-host to compare anyway"
            )
        notes.append(f"different machines ({'; '.join(moved)}): latencies are not comparable")
    versions_before, versions_after = before.get("versions") or {}, after.get("versions") or {}
    changed = [
        f"{k} {versions_before.get(k)} → {versions_after.get(k)}"
        for k in VERSION_KEYS
        if versions_before.get(k) != versions_after.get(k)
    ]
    if changed:
        notes.append(f"package versions differ ({', '.join(changed)}): a change may come from them")
    return notes
