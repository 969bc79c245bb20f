"""Preprocessing compiled into the graph: ONNX nodes for a spec, merged in front of the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from passes.base import Outcome, Pass, PassContext, PassError, TensorSpec
from passes.onnx_files import needs_external_data, save_proto_model
from passes.preprocess_spec import PreprocessSpec, parse_preprocessing, raw_input_specs
from passes.preprocess_steps import (
    LAYOUTS,
    Clip,
    Layout,
    MinMax,
    OneHot,
    ReplaceInvalid,
    Standardize,
    ToFloat,
    per_column,
)

# Every node of the preprocessing graph is named under this prefix, so later passes can
# leave it alone (quantization calibrates no raw input; fp16 keeps it in float32).
PREPROCESS_PREFIX = "preprocess/"
# IsInf (opset 10) is the newest operator the preprocessing uses.
MIN_OPSET = 10
FLOAT = 1  # onnx.TensorProto.FLOAT, without importing onnx when the module loads


@dataclass(frozen=True)
class Preprocess(Pass):
    """Put the fitted preprocessing `spec` (JSON, see PreprocessSpec.to_json) in front of
    the model, so the served model takes raw inputs under the same input names."""

    name = "preprocess"
    lead_in = True
    spec: str

    def __post_init__(self) -> None:
        self.parsed()

    @classmethod
    def from_spec(cls, spec: PreprocessSpec) -> Preprocess:
        """The pass for a spec object."""
        return cls(spec.to_json())

    def parsed(self) -> PreprocessSpec:
        """The spec as steps."""
        return parse_preprocessing(json.loads(self.spec))

    def label(self) -> str:
        return f"preprocess({self.parsed().summary()})"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import onnx

        spec = self.parsed()
        if spec.unfitted():
            missing = ", ".join(spec.unfitted())
            raise PassError(
                f"preprocessing statistics not fitted ({missing}): fit the spec on data"
            )
        model = onnx.load(str(src))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < MIN_OPSET:
            raise PassError(
                f"preprocessing needs opset {MIN_OPSET} or later; the model has {opset}"
            )
        model_inputs = {i.name: i for i in model.graph.input}
        _check_inputs(spec, model_inputs)
        io_map = [(f"{PREPROCESS_PREFIX}{name}/out", name) for name, _ in spec.inputs]
        try:
            merged = onnx.compose.merge_graphs(
                _preprocessing_graph(spec, model_inputs),
                model.graph,
                io_map=io_map,
                name=model.graph.name,
                doc_string=model.graph.doc_string,
            )
        except ValueError as exc:
            raise PassError(f"could not merge preprocessing into the model: {exc}") from exc
        # Keep the model's input order, so positional callers see the same signature.
        order = [i.name for i in model.graph.input]
        inputs = sorted(merged.input, key=lambda i: order.index(i.name))
        del merged.input[:]
        merged.input.extend(inputs)
        # The model keeps its opsets, functions and metadata; only the graph grows.
        model.graph.CopyFrom(merged)
        out = out_dir / "model.onnx"
        save_proto_model(model, out, external=needs_external_data(src))
        try:
            onnx.checker.check_model(str(out), full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise PassError(f"the preprocessed model is invalid: {exc}") from exc
        return Outcome(out, changed=True, note=f"raw inputs: {spec.summary()}")


def _check_inputs(spec: PreprocessSpec, model_inputs: dict) -> None:
    from onnx import TensorProto

    for name, steps in spec.inputs:
        if name not in model_inputs:
            have = ", ".join(model_inputs)
            raise PassError(f"preprocessing names input '{name}'; the model's inputs are {have}")
        elem = model_inputs[name].type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            dtype = TensorProto.DataType.Name(elem).lower()
            raise PassError(f"input '{name}' is {dtype}, but preprocessing produces float32")
        if not model_inputs[name].type.tensor_type.HasField("shape"):
            raise PassError(f"input '{name}' has no shape; preprocessing needs at least its rank")
        dims = _dims(model_inputs[name])
        if isinstance(steps[-1], OneHot) and isinstance(dims[-1], int):
            if dims[-1] != steps[-1].width():
                raise PassError(
                    f"input '{name}' has {dims[-1]} columns, one_hot makes {steps[-1].width()}"
                )


def _dims(value_info) -> tuple[int | str, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(
        d.dim_value if d.HasField("dim_value") else d.dim_param or f"{value_info.name}_{i}"
        for i, d in enumerate(dims)
    )


def _preprocessing_graph(spec: PreprocessSpec, model_inputs: dict):
    """A graph from each raw input to 'preprocess/<name>/out', typed as the model input."""
    from onnx import helper

    specs = [TensorSpec(n, _dims(model_inputs[n])) for n, _ in spec.inputs]
    graph = _GraphBuilder()
    raw_inputs, outputs = [], []
    for raw, (name, steps) in zip(raw_input_specs(spec, specs), spec.inputs, strict=True):
        dtype = helper.np_dtype_to_tensor_dtype(np.dtype(raw.dtype))
        raw_inputs.append(helper.make_tensor_value_info(name, dtype, raw.dims))
        x = name
        for i, step in enumerate(steps):
            graph.prefix = f"{PREPROCESS_PREFIX}{name}/{i}_{step.step}/"
            x = EMITTERS[type(step)](graph, step, x, len(raw.dims))
        out = helper.make_value_info(f"{PREPROCESS_PREFIX}{name}/out", model_inputs[name].type)
        graph.nodes.append(helper.make_node("Identity", [x], [out.name], name=out.name))
        outputs.append(out)
    return helper.make_graph(graph.nodes, "preprocess", raw_inputs, outputs, graph.initializers)


class _GraphBuilder:
    """Nodes and constants of the preprocessing graph, named under the current prefix."""

    def __init__(self) -> None:
        self.nodes, self.initializers, self.prefix = [], [], ""

    def const(self, hint: str, value) -> str:
        from onnx import numpy_helper

        name = f"{self.prefix}{hint}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        from onnx import helper

        name = f"{self.prefix}{hint}"
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name


def _replace_invalid(g: _GraphBuilder, step: ReplaceInvalid, x: str, ndim: int) -> str:
    bad = g.op("Or", [g.op("IsNaN", [x], "nan"), g.op("IsInf", [x], "inf")], "nonfinite")
    if step.low is not None:
        below = g.op("Less", [x, g.const("low", np.float32(step.low))], "below")
        bad = g.op("Or", [bad, below], "or_below")
    if step.high is not None:
        above = g.op("Greater", [x, g.const("high", np.float32(step.high))], "above")
        bad = g.op("Or", [bad, above], "or_above")
    fill = g.const("fill", per_column(step.fill, ndim, step.axis))
    return g.op("Where", [bad, fill, x], "replaced")


def _clip(g: _GraphBuilder, step: Clip, x: str, ndim: int) -> str:
    # Where on comparisons rather than Clip/Min/Max: comparisons with NaN are false, so NaN
    # passes through as in np.clip, whatever the runtime's min/max do with NaN.
    if step.low is not None:
        low = g.const("low", np.float32(step.low))
        x = g.op("Where", [g.op("Less", [x, low], "below"), low, x], "clipped_low")
    if step.high is not None:
        high = g.const("high", np.float32(step.high))
        x = g.op("Where", [g.op("Greater", [x, high], "above"), high, x], "clipped_high")
    return x


def _standardize(g: _GraphBuilder, step: Standardize, x: str, ndim: int) -> str:
    mean = g.const("mean", per_column(step.mean, ndim, step.axis))
    std = g.const("std", per_column(step.std, ndim, step.axis))
    return g.op("Div", [g.op("Sub", [x, mean], "centred"), std], "standardized")


def _min_max(g: _GraphBuilder, step: MinMax, x: str, ndim: int) -> str:
    low = g.const("minimum", per_column(step.minimum, ndim, step.axis))
    span = g.const("span", per_column(step.span(), ndim, step.axis))
    return g.op("Div", [g.op("Sub", [x, low], "shifted"), span], "scaled")


def _one_hot(g: _GraphBuilder, step: OneHot, x: str, ndim: int) -> str:
    # Every slot compares its column's code with its category: one Gather, Equal and Cast.
    column = [j for j, cats in enumerate(step.categories) for _ in cats]
    codes = g.op("Gather", [x, g.const("slot_column", np.array(column, np.int64))], "codes", axis=1)
    flat = np.array([c for cats in step.categories for c in cats], np.int64)
    equal = g.op("Equal", [codes, g.const("slot_category", flat)], "equal")
    hot = g.op("Cast", [equal], "hot", to=FLOAT)
    if step.unknown == "zeros":
        return hot
    # A code is unknown when none of its column's slots matched: 1 - (hot @ membership).
    membership = np.eye(len(step.categories), dtype=np.float32)[column]
    known = g.op("MatMul", [hot, g.const("membership", membership)], "known")
    unknown = g.op("Sub", [g.const("one", np.float32(1.0)), known], "unknown")
    both = g.op("Concat", [hot, unknown], "hot_and_unknown", axis=1)
    # Each column's unknown slot goes right after its categories.
    starts = np.cumsum([0] + [len(c) for c in step.categories])
    order = [
        i
        for j in range(len(step.categories))
        for i in [*range(starts[j], starts[j + 1]), starts[-1] + j]
    ]
    return g.op(
        "Gather", [both, g.const("slot_order", np.array(order, np.int64))], "one_hot", axis=1
    )


def _to_float(g: _GraphBuilder, step: ToFloat, x: str, ndim: int) -> str:
    as_float = g.op("Cast", [x], "as_float", to=FLOAT)
    return g.op("Mul", [as_float, g.const("scale", np.float32(step.scale))], "scaled")


def _layout(g: _GraphBuilder, step: Layout, x: str, ndim: int) -> str:
    return g.op("Transpose", [x], "transposed", perm=list(LAYOUTS[step.order]))


EMITTERS = {
    ReplaceInvalid: _replace_invalid,
    Clip: _clip,
    Standardize: _standardize,
    MinMax: _min_max,
    OneHot: _one_hot,
    ToFloat: _to_float,
    Layout: _layout,
}
