"""Why a quantized or reduced-precision variant came out slower than the model it was made
from: the conversion overhead a person can act on."""

from __future__ import annotations

from optimize.pipeline import Variant
from passes.onnx_files import op_histogram

CONVERSION_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast")
LOW_PRECISION_PASSES = ("quantize_dynamic", "quantize_static", "quantize_int4", "fp16")


def slowdown_note(variant: Variant, parent: Variant) -> str | None:
    """A note when `variant`, made by a low-precision pass, is slower than `parent`:
    how much slower, and how many conversion nodes it carries against the float ops it
    still runs."""
    if not (variant.p50_ms and parent.p50_ms) or not variant.steps:
        return None
    if variant.steps[-1].name not in LOW_PRECISION_PASSES or variant.p50_ms <= parent.p50_ms:
        return None
    ops = op_histogram(variant.path)
    conversions = {op: n for op, n in ops.items() if op.split(".")[-1] in CONVERSION_OPS}
    others = sum(n for op, n in ops.items() if op not in conversions)
    counted = ", ".join(f"{n} {op}" for op, n in conversions.items()) or "no conversion nodes"
    return (
        f"{variant.p50_ms / parent.p50_ms:.2f}× slower than {parent.label}: {counted} "
        f"around {others} compute nodes; each conversion costs a pass over its tensor, which "
        "outweighs integer or half-precision arithmetic on a small model, or where the CPU "
        "lacks fast kernels for it"
    )
