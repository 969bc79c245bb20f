"""The run's pick as pick.json records it: read from the Results, whichever runtime won."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimize.build.variant import Candidate, RuntimeRow, Variant
from optimize.report.results import Results
from optimize.serve.pick_json import ServedPick
from passes.onnx_files import graph_signature
from passes.registry import pass_class


def served_pick(results: Results, artifact: str) -> ServedPick:
    """The run's pick as pick.json records it."""
    pick, best = results.pick, results.pick_onnx
    inputs, outputs = graph_signature(_onnx_of(results))
    settings = dict(pick.measurements.settings)
    if isinstance(pick, RuntimeRow):
        settings = pick.runtime_settings | settings
    return ServedPick(
        out_dir=results.out_dir,
        runtime=pick.runtime,
        artifact=artifact,
        label=pick.label,
        settings=settings,
        providers=pick.measurements.providers,
        inputs=_named_dims(inputs, {s.name: s.dims for s in results.inputs}),
        outputs=outputs,
        figures=_figures(results, settings),
        target=results.target,
        source=str(results.source_path),
        source_form=results.source_form,
        source_task=results.task,
        best_onnx="best.onnx" if best is not None else None,
        best_onnx_label=best.label if best is not None else None,
        float_precision=_float_precision(pick),
    )


def _float_precision(pick: Candidate) -> str:
    """The float type the last pass that set one left the pick in; fp32 otherwise."""
    steps = pick.steps if isinstance(pick, Variant) else []
    classes = [pass_class(step.name) for step in steps]
    set_by = [c.float_precision for c in classes if c is not None and c.float_precision]
    return set_by[-1] if set_by else "fp32"


def _onnx_of(results: Results) -> Path:
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


def _figures(results: Results, settings: dict[str, Any]) -> dict[str, Any]:
    m, f = results.pick.measurements, results.pick.fidelity
    threads = settings.get("intra_op_threads", settings.get("threads", 0))
    return {
        "p50_ms": m.latency.p50_ms,
        "p99_ms": m.latency.p99_ms,
        "throughput_per_s": m.throughput_per_s,
        "throughput_batch": m.throughput_batch,
        "session_memory_mb": m.session_memory_mb,
        "cores": threads or results.environment.get("physical_cores") or 1,
        "mean_cosine": f.mean_cosine,
        "score": f.score,
        "metric": f.metric,
    }
