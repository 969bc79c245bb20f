"""Finding the nodes whose float32 outputs leave float16's range on sample inputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hardware.session import SessionSettings, open_session
from hardware.targets import Target
from passes.onnx_files import needs_external_data, save_proto_model

FP16_MAX = 65504.0
# Headroom: a value near the limit overflows as soon as the next op adds to it.
OVERFLOW_MARGIN = 0.5


def _batches(session, feeds: dict[str, np.ndarray], rows: int):
    """The first `rows` samples of `feeds`, in batches the graph takes: all at once for a
    dynamic batch, else as many runs of its fixed batch as fit."""
    inputs = session.get_inputs()
    fixed = {i.shape[0] for i in inputs if i.shape and isinstance(i.shape[0], int)}
    size = min(fixed) if fixed else rows
    available = min(len(feeds[i.name]) for i in inputs) if inputs else 0
    for start in range(0, max(min(rows, available) - size + 1, 1), size):
        yield {i.name: feeds[i.name][start : start + size] for i in inputs}


def _out_of_range(value: np.ndarray) -> bool:
    return bool(
        np.issubdtype(value.dtype, np.floating)
        and value.size
        and (not np.isfinite(value).all() or np.abs(value).max() > FP16_MAX * OVERFLOW_MARGIN)
    )


def overflowing_nodes(model_path: Path, feeds: dict[str, np.ndarray], rows: int = 16) -> list[str]:
    """Names of nodes that produce or consume a float tensor beyond half of float16's
    largest value, or non-finite, when the float32 model runs on the first `rows` samples
    of `feeds`.

    Every node output is exposed as a graph output, so memory grows with the model's
    activations for those rows; `rows` bounds it.
    """
    import onnx

    model = onnx.load(str(model_path))
    produced = {out: node.name for node in model.graph.node for out in node.output if out}
    existing = {o.name for o in model.graph.output}
    for name in produced:
        if name not in existing:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    # The probe goes in a temporary folder: the source's folder is another variant's.
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "overflow-probe.onnx"
        save_proto_model(model, probe, external=needs_external_data(model_path))
        session = open_session(probe, Target("cpu"), SessionSettings(graph_level="disabled"))
        names = [o.name for o in session.get_outputs()]
        hot_tensors: set[str] = set()
        for batch in _batches(session, feeds, rows):
            for name, value in zip(names, session.run(None, batch), strict=True):
                if _out_of_range(value):
                    hot_tensors.add(name)
    # A consumer of an out-of-range tensor must read it in float32 too, or the value is
    # cast to float16 (and lost) on its way in.
    hot = {produced[t] for t in hot_tensors}
    hot |= {n.name for n in model.graph.node if hot_tensors.intersection(n.input)}
    return sorted(hot)
