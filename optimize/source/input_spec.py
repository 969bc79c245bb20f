"""Input specs of ONNX graph inputs, and the --input flags merged into them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optimize.config.input_flags import InputFlag
from optimize.errors import UserError
from passes.base import DTYPES, TensorSpec

# ONNX TensorProto element types this tool feeds, by the DTYPES name they map to.
_ONNX_ELEM_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


@dataclass(frozen=True)
class Unshaped:
    """A declared input whose shape the file does not record; an --input flag must give it."""

    name: str
    dtype: str


def onnx_input_specs(path: Path, graph) -> list[TensorSpec | Unshaped]:
    """The inputs an ONNX graph declares (initializers excluded), as the file records them."""
    initializers = {t.name for t in graph.initializer}
    return [_onnx_input_spec(path, vi) for vi in graph.input if vi.name not in initializers]


def _onnx_input_spec(path: Path, value_info) -> TensorSpec | Unshaped:
    if not value_info.type.HasField("tensor_type"):
        raise UserError(
            f"{path}: input '{value_info.name}' is not a tensor (a sequence, map or optional); "
            "only tensor inputs are supported"
        )
    tensor_type = value_info.type.tensor_type
    dtype = _ONNX_ELEM_TYPES.get(tensor_type.elem_type)
    if dtype is None:
        import onnx

        type_name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        raise UserError(
            f"{path}: input '{value_info.name}' has element type {type_name}, which is not "
            f"supported; supported: {', '.join(DTYPES)}"
        )
    if not tensor_type.HasField("shape"):
        return Unshaped(value_info.name, dtype)
    dims: list[int | str] = []
    for index, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or f"dim{index}")
    return TensorSpec(value_info.name, tuple(dims), dtype)


def apply_flags_by_name(
    path: Path, declared: list[TensorSpec | Unshaped], flags: list[InputFlag]
) -> list[TensorSpec]:
    """Declared inputs, each replaced by the --input flag of its name; flags must name
    declared inputs and agree with the sizes and dtypes the file fixes."""
    by_name = {d.name: d for d in declared}
    unknown = [f.spec.name for f in flags if f.spec.name not in by_name]
    if unknown:
        raise UserError(
            f"--input names {', '.join(unknown)} are not inputs of {path.name}; "
            f"its inputs are: {', '.join(by_name) or 'none'}"
        )
    given = {f.spec.name: f for f in flags}
    specs = []
    for item in declared:
        flag = given.get(item.name)
        if flag is None:
            if isinstance(item, Unshaped):
                raise UserError(
                    f"{path.name} does not record the shape of input '{item.name}'; give it "
                    f"with --input {item.name}:batch,...:{item.dtype}"
                )
            specs.append(item)
            continue
        specs.append(_merge_flag(item, flag))
    return specs


def _merge_flag(item: TensorSpec | Unshaped, flag: InputFlag) -> TensorSpec:
    spec = flag.spec
    if flag.dtype_given and spec.dtype != item.dtype:
        raise UserError(
            f"--input {spec.name}: the model takes {item.dtype}, not {spec.dtype}; "
            f"drop the dtype or use {item.dtype}"
        )
    if isinstance(item, TensorSpec):
        if len(spec.dims) != len(item.dims):
            raise UserError(
                f"--input {spec.name}: the model's input has {len(item.dims)} dims "
                f"({_dims_text(item.dims)}), the flag gives {len(spec.dims)}"
            )
        for index, (fixed, wanted) in enumerate(zip(item.dims, spec.dims, strict=True)):
            if isinstance(fixed, int) and isinstance(wanted, int) and fixed != wanted:
                raise UserError(
                    f"--input {spec.name}: dim {index} is fixed at {fixed} in the model, "
                    f"not {wanted} ({_dims_text(item.dims)})"
                )
    return TensorSpec(spec.name, spec.dims, item.dtype)


def _dims_text(dims: tuple[int | str, ...]) -> str:
    return ",".join(str(d) for d in dims)
