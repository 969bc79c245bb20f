"""The search stops a chain whose step is clearly dominated, and keeps to its time budget."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from passes.base import Outcome, Pass, PassContext
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_static import QuantizeStatic

QUICK = {
    "seconds": 0.1,
    "warmup_seconds": 0.02,
    "warmup_runs": 2,
    "min_runs": 20,
    "torch_runtimes": False,
}


@dataclass(frozen=True)
class AddsDeadWork(Pass):
    """Keeps the outputs but adds 300 MatMuls whose result is multiplied by zero: the same
    quality, many times slower."""

    name = "adds_dead_work"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        model = onnx.load(src)
        graph = model.graph
        weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32) / 8
        graph.initializer.extend(
            [
                numpy_helper.from_array(weight, "dead_w"),
                numpy_helper.from_array(np.array([-1, 64], np.int64), "dead_shape"),
                numpy_helper.from_array(np.array(0.0, np.float32), "dead_zero"),
            ]
        )
        nodes = [helper.make_node("Reshape", ["x", "dead_shape"], ["dead_0"])]
        for i in range(300):
            nodes.append(helper.make_node("MatMul", [f"dead_{i}", "dead_w"], [f"dead_{i + 1}"]))
        output = graph.output[0].name
        nodes += [
            helper.make_node("ReduceSum", ["dead_300"], ["dead_sum"], keepdims=0),
            helper.make_node("Mul", ["dead_sum", "dead_zero"], ["dead_nothing"]),
            helper.make_node("Add", [f"{output}_live", "dead_nothing"], [output]),
        ]
        for node in graph.node:
            node.output[:] = [f"{output}_live" if o == output else o for o in node.output]
        graph.node.extend(nodes)
        onnx.save(model, out_dir / "model.onnx")
        return Outcome(out_dir / "model.onnx", changed=True)


@dataclass(frozen=True)
class ChangesNothing(Pass):
    """Writes its input back as it came, as a pass finding nothing to do does."""

    name = "changes_nothing"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        shutil.copyfile(src, out_dir / "model.onnx")
        return Outcome(out_dir / "model.onnx", changed=False)


def _run(model, out, chains, say=lambda message: None, limits=None, judge_all=False, **search):
    """A run of just `chains`, with the limits and search settings given, its progress lines
    to `say`; `judge_all` judges every variant's outputs, however slow it screens."""
    recipe = Recipe(
        model=model,
        out=out,
        chains=chains,
        builtin=False,
        measure={**QUICK, "time_in_full": "all"} if judge_all else QUICK,
        search=search,
        limits=limits or {},
    )
    return run(recipe, lambda message, *_: say(message))


def test_a_dominated_step_stops_its_chain(digits_cnn_onnx, tmp_path):
    # The slow chain first: its step is judged against the baseline alone.
    chains = [
        Chain((AddsDeadWork(), OrtGraphOptimize("extended")), "slow first step"),
        Chain((OrtGraphOptimize("basic"),), "fast"),
    ]
    said = []
    results = _run(digits_cnn_onnx, tmp_path, chains, said.append, fallback=False)
    by_label = {v.label: v for v in results.variants}
    slow = by_label["adds_dead_work"]
    # Beaten clearly on speed by a variant within the limits, its outputs were not judged.
    assert slow.status == "measured" and slow.fidelity is None and not slow.outside_limits
    assert slow.not_timed_further.endswith("its outputs were not judged")
    rest = by_label["adds_dead_work → ort_graph"]
    assert rest.status == "skipped" and "clearly dominated" in rest.reason
    # Screened a second time before its chain was cut; a step that won is screened once.
    assert said.count("screening adds_dead_work again") == 1
    assert not any(line.startswith("screening ort_graph") and "again" in line for line in said)
    assert not (tmp_path / "variants" / rest.id).exists()


def test_nothing_starts_after_the_budget(digits_cnn_onnx, tmp_path):
    chains = [Chain((OrtGraphOptimize("basic"), OrtGraphOptimize("extended")), "two steps")]
    results = _run(digits_cnn_onnx, tmp_path, chains, budget_minutes=1e-6)
    skipped = [v for v in results.variants if v.status == "skipped"]
    assert skipped and all("budget was spent" in v.reason for v in skipped)
    assert results.variants[0].status == "measured"
    # The baseline is still timed in full (the pick rests on it), and the run says what was cut.
    assert results.pick is results.variants[0] and results.pick.timing == "full"
    assert any(w.startswith("the 1e-06-minute budget was spent after") for w in results.warnings)


def test_a_step_that_changes_nothing_is_not_screened_but_built_on(digits_cnn_onnx, tmp_path):
    chains = [Chain((ChangesNothing(), AddsDeadWork()), "a no-op, then real work")]
    results = _run(digits_cnn_onnx, tmp_path, chains, fallback=False)
    by_label = {v.label: v for v in results.variants}
    same = by_label["changes_nothing"]
    assert same.status == "skipped" and "changed nothing" in same.reason
    assert same.measurements is None
    assert by_label["changes_nothing → adds_dead_work"].status == "measured"


def test_an_accuracy_alternative_is_spared_when_its_chain_is_within_the_limits(
    digits_cnn_onnx, tmp_path
):
    minmax = QuantizeStatic(reduce_range=False)
    chains = [
        Chain((minmax,), "static int8"),
        Chain((QuantizeStatic("percentile", reduce_range=False),), "clips", accuracy_for=(minmax,)),
    ]
    # Judged whatever its speed: int8 may screen slower than the float export here.
    results = _run(digits_cnn_onnx, tmp_path, chains, judge_all=True, fallback=False)
    by_label = {v.label: v for v in results.variants}
    assert by_label["quantize_static(reduce_range=False)"].within_tolerance
    spared = by_label["quantize_static(calibration=percentile, reduce_range=False)"]
    assert spared.status == "skipped" and "within the limits already" in spared.reason
    assert not (tmp_path / "variants" / spared.id).exists()


def test_an_accuracy_alternative_is_tried_near_the_limits_and_spared_far_outside(
    digits_cnn_onnx, tmp_path
):
    minmax = QuantizeStatic(reduce_range=False)
    percentile = QuantizeStatic("percentile", reduce_range=False)
    chains = [
        Chain((minmax,), "static int8"),
        Chain((percentile,), "clips", accuracy_for=(minmax,)),
    ]
    # A cosine so near 1 that int8 loses hundreds of times what it allows.
    far = _run(
        digits_cnn_onnx,
        tmp_path / "far",
        chains,
        limits={"min_cosine": 0.9999999},
        judge_all=True,
        fallback=False,
    )
    by_label = {v.label: v for v in far.variants}
    base = by_label[minmax.label()]
    assert base.times_allowed_loss > 100
    spared = by_label[percentile.label()]
    assert spared.status == "skipped" and "what the limits allow" in spared.reason
    # Allowed a third of what the base lost: within reach, so the alternative is tried.
    lost = 1 - base.fidelity.mean_cosine
    near = _run(
        digits_cnn_onnx,
        tmp_path / "near",
        chains,
        limits={"min_cosine": 1 - lost / 3},
        judge_all=True,
        fallback=False,
    )
    by_label = {v.label: v for v in near.variants}
    assert 2 < by_label[minmax.label()].times_allowed_loss < 4
    assert by_label[percentile.label()].status == "measured"


def test_a_chain_not_for_attention_is_left_out_on_a_transformer_with_its_alternatives(
    tiny_transformer, digits_cnn_onnx, tmp_path
):
    import torch

    minmax = QuantizeStatic(reduce_range=False)
    percentile = QuantizeStatic("percentile", reduce_range=False)
    chains = [
        Chain((minmax,), "static int8", not_for_attention="slower there"),
        Chain((percentile,), "clips", accuracy_for=(minmax,)),
    ]
    program = torch.export.export(tiny_transformer, (torch.randn(2, 16, 64),))
    torch.export.save(program, tmp_path / "transformer.pt2")
    results = _run(tmp_path / "transformer.pt2", tmp_path / "transformer", chains, fallback=False)
    by_label = {v.label.removeprefix("export → "): v for v in results.variants}
    left_out = by_label[minmax.label()]
    assert left_out.status == "skipped"
    assert left_out.reason == "not tried: the model has attention; slower there"
    alternative = by_label[percentile.label()]
    assert alternative.status == "skipped" and "was not tried" in alternative.reason
    assert not (tmp_path / "transformer" / "variants" / left_out.id).exists()
    # A CNN has no attention: the chain is tried there.
    results = _run(digits_cnn_onnx, tmp_path / "cnn", chains, fallback=False)
    assert {v.label: v for v in results.variants}[minmax.label()].status == "measured"
