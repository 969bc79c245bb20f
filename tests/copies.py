"""A pass for tests that makes another file of the same model: the same graph, and so the
same speed and outputs. Importable from any test (tests/ is on the path through its conftest)."""

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import helper

from passes.base import Outcome, Pass, PassContext


@dataclass(frozen=True)
class AddsNote(Pass):
    """Adds a metadata entry: another file, the same graph and so the same speed."""

    name = "adds_note"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        model = onnx.load(src)
        helper.set_model_props(model, {f"note{len(model.metadata_props)}": "a copy"})
        onnx.save(model, out_dir / "model.onnx")
        return Outcome(out_dir / "model.onnx", changed=True)
