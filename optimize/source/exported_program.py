"""A torch.export program (.pt2) as a source: loaded (importing a library whose output
types it returns), re-exported to take positional inputs and any batch, with its saved
example inputs and its declared batch bound."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from optimize.config.input_flags import InputFlag
from optimize.errors import UserError, first_line
from optimize.source.input_spec import Unshaped, apply_flags_by_name
from passes.base import DTYPES, TensorSpec
from passes.torch_run import dynamic_batch_program, positional_program

BATCH = "batch"


def load_exported_program(path: Path, flags: list[InputFlag]):
    """The program (positional inputs, any batch where the graph allows), its inputs with
    the --input flags applied, and the example inputs saved with it."""
    import torch

    try:
        program = _export_load(path)
    except Exception as exc:  # torch raises many types for damaged or mismatched archives
        program = _load_with_output_types(path, exc)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    declared: list[TensorSpec | Unshaped] = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise UserError(
                f"{path}: input '{name}' is not a tensor; only programs whose inputs are "
                "tensors are supported"
            )
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise UserError(
                f"{path}: input '{name}' is {dtype}, which is not supported; "
                f"supported: {', '.join(DTYPES)}"
            )
        dims = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
        if dims:
            dims = (BATCH, *dims[1:])
        declared.append(TensorSpec(name, dims, dtype))
    try:
        program = positional_program(program)
    except Exception as exc:  # torch.export raises many types
        raise UserError(
            f"{path} takes keyword inputs and could not be re-exported to take them in "
            f"order ({first_line(exc)}); export it with positional inputs"
        ) from exc
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = apply_flags_by_name(path, declared, flags)
    samples = _example_inputs(program, inputs)
    try:
        # Saved programs usually have static shapes (torch.export's default); one that
        # accepts any batch can be measured and evaluated at any batch.
        program = dynamic_batch_program(program, inputs)
    except Exception:  # torch.export raises many types; all mean the graph fixes the batch
        inputs = [_saved_batch(spec, placeholders[spec.name]) for spec in inputs]
    return program, inputs, samples


# How torch names an output type no library has registered with its pytree yet.
UNREGISTERED_TYPE = re.compile(r"Deserializing ([\w.]+) in pytree is not registered")


class _DeserializingError(Exception):
    """torch.export.load failed; the message holds the cause torch logged before it."""


def _export_load(path: Path):
    """torch.export.load, with the cause of a failure in the exception: torch logs the
    archive's own error as a warning and raises a generic one after it."""
    import logging

    import torch

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(str(record.exc_info[1]))

    causes: list[str] = []
    logger, handler = logging.getLogger("torch.export"), Keep()
    logger.addHandler(handler)
    propagates, logger.propagate = logger.propagate, False
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # see load_program
        if causes:
            raise _DeserializingError(f"{causes[0]} ({first_line(exc)})") from exc
        raise
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagates


def _load_with_output_types(path: Path, error: Exception):
    """Load a program whose outputs are of a type a library registers with torch's pytree
    when imported (a transformers ModelOutput): import that library and load again. Any
    other failure, or a library that is not installed, is refused in one line."""
    import importlib
    import importlib.util

    import torch

    unknown = UNREGISTERED_TYPE.search(str(error))
    if unknown is None:
        raise UserError(
            f"{path} looks like a torch.export.save archive but could not be loaded "
            f"({first_line(error)}); save it again with this torch version ({torch.__version__})"
        ) from error
    type_name = unknown.group(1)
    module, package = type_name.rpartition(".")[0], type_name.split(".")[0]
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"{path} returns {type_name}, a type the package '{package}' defines: "
            f"pip install {package}, then run again"
        ) from error
    importlib.import_module(module)
    try:
        return _export_load(path)
    except Exception as exc:  # as above
        raise UserError(
            f"{path} could not be loaded even with {module} imported ({first_line(exc)})"
        ) from exc


def declared_max_batch(program, inputs: list[TensorSpec]) -> int | None:
    """The upper bound the program declares on its batch dim, when finite."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    bounds = []
    for spec in inputs:
        value = placeholders[spec.name].meta.get("val") if spec.has_symbolic_batch else None
        size = value.shape[0] if isinstance(value, torch.Tensor) and value.ndim else None
        if isinstance(size, torch.SymInt):
            upper = program.range_constraints.get(size.node.expr)
            # torch's int_oo calls itself finite: an integer bound is the finite one.
            if upper is not None and upper.upper.is_Integer:
                bounds.append(int(upper.upper))
    return min(bounds) if bounds else None


def _saved_batch(spec: TensorSpec, placeholder) -> TensorSpec:
    if not spec.has_symbolic_batch:
        return spec
    return TensorSpec(spec.name, (placeholder.meta["val"].shape[0], *spec.dims[1:]), spec.dtype)


def _example_inputs(program, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """The example tensors saved in the archive, when they are plain positional tensors."""
    import torch

    if program.example_inputs is None:
        return {}
    args, kwargs = program.example_inputs
    if kwargs or len(args) != len(inputs) or not all(isinstance(a, torch.Tensor) for a in args):
        return {}
    return {spec.name: a.detach().cpu().numpy() for spec, a in zip(inputs, args, strict=True)}
