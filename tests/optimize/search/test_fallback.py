"""The accuracy fallback repairs a static int8 variant that breaks the tolerance."""

import json

import numpy as np
import pytest
import torch
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from passes.quantize_static import QuantizeStatic

# Every variant judged, however slow it screens: these tests read each one's fidelity.
QUICK = {**QUICK_MEASURE, "time_in_full": "all"}


@pytest.fixture(scope="module")
def digits_program(tmp_path_factory, digits, digits_cnn):
    folder = tmp_path_factory.mktemp("fallback")
    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    torch.export.save(program, folder / "cnn.pt2")
    np.savez(folder / "eval.npz", x=digits.test_x)
    np.savez(folder / "calibration.npz", x=digits.train_x[:256])
    return folder


STATIC = Chain((QuantizeStatic(),), "static int8 only")


# Above int8's size and below the float export's: the export is outside the limits, so a
# repaired int8 variant has no rival within them, whichever is faster on this CPU.
INT8_SIZED_MB = 0.12


def _run(folder, out, fallback, min_cosine, chain=STATIC, max_size_mb=None):
    recipe = Recipe(
        model=folder / "cnn.pt2",
        out=out,
        data={"eval": folder / "eval.npz", "calibration": folder / "calibration.npz"},
        chains=[chain],
        builtin=False,
        limits={"min_cosine": min_cosine, "max_size_mb": max_size_mb},
        measure=QUICK,
        search={"fallback": fallback},
    )
    return run(recipe)


@pytest.fixture(scope="module")
def plain(digits_program, tmp_path_factory):
    """Plain static int8, measured once; tolerances below are set just above its fidelity,
    so the fallback must act whatever CPU runs the test."""
    return _run(digits_program, tmp_path_factory.mktemp("plain"), False, 0.0).variants[-1]


def _just_above(variant) -> float:
    cosine = variant.fidelity.mean_cosine
    return cosine + 0.2 * (1 - cosine)


def test_plain_static_int8_breaks_a_tolerance_just_above_it(plain, digits_program, tmp_path):
    results = _run(digits_program, tmp_path, False, _just_above(plain))
    quantized = results.variants[-1]
    assert quantized.label == "export → quantize_static"
    assert quantized.verdict is not None and "mean cosine" in quantized.verdict
    assert results.repairs == []


def test_fallback_brings_it_back_within_and_lists_the_nodes(plain, digits_program, tmp_path):
    target = _just_above(plain)
    results = _run(digits_program, tmp_path, True, target, max_size_mb=INT8_SIZED_MB)
    [record] = results.repairs
    assert record.repaired_id is not None
    repaired = results.variant(record.repaired_id)
    assert repaired.within_tolerance
    assert repaired.fidelity.mean_cosine >= target
    [step] = [s for s in record.steps if s.variant_id == record.repaired_id]
    excluded = step.excluded
    # The fewest that suffice: with one node fewer in float, it was still outside.
    fewer = [s for s in record.steps if len(s.excluded) == len(excluded) - 1]
    assert all(s.verdict for s in fewer)
    # Steps grow 1, 2, 4, … then bisect: far fewer than one build per node.
    assert len(record.steps) <= 2 * len(record.sensitivity).bit_length()
    assert excluded and all(name.startswith("node_") for name in excluded)
    assert tuple(repaired.steps[-1].params["nodes_to_exclude"]) == tuple(excluded)
    assert set(record.sensitivity) >= set(excluded)
    report = json.loads((tmp_path / "report.json").read_text())
    assert excluded in [s["excluded"] for s in report["repairs"][0]["steps"]]
    markdown = (tmp_path / "report.md").read_text()
    assert "## Accuracy fallback" in markdown and f"`{excluded[0]}`" in markdown
    # The repaired model still quantizes the rest: it is smaller than the float export.
    export = results.variants[0]
    assert repaired.size_mb < 0.6 * export.size_mb


def test_a_variant_not_clearly_faster_than_one_within_is_not_repaired():
    from figures import measured_variant as measured

    from optimize.search.fallback import not_worth_repairing, rival_within_limits

    fp32 = measured("fp32", 24.0, 1.0)
    slow_int8 = measured("static", 42.0, 0.35, verdict="mean cosine 0.35 < 0.99")
    close_int8 = measured("dynamic", 26.0, 0.95, verdict="mean cosine 0.95 < 0.99")
    fast_int8 = measured("per-channel", 12.0, 0.98, verdict="mean cosine 0.98 < 0.99")
    field = [fp32, slow_int8, close_int8, fast_int8]
    assert rival_within_limits(slow_int8, field) is fp32
    assert "not clearly faster than original (24.000 ms)" in not_worth_repairing(slow_int8, fp32)
    # A repair only adds time: about as fast as fp32 before it, it cannot win after.
    assert rival_within_limits(close_int8, field) is fp32
    assert rival_within_limits(fast_int8, field) is None


def test_the_ranking_puts_the_node_whose_quantization_hurts_most_first(tmp_path, save_float_graph):
    from onnx import helper

    from passes.quant_error import quantization_errors

    rng = np.random.default_rng(0)
    smooth = rng.standard_normal((8, 8)).astype(np.float32)
    spiky = smooth.copy()
    spiky[0, 0] = 500.0  # one outlier stretches the int8 scale over every other weight
    nodes = [
        helper.make_node("MatMul", ["x", "smooth"], ["h"], name="smooth_mm"),
        helper.make_node("MatMul", ["h", "spiky"], ["y"], name="spiky_mm"),
    ]
    path = save_float_graph(tmp_path / "m.onnx", nodes, {"smooth": smooth, "spiky": spiky}, 8, 8)
    feeds = {"x": rng.standard_normal((4, 8)).astype(np.float32)}
    errors = quantization_errors(path, ["MatMul"], False, feeds)
    assert errors["spiky_mm"] > 2 * errors["smooth_mm"] > 0
    assert quantization_errors(path, ["MatMul"], True, feeds)["smooth_mm"] < errors["smooth_mm"]


def test_fallback_adds_to_the_nodes_a_variant_already_keeps_in_float(
    plain, digits_program, tmp_path
):
    from passes.quant_prep import quantized_nodes

    first = _run(digits_program, tmp_path / "first", False, 0.0)
    kept = quantized_nodes(first.variants[0].path, first.variants[-1].path)[-1]
    chain = Chain((QuantizeStatic(nodes_to_exclude=(kept,)),), "one node kept in float")
    results = _run(
        digits_program, tmp_path / "second", True, _just_above(plain), chain, INT8_SIZED_MB
    )
    records = [r for r in results.repairs if r.sensitivity]
    if not records:  # keeping that node alone was enough: nothing to repair
        assert results.variants[-1].within_tolerance
        return
    [record] = records
    assert kept not in record.sensitivity
    assert record.steps and all(step.excluded[0] == kept for step in record.steps)


def test_fallback_repairs_nncf_int8_through_its_ignored_scope(digits_program, tmp_path):
    from passes.quantize_nncf import QuantizeNncf

    chain = Chain((QuantizeNncf(),), "NNCF int8 only")

    def nncf_variant(results):
        return next(v for v in results.variants if v.label == "export → quantize_nncf")

    plain_run = _run(digits_program, tmp_path / "plain", False, 0.0, chain)
    plain_nncf = nncf_variant(plain_run)
    target = _just_above(plain_nncf)
    # Just under the export's size: the export is outside the limits, so the repair has
    # no rival within them, whichever is faster on this CPU.
    below_export_mb = 0.999 * plain_run.variants[0].size_mb
    results = _run(digits_program, tmp_path / "repaired", True, target, chain, below_export_mb)
    [record] = [r for r in results.repairs if r.variant_id == plain_nncf.id]
    assert record.repaired_id is not None, record.note
    repaired = results.variant(record.repaired_id)
    assert repaired.within_tolerance and repaired.fidelity.mean_cosine >= target
    excluded = repaired.steps[-1].params["nodes_to_exclude"]
    assert excluded and set(excluded) <= set(record.sensitivity)
    assert "kept in float" in repaired.steps[-1].note
