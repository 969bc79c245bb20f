"""The measurer across runs: figures stored under a run's conditions are taken again."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from passes.base import Outcome, Pass, PassContext


@dataclass(frozen=True)
class ShiftsOutput(Pass):
    """Adds ten to the output: a model outside the limits, which cannot be picked."""

    name = "shifts_output"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        model = onnx.load(src)
        output = model.graph.output[0].name
        for node in model.graph.node:
            node.output[:] = [f"{output}_unshifted" if o == output else o for o in node.output]
        model.graph.initializer.append(numpy_helper.from_array(np.float32(10.0), "ten"))
        model.graph.node.append(helper.make_node("Add", [f"{output}_unshifted", "ten"], [output]))
        onnx.save(model, out_dir / "model.onnx")
        return Outcome(out_dir / "model.onnx", changed=True)


def _recipe(model: Path, out: Path, budget_minutes: float) -> Recipe:
    return Recipe(
        model=model,
        out=out,
        chains=[Chain((ShiftsOutput(),), "a copy outside the limits")],
        builtin=False,
        measure={
            "seconds": 0.2,
            "screen_seconds": 0.1,
            "torch_runtimes": False,
            "onnx_runtimes": [],
        },
        search={"fallback": False, "budget_minutes": budget_minutes},
    )


def test_a_budgeted_re_run_takes_the_shortened_full_timing_it_stored(digits_cnn_onnx, tmp_path):
    # The first run's budget is spent before its pick is timed in full: that timing is
    # shortened to the least. The next has time for a longer one, and takes the stored.
    first = run(_recipe(digits_cnn_onnx, tmp_path / "out", 1e-4))
    assert first.pick.timing == "full"
    again = run(_recipe(digits_cnn_onnx, tmp_path / "out", 1.0))
    assert again.pick.id == first.pick.id
    assert again.pick.timing == "full" and again.pick.measurements_cached
    assert again.pick.p50_ms == first.pick.p50_ms
