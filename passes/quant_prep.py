"""ONNX Runtime's recommended pre-processing before quantization: shape inference and
pre-optimization, into a scratch file."""

from __future__ import annotations

import contextlib
import logging
import tempfile
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
    src, out = src.resolve(), scratch_dir.resolve() / "preprocessed.onnx"
    external = needs_external_data(src)
    options = {
        "save_as_external_data": external,
        "all_tensors_to_one_file": True,
        "external_data_location": f"{out.name}.data",
    }
    logging.getLogger().setLevel(logging.ERROR)
    # Symbolic shape inference that leaves a shape unknown (a transformer's dynamic
    # sequence) saves the model it gave up on into the working directory, its weights in a
    # file named by a fresh uuid each time: run it in a folder of its own, removed after.
    with tempfile.TemporaryDirectory(dir=scratch_dir) as cwd, contextlib.chdir(cwd):
        try:
            quant_pre_process(src, out, **options)
        except Exception:  # symbolic shape inference rejects some graphs; it is optional
            try:
                quant_pre_process(src, out, skip_symbolic_shape=True, **options)
            except Exception as exc:  # onnxruntime raises untyped errors here
                raise PassError(f"pre-processing for quantization failed: {exc}") from exc
    return out


def quantized_nodes(parent: Path, quantized: Path) -> list[str]:
    """Names of the nodes of `parent`'s pre-processed model (the names nodes_to_exclude
    takes) that quantization changed in `quantized`, in graph order: replaced by an integer
    node (MatMulInteger, QLinearConv, a Gemm turned MatMulInteger …), or now fed by a
    DequantizeLinear (QDQ). The accuracy fallback's candidates: whatever the quantizer
    touched, whatever its op type."""
    import onnx

    with tempfile.TemporaryDirectory() as scratch:
        prepared = preprocess_for_quantization(parent, Path(scratch))
        before = onnx.load(str(prepared), load_external_data=False).graph
    after = onnx.load(str(quantized), load_external_data=False).graph
    kept = {n.name: n for n in after.node}
    dequantized = {o for n in after.node if n.op_type == "DequantizeLinear" for o in n.output}
    changed = []
    for node in before.node:
        if not node.name or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        now = kept.get(node.name)
        if now is None or any(i in dequantized for i in now.input):
            changed.append(node.name)
    return changed


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
