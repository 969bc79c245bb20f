"""float16 conversion with onnxconverter-common, keeping float32 inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import needs_external_data, save_proto_model

# Ops whose fp16 results lose too much (reductions and exponentials overflow or underflow).
DEFAULT_BLOCK_LIST = ("Pow", "ReduceSum", "ReduceMean", "Exp", "Softmax", "LayerNormalization")


@dataclass(frozen=True)
class Float16(Pass):
    """Convert weights and arithmetic to float16 except the ops in `block_list`.

    On CPUs without native fp16 arithmetic this is usually slower: it is measured, not
    assumed, and the numbers decide.
    """

    name = "fp16"
    keep_io_types: bool = True
    block_list: tuple[str, ...] = DEFAULT_BLOCK_LIST

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import onnx
        from onnxconverter_common import float16

        out = out_dir / "model.onnx"
        try:
            model = onnx.load(str(src))
            converted = float16.convert_float_to_float16(
                model,
                keep_io_types=self.keep_io_types,
                op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + list(self.block_list),
            )
            save_proto_model(converted, out, external=needs_external_data(src))
        except Exception as exc:  # the converter raises untyped errors on unusual graphs
            raise PassError(f"fp16 conversion failed: {exc}") from exc
        return Outcome(out, changed=True, note="float16 weights and arithmetic, float32 I/O")
