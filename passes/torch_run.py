"""Running a PyTorch model (module, TorchScript or ExportedProgram) on numpy inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from passes.base import TensorSpec


def run_torch(
    model: Any, feeds: dict[str, np.ndarray], inputs: list[TensorSpec]
) -> list[np.ndarray]:
    """Run `model` without gradients on `feeds`, passed positionally in `inputs` order, and
    return its outputs (tensors, possibly nested in tuples, lists or dicts) flattened in
    order as numpy arrays."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        model = model.module()
    args = [torch.from_numpy(np.ascontiguousarray(feeds[spec.name])) for spec in inputs]
    with torch.no_grad():
        result = model(*args)
    return _flatten(result)


def _flatten(value: Any) -> list[np.ndarray]:
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        # numpy has no bfloat16; float32 holds every bfloat16 value exactly.
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return [tensor.numpy()]
    if isinstance(value, dict):
        return [array for item in value.values() for array in _flatten(item)]
    if isinstance(value, (tuple, list)):
        return [array for item in value for array in _flatten(item)]
    if value is None:
        return []
    return [np.asarray(value)]


def positional_program(program: Any) -> Any:
    """An ExportedProgram that takes its inputs positionally, in its signature's order:
    `program` itself when it already does, else its graph re-exported around a forward that
    passes the keyword inputs by name, with the same dynamic dims and declared bounds.

    Raises what torch.export raises when that cannot be done.
    """
    import inspect

    import torch

    in_spec = program.call_spec.in_spec
    keywords = list(in_spec.child(1).context) if in_spec is not None else []
    if not keywords:
        return program
    positional = in_spec.child(0).num_children
    names = list(program.graph_signature.user_inputs)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    values = [placeholders[name].meta["val"] for name in names]

    def forward(self, *tensors):
        by_name = dict(zip(keywords, tensors[positional:], strict=True))
        return self.inner(*tensors[:positional], **by_name)

    # torch.export names the new program's inputs after this signature.
    parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
    forward.__signature__ = inspect.Signature(
        [inspect.Parameter(name, parameter) for name in ["self", *names]]
    )
    wrapper = type("PositionalInputs", (torch.nn.Module,), {"forward": forward})()
    wrapper.inner = program.module()
    dims: dict[str, Any] = {}

    def dim(size: Any) -> Any:
        symbol = size.node.expr
        if str(symbol) not in dims:
            bound = program.range_constraints.get(symbol)
            upper = int(bound.upper) if bound is not None and bound.upper.is_Integer else None
            dims[str(symbol)] = torch.export.Dim(str(symbol), max=upper)
        return dims[str(symbol)]

    shapes = tuple(
        {i: dim(size) for i, size in enumerate(v.shape) if isinstance(size, torch.SymInt)}
        for v in values
    )
    examples = _saved_examples(program, keywords) or tuple(
        torch.zeros([_hint(size) for size in v.shape], dtype=v.dtype) for v in values
    )
    return torch.export.export(wrapper, examples, dynamic_shapes=shapes)


def _saved_examples(program: Any, keywords: list[str]) -> tuple | None:
    """The example inputs saved with `program`, positional ones then keyword ones."""
    import torch

    if program.example_inputs is None:
        return None
    args, kwargs = program.example_inputs
    examples = (*args, *(kwargs.get(name) for name in keywords))
    return examples if all(isinstance(e, torch.Tensor) for e in examples) else None


def _hint(size: Any) -> int:
    import torch

    return int(size.node.hint) if isinstance(size, torch.SymInt) else int(size)


def dynamic_batch_program(program: Any, inputs: list[TensorSpec]) -> Any:
    """An ExportedProgram that accepts any batch on the inputs whose spec has a symbolic
    first dim: `program` itself when it already does, else re-exported from its own graph.

    Raises what torch.export raises when the graph depends on the batch it was saved with.
    """
    import torch

    symbols = {s.name: s.dims[0] for s in inputs if s.has_symbolic_batch}
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    names = list(program.graph_signature.user_inputs)
    values = [placeholders[name].meta["val"] for name in names]
    if all(
        isinstance(v.shape[0], torch.SymInt)
        for n, v in zip(names, values, strict=True)
        if n in symbols
    ):
        return program
    dims = {symbol: torch.export.Dim(symbol) for symbol in set(symbols.values())}
    shapes = tuple({0: dims[symbols[n]]} if n in symbols else None for n in names)
    # Its guards would reject any batch but the one it was saved with.
    module = program.module(check_guards=False)
    args = tuple(torch.zeros(v.shape, dtype=v.dtype) for v in values)
    return torch.export.export(module, args, dynamic_shapes=shapes)
