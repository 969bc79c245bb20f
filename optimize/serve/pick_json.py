"""pick.json: what a server needs to run the pick, whichever runtime won: the runtime, the
artifact, its exact settings, and the inputs and outputs with dtypes and dynamic dims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimize.build.variant import RuntimeRow
from optimize.report.results import Results
from optimize.store import write_json_atomic
from passes.onnx_files import graph_signature

PICK_FILE = "pick.json"


def write_pick_json(results: Results, artifact: str | None) -> list[Path]:
    """Write pick.json for the run's pick, its artifact named relative to the output
    folder; remove a stale one when nothing was picked."""
    path = results.out_dir / PICK_FILE
    pick = results.pick
    if pick is None or artifact is None:
        path.unlink(missing_ok=True)
        return []
    inputs, outputs = serving_signature(results)
    write_json_atomic(
        path,
        {
            "runtime": pick.runtime,
            "artifact": artifact,
            "label": pick.label,
            "settings": pick_settings(results),
            "providers": pick.measurements.providers,
            "inputs": inputs,
            "outputs": outputs,
            "figures": _figures(results),
            "report": "report.json",
        },
    )
    return [path]


def serving_signature(results: Results) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pick's inputs and outputs as a server declares them (name, dtype, dims), each
    dynamic dim named as the model's input spec names it."""
    inputs, outputs = graph_signature(serving_onnx(results))
    return _named_dims(inputs, {s.name: s.dims for s in results.inputs}), outputs


def pick_settings(results: Results) -> dict[str, Any]:
    """The settings the pick was measured under, its runtime's own (precision, mode) too."""
    pick = results.pick
    settings = dict(pick.measurements.settings)
    if isinstance(pick, RuntimeRow):
        settings = pick.runtime_settings | settings
    return settings


def serving_onnx(results: Results) -> Path:
    """The ONNX file whose signature the pick serves: the file it ran, or for a PyTorch
    row (same model, same inputs) the best ONNX variant's."""
    pick = results.pick
    if isinstance(pick, RuntimeRow):
        parent = next((v for v in results.model_variants if v.id == pick.parent), None)
        return (parent or results.pick_onnx).path
    return pick.path


def _named_dims(
    inputs: list[dict[str, Any]], stated: dict[str, tuple[int | str, ...]]
) -> list[dict[str, Any]]:
    """The inputs with each dynamic dim named as the model's input spec names it ('batch'),
    not as the exporter did ('s77'), where the spec has a dynamic dim in that place."""
    named = []
    for entry in inputs:
        dims = list(entry["dims"])
        spec = stated.get(entry["name"], ())
        if len(spec) == len(dims):
            dims = [
                s if isinstance(d, str) and isinstance(s, str) else d
                for d, s in zip(dims, spec, strict=True)
            ]
        named.append({**entry, "dims": dims})
    return named


def _figures(results: Results) -> dict[str, Any]:
    m, f = results.pick.measurements, results.pick.fidelity
    return {
        "p50_ms": m.latency.p50_ms,
        "p99_ms": m.latency.p99_ms,
        "throughput_per_s": m.throughput_per_s,
        "throughput_batch": m.throughput_batch,
        "mean_cosine": f.mean_cosine,
        "score": f.score,
        "metric": f.metric,
    }
