"""ONNX Runtime's recommended pre-processing before quantization: shape inference and
pre-optimization, into a scratch file."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

from passes.base import PassError
from passes.onnx_files import needs_external_data
from passes.preprocess import PREPROCESS_PREFIX


def preprocess_for_quantization(src: Path, scratch_dir: Path) -> Path:
    """Symbolic and ONNX shape inference plus pre-optimization of `src`; returns the new
    file. Falls back to ONNX shape inference alone when symbolic inference cannot handle
    the model, since quantization still works without it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    scratch_dir.mkdir(parents=True, exist_ok=True)
    out = scratch_dir / "preprocessed.onnx"
    external = needs_external_data(src)
    options = {
        "save_as_external_data": external,
        "all_tensors_to_one_file": True,
        "external_data_location": f"{out.name}.data",
    }
    logging.getLogger().setLevel(logging.ERROR)
    try:
        quant_pre_process(src, out, **options)
    except Exception:  # symbolic shape inference rejects some graphs; it is optional
        try:
            quant_pre_process(src, out, skip_symbolic_shape=True, **options)
        except Exception as exc:  # onnxruntime raises untyped errors here
            raise PassError(f"pre-processing for quantization failed: {exc}") from exc
    return out


def quantizable_nodes(
    src: Path, op_types: Iterable[str], constant_weight_only: bool = False
) -> list[str]:
    """Names of the `op_types` nodes of the pre-processed model, in graph order: the names
    a quantizer's nodes_to_exclude refers to, which pre-processing may change. With
    `constant_weight_only`, only nodes whose weight input is a constant (a MatMul's second
    input, a Gather's table): the only ones a weight quantizer touches."""
    import onnx

    wanted = set(op_types)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = preprocess_for_quantization(src, Path(scratch))
        model = onnx.load(str(prepared), load_external_data=False)
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}

    def weighted(node) -> bool:
        position = 0 if node.op_type == "Gather" else 1
        return len(node.input) > position and node.input[position] in constants

    return [
        n.name
        for n in graph.node
        if n.op_type in wanted and n.name and (not constant_weight_only or weighted(n))
    ]


def preprocessing_exclusions(prepared: Path) -> tuple[list[str], list[str] | None]:
    """What quantization must leave alone in a model with compiled preprocessing (nodes
    named 'preprocess/...'): those nodes, and the op types to quantize (None: all). Raw
    inputs may hold NaN and ±inf, and calibrating any tensor of them fails, so op types
    only the preprocessing uses (IsNaN, IsInf, Where, ...) are left out of calibration."""
    import onnx

    model = onnx.load(str(prepared), load_external_data=False)
    ours = [n for n in model.graph.node if n.name.startswith(PREPROCESS_PREFIX)]
    if not ours:
        return [], None
    theirs = {n.op_type for n in model.graph.node if not n.name.startswith(PREPROCESS_PREFIX)}
    only_ours = {n.op_type for n in ours} - theirs
    return [n.name for n in ours], sorted(theirs - only_ours)
