"""Which pass chains to try for a target: literal lists, with the reason beside each."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.targets import Target
from passes.base import Pass
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_static import QuantizeStatic


@dataclass(frozen=True)
class Chain:
    """Passes applied in order after the model is in ONNX form, and why it is worth trying."""

    passes: tuple[Pass, ...]
    why: str


def builtin_chains(target: Target) -> list[Chain]:
    """The chains `optimize run` tries by default on `target`. Every prefix of each chain
    is measured too, so the baseline (the exported model alone) is always present."""
    return [
        Chain((), "the exported model as it is: the baseline every variant is compared with"),
        Chain(
            (OrtGraphOptimize("basic"),),
            "constant folding and redundant-node removal; portable to any machine",
        ),
        Chain(
            (OrtGraphOptimize("extended"),),
            "adds operator fusions (GELU, LayerNorm, attention); portable to any machine",
        ),
        Chain(
            (OrtGraphOptimize("all"),),
            "adds layout changes for this machine's kernels: fastest start-up here, "
            "tied to this hardware",
        ),
        Chain(
            (OnnxscriptOptimize(), OrtGraphOptimize("extended")),
            "onnxscript's folding and pattern fusions, then ONNX Runtime's portable fusions",
        ),
        Chain(
            (QuantizeDynamic(),),
            "int8 weights of MatMul-like ops, activations quantized per run: no calibration",
        ),
        Chain(
            (QuantizeStatic("minmax"),),
            "QDQ int8 with per-channel weights, min-max calibrated on the sample inputs",
        ),
        Chain(
            (QuantizeStatic("percentile"),),
            "QDQ int8, percentile calibration: clips outliers that widen min-max ranges",
        ),
        Chain(
            (Float16(),),
            "half-precision weights and arithmetic: fast where the target has fp16 units, "
            "measured everywhere",
        ),
    ]
