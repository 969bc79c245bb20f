"""Every pass by name: the one list the recipe, the builder and the report look passes up in.
Adding a pass is its own file plus one line here."""

from __future__ import annotations

from passes.base import Pass
from passes.export import ExportToOnnx
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize
from passes.preprocess import Preprocess
from passes.prune_magnitude import PruneMagnitude
from passes.prune_structured import PruneStructured
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

PASSES: dict[str, type[Pass]] = {
    cls.name: cls
    for cls in (
        ExportToOnnx,
        Preprocess,
        OrtGraphOptimize,
        OnnxscriptOptimize,
        QuantizeDynamic,
        QuantizeStatic,
        QuantizeInt4,
        Float16,
        PruneStructured,
        PruneMagnitude,
    )
}

# The passes a chain may name: the lead-in ones run in front of every chain by themselves.
CHAINABLE: dict[str, type[Pass]] = {n: c for n, c in PASSES.items() if not c.lead_in}


def pass_class(name: str) -> type[Pass] | None:
    """The pass class a step's name refers to, or None for a name no pass has (a step
    recorded by an older version)."""
    return PASSES.get(name)
