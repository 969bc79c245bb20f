"""float16 conversion with onnxconverter-common, keeping float32 inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passes.base import Outcome, Pass, PassContext, PassError
from passes.fp16_overflow import overflowing_nodes
from passes.onnx_files import needs_external_data, save_proto_model
from passes.preprocess import PREPROCESS_PREFIX

# Ops whose fp16 results lose too much (reductions and exponentials overflow or underflow).
DEFAULT_BLOCK_LIST = ("Pow", "ReduceSum", "ReduceMean", "Exp", "Softmax", "LayerNormalization")


@dataclass(frozen=True)
class Float16(Pass):
    """Convert weights and arithmetic to float16 except the ops in `block_list`.

    On CPUs without native fp16 arithmetic this is usually slower: it is measured, not
    assumed, and the numbers decide.
    """

    name = "fp16"
    lowers_precision = True
    float_precision = "fp16"
    libraries = ("onnx", "onnxconverter-common")
    keep_io_types: bool = True
    block_list: tuple[str, ...] = DEFAULT_BLOCK_LIST
    keep_overflowing_in_fp32: bool = True

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import onnx
        from onnxconverter_common import float16

        out = out_dir / "model.onnx"
        hot = []
        if self.keep_overflowing_in_fp32 and ctx.sample_inputs:
            hot = overflowing_nodes(src, ctx.sample_inputs)
        try:
            model = onnx.load(str(src))
            _constants_to_initializers(model)
            # Raw inputs may hold values float16 cannot (inf checks, large magnitudes).
            hot += [n.name for n in model.graph.node if n.name.startswith(PREPROCESS_PREFIX)]
            converted = float16.convert_float_to_float16(
                model,
                keep_io_types=self.keep_io_types,
                op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + list(self.block_list),
                node_block_list=hot,
            )
            _casts_as_declared(converted)
            save_proto_model(converted, out, external=needs_external_data(src))
        except Exception as exc:  # the converter raises untyped errors on unusual graphs
            raise PassError(f"fp16 conversion failed: {exc}") from exc
        note = "float16 weights and arithmetic, float32 I/O"
        hot = [n for n in hot if not n.startswith(PREPROCESS_PREFIX)]
        if hot:
            note += f"; kept in float32 for overflowing float16: {', '.join(hot)}"
        return Outcome(out, changed=True, note=note, metrics={"fp32_nodes_for_overflow": len(hot)})


def _constants_to_initializers(model) -> None:
    """Turn tensor-valued Constant nodes into initializers: the converter keeps a blocked
    initializer in float32 but casts a Constant node's output to float16 regardless."""
    kept = []
    for node in model.graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None:
            value.name = node.output[0]
            model.graph.initializer.append(value)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def _casts_as_declared(model) -> None:
    """Make each Cast to float32 whose output the converter declared float16 cast to float16.

    The converter retypes the tensors between converted nodes but leaves a Cast's `to` as it
    was: a Cast to float32 feeding half-precision nodes (PyTorch's `_to_copy` of an attention
    mask) then disagrees with its declared output, and ONNX Runtime refuses the model.
    """
    from onnx import TensorProto

    declared = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type != "Cast" or declared.get(node.output[0]) != TensorProto.FLOAT16:
            continue
        for attribute in node.attribute:
            if attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.FLOAT16
