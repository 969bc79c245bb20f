"""How large an integer input may be: the rows of the embedding table it indexes, read from
the model's graph, so that generated token ids cover the vocabulary rather than ids 0 and 1."""

from __future__ import annotations

from typing import Any

# Ops that pass an integer input on unchanged in value before it indexes a table.
_ONNX_VALUE_KEEPING = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"}
_ATEN_VALUE_KEEPING = {"view", "reshape", "unsqueeze", "squeeze", "flatten", "to", "_to_copy"}


def program_index_limits(program: Any, names: list[str]) -> dict[str, int]:
    """{input name: rows of the embedding table it indexes} for the inputs of an
    ExportedProgram that feed `aten.embedding` (through reshapes and casts)."""
    import torch

    limits: dict[str, int] = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target is not torch.ops.aten.embedding.default:
            continue
        weight, indices = node.args[0], node.args[1]
        while (
            indices.op == "call_function"
            and getattr(indices.target, "_opname", "") in _ATEN_VALUE_KEEPING
        ):
            indices = indices.args[0]
        table = weight.meta.get("val")
        if indices.op == "placeholder" and indices.name in names and table is not None:
            _keep_smallest(limits, indices.name, int(table.shape[0]))
    return limits


def onnx_index_limits(graph: Any) -> dict[str, int]:
    """{input name: rows of the initializer table it indexes} for the graph inputs that are
    the indices of a Gather on a constant table (through casts and reshapes)."""
    inputs = {i.name for i in graph.input}
    tables = {i.name: i.dims[0] for i in graph.initializer if i.dims}
    producer = {o: n for n in graph.node for o in n.output}
    limits: dict[str, int] = {}
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.op_type != "Gather" or node.input[0] not in tables or axis != 0:
            continue
        name = node.input[1]
        while name in producer and producer[name].op_type in _ONNX_VALUE_KEEPING:
            name = producer[name].input[0]
        if name in inputs:
            _keep_smallest(limits, name, int(tables[node.input[0]]))
    return limits


def _keep_smallest(limits: dict[str, int], name: str, rows: int) -> None:
    # An input indexing two tables must be valid for both.
    limits[name] = min(rows, limits.get(name, rows))
