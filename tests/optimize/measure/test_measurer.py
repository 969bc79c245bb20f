"""The measurer across runs: figures stored under a run's conditions are taken again."""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from copies import AddsNote
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


@dataclass(frozen=True)
class FoldsWeights(Pass):
    """Multiplies a chain of MatMuls by constant weights into one: the same linear map in
    one small product."""

    name = "folds_weights"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        model = onnx.load(src)
        graph = model.graph
        weights = {w.name: numpy_helper.to_array(w) for w in graph.initializer}
        folded = functools.reduce(np.matmul, [weights[n.input[1]] for n in graph.node])
        del graph.node[:], graph.initializer[:]
        graph.initializer.append(numpy_helper.from_array(folded, "folded"))
        graph.node.append(helper.make_node("MatMul", ["x", "folded"], [graph.output[0].name]))
        onnx.save(model, out_dir / "model.onnx")
        return Outcome(out_dir / "model.onnx", changed=True)


def test_a_stored_screening_left_unjudged_is_judged_only_if_it_can_still_win(
    deep_linear_onnx, tmp_path, monkeypatch
):
    model = deep_linear_onnx
    fast, copy = Chain((FoldsWeights(),), "folded"), Chain((AddsNote(),), "a copy")

    def recipe(chains):
        measure = {"seconds": 0.1, "screen_seconds": 0.1, "torch_runtimes": False}
        return Recipe(
            model=model,
            out=tmp_path / "out",
            chains=chains,
            builtin=False,
            measure={**measure, "onnx_runtimes": []},
            search={"fallback": False},
        )

    # The copy, as slow as the model, is screened after the folded one: left unjudged.
    first = run(recipe([fast, copy]))
    [slow] = [v for v in first.variants if v.steps and v.steps[-1].name == "adds_note"]
    assert slow.fidelity is None
    # The next run screens the copy first, before any faster candidate, as a run trying the
    # chains in another order does. Its stored screening stands: the folded one, screened
    # after it, is still faster beyond noise.
    monkeypatch.setenv("OPTIMIZE_CACHE_DIR", str(tmp_path / "no_gains_kept"))
    again = run(recipe([copy, fast]))
    [slow] = [v for v in again.variants if v.steps and v.steps[-1].name == "adds_note"]
    assert slow.measurements_cached and slow.fidelity is None
    assert "folds_weights" in slow.not_timed_further
