"""What both pruning passes share: an editable copy of the loaded model, and its export to .pt2."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from passes.base import DTYPES, PassContext, PassError, PassSkipped

# torch.export treats a dim of size 0 or 1 as a constant, so a dynamic batch is traced at 2.
EXAMPLE_ROWS = 2


def editable_copy(model: Any) -> Any:
    """A deep copy of the loaded model as an `nn.Module` in eval mode whose Conv, Linear and
    norm layers are real modules, so that pruning can find and reshape them.

    An ExportedProgram's graph calls those layers as functions on loose tensors; they are
    turned back into modules. A ScriptModule cannot be restructured and is skipped.
    """
    import torch

    if model is None:
        raise PassError("pruning needs the loaded PyTorch model, and none was given")
    if isinstance(model, torch.jit.ScriptModule):
        raise PassSkipped(
            "a TorchScript model cannot be restructured; give the eager nn.Module "
            "(a pickled model) or a torch.export .pt2 instead"
        )
    if isinstance(model, torch.export.ExportedProgram):
        return _layers_from_program(model)
    if isinstance(model, torch.nn.Module):
        return copy.deepcopy(model).eval()
    raise PassError(
        f"cannot prune a {type(model).__name__}; give an nn.Module or a torch.export .pt2"
    )


def example_args(ctx: PassContext) -> tuple[Any, ...]:
    """Example inputs in `ctx.inputs` order: the first rows of the sample inputs (zeros where
    there are none), as many as a fixed batch has, else EXAMPLE_ROWS."""
    import torch

    args = []
    for spec in ctx.inputs:
        rows = EXAMPLE_ROWS if spec.has_symbolic_batch or not spec.dims else spec.dims[0]
        sample = ctx.sample_inputs.get(spec.name)
        if sample is None:
            sample = np.zeros(spec.concrete_shape(rows))
        sample = np.asarray(sample, dtype=DTYPES[spec.dtype])
        if spec.dims:
            # Repeat a sample shorter than the batch it must fill.
            sample = np.concatenate([sample] * -(-rows // len(sample)))[:rows]
        args.append(torch.from_numpy(np.ascontiguousarray(sample)))
    return tuple(args)


def save_program(model: Any, args: tuple[Any, ...], ctx: PassContext, out_dir: Path) -> Path:
    """Export `model` (in eval mode) with a dynamic batch on the inputs whose spec has one,
    and save it as `out_dir / "model.pt2"`."""
    import torch

    symbols = {s.name: s.dims[0] for s in ctx.inputs if s.has_symbolic_batch}
    dims = {symbol: torch.export.Dim(symbol) for symbol in set(symbols.values())}
    shapes = tuple({0: dims[symbols[s.name]]} if s.name in symbols else None for s in ctx.inputs)
    try:
        program = torch.export.export(model.eval(), args, dynamic_shapes=shapes)
    except Exception as exc:  # torch.export raises many unrelated types; all mean the same here
        raise PassError(
            f"torch.export of the pruned model failed: {first_line(str(exc))}; "
            f"{shape_hint(ctx.torch_model)}"
        ) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "model.pt2"
    torch.export.save(program, out)
    return out


@contextlib.contextmanager
def quiet_spec_copies() -> Iterator[None]:
    """Silence the FutureWarning torch gives about its own input specs when a GraphModule
    made from a .pt2 is deep-copied; it says nothing about the user's model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)", FutureWarning)
        yield


def shape_hint(source: Any) -> str:
    """What to try when the pruned form of `source` cannot follow its new shapes."""
    import torch

    if isinstance(source, torch.export.ExportedProgram):
        return (
            "a .pt2 graph keeps the shapes it was traced with (batch size, attention heads): "
            "give the eager nn.Module, or a .pt2 saved with a dynamic batch"
        )
    return "its forward() may hard-code a channel count or batch size that pruning changed"


def _layers_from_program(program: Any) -> Any:
    """The program as a GraphModule whose Conv, Linear, BatchNorm and LayerNorm calls are
    modules again, each at the path the original module had."""
    import torch
    from torch.fx.operator_schemas import normalize_function

    # Without guards: the saved program's input checks would pin the batch it was traced at.
    unlifted = program.module(check_guards=False)
    # A copy, because module() shares the program's tensors.
    with quiet_spec_copies():
        unlifted = copy.deepcopy(unlifted)
    graph = unlifted.graph
    builders = _layer_builders()
    for node in list(graph.nodes):
        build = builders.get(node.target) if node.op == "call_function" else None
        if build is None:
            continue
        call = normalize_function(
            node.target, node.args, node.kwargs, normalize_to_only_use_kwargs=True
        )
        if call is None:
            continue
        kwargs = call.kwargs
        owner = _owner_path(kwargs)
        container = unlifted.get_submodule(owner) if owner else None
        # Only the plain holders torch.export leaves behind; a real layer is already one.
        if type(container) is not torch.nn.Module:
            continue
        tensors = {k: getattr(container, k) for k, v in kwargs.items() if _is_weight_arg(k, v)}
        layer = build(kwargs, tensors, kwargs["input"].meta.get("val"))
        if layer is None or not _adopt_tensors(layer, container):
            continue
        unlifted.set_submodule(owner, layer)
        with graph.inserting_before(node):
            replacement = graph.call_module(owner, (kwargs["input"],))
        replacement.meta = dict(node.meta)
        node.replace_all_uses_with(replacement)
        graph.erase_node(node)
    graph.eliminate_dead_code()
    # A plain GraphModule: the unlifted one refuses train() and eval().
    module = torch.fx.GraphModule(unlifted, graph)
    module._in_spec, module._out_spec = unlifted._in_spec, unlifted._out_spec
    return module.eval()


def _is_weight_arg(name: str, value: Any) -> bool:
    import torch

    return name != "input" and isinstance(value, torch.fx.Node)


def _owner_path(kwargs: dict[str, Any]) -> str | None:
    """The module path holding every tensor argument of a layer call, each under its
    argument's name (`features.0.weight` for `weight`), or None when they are elsewhere."""
    nodes = {k: v for k, v in kwargs.items() if _is_weight_arg(k, v)}
    if not nodes or any(v.op != "get_attr" for v in nodes.values()):
        return None
    paths = {k: v.target.rpartition(".") for k, v in nodes.items()}
    owners = {owner for owner, _, _ in paths.values()}
    if len(owners) != 1 or any(attr != k for k, (_, _, attr) in paths.items()):
        return None
    return owners.pop() or None


def _adopt_tensors(layer: Any, container: Any) -> bool:
    """Move the container's parameters and buffers onto `layer`; False when they do not
    match the layer's own, kind for kind and shape for shape."""
    import torch

    def tensors(module: Any) -> dict[str, Any]:
        own = dict(module.named_parameters(recurse=False))
        return own | dict(module.named_buffers(recurse=False))

    given, slots = tensors(container), tensors(layer)
    if any(container.children()) or set(slots) - set(given) - {"num_batches_tracked"}:
        return False
    for name, tensor in given.items():
        slot = slots.get(name)
        if (
            slot is None
            or slot.shape != tensor.shape
            or isinstance(slot, torch.nn.Parameter) != isinstance(tensor, torch.nn.Parameter)
        ):
            return False
    for name, tensor in given.items():
        setattr(layer, name, tensor)
    return True


def _layer_builders() -> dict[Any, Any]:
    """ATen layer ops -> a function (call kwargs, weight tensors, input value) -> module."""
    import torch

    aten = torch.ops.aten
    convs = (aten.conv1d, aten.conv2d, aten.conv3d)
    return {
        **{op.default: _conv for op in convs},
        **{op.padding: _conv for op in convs},
        aten.linear.default: _linear,
        aten.batch_norm.default: _batch_norm,
        aten.layer_norm.default: _layer_norm,
    }


def _conv(kwargs: dict[str, Any], tensors: dict[str, Any], _: Any) -> Any:
    from torch import nn

    weight = tensors["weight"]
    kind = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[weight.dim()]
    padding = kwargs["padding"]
    return kind(
        weight.shape[1] * kwargs["groups"],
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=tuple(kwargs["stride"]),
        padding=padding if isinstance(padding, str) else tuple(padding),
        dilation=tuple(kwargs["dilation"]),
        groups=kwargs["groups"],
        bias="bias" in tensors,
    )


def _linear(kwargs: dict[str, Any], tensors: dict[str, Any], _: Any) -> Any:
    from torch import nn

    weight = tensors["weight"]
    return nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in tensors)


def _batch_norm(kwargs: dict[str, Any], tensors: dict[str, Any], value: Any) -> Any:
    from torch import nn

    kinds = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
    # Batch statistics (training=True) are not what an eval-mode module computes.
    if kwargs["training"] or "running_mean" not in tensors or value is None:
        return None
    kind = kinds.get(value.dim())
    affine = "weight" in tensors
    if kind is None or affine != ("bias" in tensors):
        return None
    features = tensors["running_mean"].shape[0]
    return kind(features, eps=kwargs["eps"], momentum=kwargs["momentum"], affine=affine)


def _layer_norm(kwargs: dict[str, Any], tensors: dict[str, Any], _: Any) -> Any:
    from torch import nn

    return nn.LayerNorm(
        kwargs["normalized_shape"],
        eps=kwargs["eps"],
        elementwise_affine="weight" in tensors,
        bias="bias" in tensors,
    )


def first_line(text: str) -> str:
    """The first non-blank line of an error message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"
