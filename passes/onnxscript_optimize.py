"""The onnxscript optimizer: constant folding, dead-code removal and pattern fusions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from passes.base import Outcome, Pass, PassContext, PassError
from passes.onnx_files import needs_external_data, op_histogram, save_ir_model


@dataclass(frozen=True)
class OnnxscriptOptimize(Pass):
    """Fold constants, remove dead code and apply onnxscript's default rewrite rules."""

    name = "onnxscript_optimize"
    libraries = ("onnx", "onnxscript")
    fusions: bool = True

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import onnx_ir as ir
        import onnxscript.optimizer
        import onnxscript.rewriter

        out = out_dir / "model.onnx"
        try:
            model = ir.load(src)
            onnxscript.optimizer.optimize(model)
            if self.fusions:
                onnxscript.rewriter.rewrite(model)
            save_ir_model(model, out, external=needs_external_data(src))
        except Exception as exc:  # the optimizer raises many error types from its rules
            raise PassError(f"onnxscript optimizer failed: {exc}") from exc
        before, after = op_histogram(src), op_histogram(out)
        return Outcome(
            out,
            changed=before != after,
            note=f"{sum(before.values())} -> {sum(after.values())} nodes",
        )
