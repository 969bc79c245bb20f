"""Reading and writing ONNX files, keeping external-data form for models that need it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hardware.model_files import external_data_files

# Ops whose presence beside a Softmax marks a transformer's attention: its normalisation
# (LayerNormalization, or the ReduceMean it decomposes into).
ATTENTION_NORMS = ("LayerNormalization", "ReduceMean")
# Protobuf cannot serialize a message over 2 GiB; stay clear of it with some margin.
EXTERNAL_DATA_THRESHOLD_BYTES = int(1.8 * 2**30)


def needs_external_data(model_path: Path) -> bool:
    """True when a model derived from this one should be written with external data:
    it already uses it, or it is too large for a single protobuf."""
    files = external_data_files(model_path)
    total = model_path.stat().st_size + sum(f.stat().st_size for f in files)
    return bool(files) or total > EXTERNAL_DATA_THRESHOLD_BYTES


def save_ir_model(model, path: Path, external: bool) -> None:
    """Save an onnx_ir model to `path`, with weights in `<name>.data` beside it when
    `external`."""
    import onnx_ir as ir

    if external:
        ir.save(model, path, external_data=f"{path.name}.data")
    else:
        ir.save(model, path)


def save_proto_model(model, path: Path, external: bool) -> None:
    """Save an onnx ModelProto to `path`, with weights in `<name>.data` beside it when
    `external`."""
    import onnx

    onnx.save_model(
        model,
        str(path),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
    )


def op_histogram(model_path: Path) -> dict[str, int]:
    """Count of each operator type in the main graph, e.g. {'Conv': 2, 'Relu': 2}."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    counts = Counter(
        f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        for n in model.graph.node
    )
    return dict(sorted(counts.items()))


def has_attention(ops: dict[str, int]) -> bool:
    """Whether an op histogram (see op_histogram) is a transformer's: a Softmax beside a
    LayerNorm or a mean-reduction."""
    return "Softmax" in ops and any(op in ops for op in ATTENTION_NORMS)


def graph_signature(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's inputs and outputs as a server declares them: name, dtype and dims (a
    name for a dynamic dim), read without loading the weights."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def describe(value) -> dict[str, Any]:
        tensor = value.type.tensor_type
        dims = [
            d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
            for d in tensor.shape.dim
        ]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        return {"name": value.name, "dtype": dtype, "dims": dims}

    inputs = [describe(v) for v in graph.input if v.name not in initializers]
    return inputs, [describe(v) for v in graph.output]
