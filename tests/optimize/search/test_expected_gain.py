"""Chains are tried most expected gain first: from the CPU's features, then from what runs
on the same hardware class measured, kept in the user's cache folder."""

import json

from hardware.targets import parse_target
from optimize.api import dry_run, run
from optimize.config.chains import Chain, builtin_chains
from optimize.config.recipe import Recipe
from optimize.search.expected_gain import (
    GAINS_FILE,
    expected_gain_order,
    gains_folder,
    read_gains,
)
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_static import QuantizeStatic

VNNI = ["avx2", "fma", "avx512f", "avx512_vnni"]
AVX2 = ["avx2", "fma"]


def _names(chains):
    return [" → ".join(p.label() for p in c.passes) for c in chains]


def test_int8_leads_where_the_cpu_has_vnni_and_fp16_trails_without_fp16_units():
    chains = builtin_chains(parse_target("cpu"), VNNI)
    ordered = _names(expected_gain_order(chains, VNNI, {}))
    assert ordered[0] == "", "the baseline comes first"
    assert ordered[1].startswith("quantize_"), ordered
    assert ordered[-1] == "fp16", ordered
    # Without VNNI, int8 is still tried before fp16, but after the folding passes no more.
    plain = _names(expected_gain_order(builtin_chains(parse_target("cpu"), AVX2), AVX2, {}))
    assert plain.index("onnxscript_optimize") < plain.index("fp16")


def test_gains_measured_on_this_hardware_outrank_the_prior():
    chains = [
        Chain((), "baseline"),
        Chain((QuantizeDynamic(),), "int8"),
        Chain((OnnxscriptOptimize(),), "folding"),
        Chain((Float16(),), "half"),
    ]
    measured = {"fp16": [2.0, 3.0], "quantize_dynamic": [0.9]}
    assert _names(expected_gain_order(chains, VNNI, measured)) == [
        "",
        "fp16",
        "onnxscript_optimize",
        "quantize_dynamic",
    ]


def test_an_accuracy_alternative_follows_its_chain_whatever_was_measured():
    minmax = QuantizeStatic()
    chains = [
        Chain((), "baseline"),
        Chain((QuantizeStatic("percentile"),), "clips", accuracy_for=(minmax,)),
        Chain((minmax,), "int8"),
        Chain((Float16(),), "half"),
    ]
    measured = {"quantize_static(calibration=percentile)": [3.0], "fp16": [1.2]}
    assert _names(expected_gain_order(chains, VNNI, measured)) == [
        "",
        "quantize_static",
        "quantize_static(calibration=percentile)",
        "fp16",
    ]


def test_a_run_keeps_its_gains_and_the_next_plan_follows_them(digits_cnn_onnx, tmp_path):
    chains = [
        Chain((QuantizeDynamic(reduce_range=False),), "int8"),
        Chain((Float16(),), "half"),
    ]
    recipe = Recipe(
        model=digits_cnn_onnx,
        out=tmp_path / "out",
        chains=chains,
        builtin=False,
        measure={"seconds": 0.05, "torch_runtimes": False, "onnx_runtimes": []},
        search={"fallback": False},
    )
    results = run(recipe)
    kept = json.loads((gains_folder() / GAINS_FILE).read_text())
    (mine,) = [gains for gains in kept.values() if "fp16" in gains]
    by_label = {v.label: v for v in results.variants}
    original = by_label["original"].p50_ms
    assert mine["fp16"][-1] == round(original / by_label["fp16"].p50_ms, 4)
    assert read_gains(next(k for k, v in kept.items() if v is mine)) == mine
    # The plan of the next run lists the chains in the order their gains say.
    plan = dry_run(recipe)
    faster_first = sorted(chains, key=lambda c: -mine[_names([c])[0]][-1])
    positions = [plan.index(_names([c])[0]) for c in faster_first]
    assert positions == sorted(positions), plan
