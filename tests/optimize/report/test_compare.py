"""The regression gate flags exactly the problems planted in a real report, and no others."""

import copy
import json
import re

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.report.compare import (
    KNOWN_SCHEMA_VERSIONS,
    compare_reports,
    load_report,
)
from optimize.report.compare_text import render_comparison
from optimize.report.results import SCHEMA_VERSION
from passes.ort_graph import OrtGraphOptimize

QUICK = QUICK_MEASURE


@pytest.fixture(scope="module")
def report_path(tmp_path_factory, digits, digits_cnn_onnx):
    """The report.json of one real run on the digits CNN, with labelled eval data."""
    folder = tmp_path_factory.mktemp("compare")
    model = digits_cnn_onnx
    np.savez(folder / "eval.npz", x=digits.test_x, labels=digits.test_y)
    chains = [Chain((OrtGraphOptimize("all"),), "constant folding")]
    data = {"eval": folder / "eval.npz"}
    run(
        Recipe(
            model=model, out=folder / "out", data=data, chains=chains, builtin=False, measure=QUICK
        )
    )
    return folder / "out" / "report.json"


@pytest.fixture
def old(report_path):
    return load_report(report_path)


@pytest.fixture
def new(old):
    """A copy of the old report, to plant problems in."""
    return copy.deepcopy(old)


def _pick(report):
    return next(v for v in report["variants"] if v["id"] == report["pick"])


def test_an_identical_pair_is_ok(old, new):
    c = compare_reports(old, new)
    assert c.ok and c.regressions == []
    assert c.latency_change == 0.0 and c.quality_metric == "accuracy" and c.quality_change == 0
    assert (c.added, c.removed, c.changed) == ([], [], [])
    text = render_comparison(c)
    assert text.rstrip().endswith("no regression")
    assert re.search(rf"\| old \| {re.escape(_pick(old)['label'])} +\|", text)


def test_a_slower_pick_is_flagged_with_its_numbers(old, new):
    # A tight spread in both runs: a busy machine's measured one can hide +50 %.
    for report in (old, new):
        tight = _pick(report)["measurements"]["latency"]
        tight["iqr_ms"] = tight["p50_ms"] * 0.02
    latency = _pick(new)["measurements"]["latency"]
    before, spread = latency["p50_ms"], latency["iqr_ms"] / 2
    latency["p50_ms"] = before * 1.5
    c = compare_reports(old, new)
    assert not c.ok
    assert c.latency_change == pytest.approx(0.5)
    assert c.regressions == [
        f"+50.0% p50 latency ({before:.3f} ms ± {spread:.3f} → {before * 1.5:.3f} ms ± "
        f"{spread:.3f}) > 10% allowed"
    ]
    assert [v.label for v in c.changed] == [_pick(old)["label"]]
    assert "p50 +50.0%" in c.changed[0].changes[0]
    assert compare_reports(old, new, max_latency_regression=0.6).ok
    text = render_comparison(c)
    assert "+50.0% |" in text and "regressions:\n- +50.0% p50 latency" in text


def test_a_slowdown_within_both_spreads_is_a_note_not_a_regression(old, new):
    for report in (old, new):
        latency = _pick(report)["measurements"]["latency"]
        latency["p50_ms"], latency["iqr_ms"] = 1.0, 0.4
    _pick(new)["measurements"]["latency"]["p50_ms"] = 1.25
    c = compare_reports(old, new)
    assert c.ok and c.latency_change == pytest.approx(0.25)
    assert any("within the two runs' spreads, not counted" in note for note in c.notes)
    # The same slowdown measured tightly is one.
    for report in (old, new):
        _pick(report)["measurements"]["latency"]["iqr_ms"] = 0.01
    assert not compare_reports(old, new).ok


def test_reports_from_different_machines_are_refused_unless_allowed(old, new):
    new["environment"]["cpu_model"] = "Some Other CPU"
    new["environment"]["versions"]["onnxruntime"] = "0.0.1"
    with pytest.raises(UserError, match="the reports come from different machines .*cpu_model"):
        compare_reports(old, new)
    c = compare_reports(old, new, allow_different_host=True)
    assert any(n.startswith("different machines") for n in c.notes)
    assert any("package versions differ (onnxruntime" in n for n in c.notes)


def test_the_table_lines_up_in_a_terminal(old, new):
    _pick(new)["measurements"]["latency"]["p50_ms"] *= 1.5
    lines = render_comparison(compare_reports(old, new)).splitlines()[:5]
    assert len({len(line) for line in lines}) == 1
    assert [line.index("|", 3) for line in lines] == [lines[0].index("|", 3)] * 5


def test_an_accuracy_drop_beyond_the_limit_is_flagged(old, new):
    before = _pick(new)["fidelity"]["accuracy"]
    _pick(new)["fidelity"]["accuracy"] = before - 0.02
    c = compare_reports(old, new, max_accuracy_drop=1.0)
    assert c.quality_metric == "accuracy" and c.quality_change == pytest.approx(-2.0)
    assert c.regressions == [
        f"-2.00 accuracy points ({100 * before:.2f}% → {100 * before - 2:.2f}%) > 1 allowed"
    ]
    assert compare_reports(old, new, max_accuracy_drop=2.5).ok


def test_a_new_report_without_a_pick_is_flagged(old, new):
    new["pick"] = new["pick_onnx"] = None
    c = compare_reports(old, new)
    assert c.new is None and c.latency_change is None
    assert c.regressions == [
        "the new report has no pick (no variant within tolerance); the old one picked "
        f"{_pick(old)['label']} ({_pick(old)['measurements']['latency']['p50_ms']:.3f} ms)"
    ]
    assert re.search(r"\| new \| \(no pick\) +\|", render_comparison(c))
    # The reverse is an improvement, not a regression.
    back = compare_reports(new, old)
    assert back.ok and back.notes == [
        f"the old report had no pick; the new one picks {back.new.label}"
    ]


def test_variant_changes_are_listed_by_label_without_being_regressions(old, new):
    other = next(v for v in new["variants"] if v["id"] != new["pick"])
    gone = other["label"]
    other["label"] = "ort_graph(level=turbo)"
    failed = copy.deepcopy(other)
    failed["label"], failed["status"], failed["reason"] = gone, "failed", "measuring failed: boom"
    failed["measurements"] = failed["fidelity"] = None
    failed["within_tolerance"] = False
    new["variants"].append(failed)
    c = compare_reports(old, new)
    assert c.ok
    assert c.added == ["ort_graph(level=turbo)"] and c.removed == []
    assert len(c.changed) == 1 and c.changed[0].label == gone
    assert c.changed[0].changes == [
        "measured → failed (measuring failed: boom)",
        "no longer within tolerance",
    ]
    assert f"- changed: {gone}: measured → failed" in render_comparison(c)


def test_without_accuracy_on_one_side_quality_is_compared_by_cosine(old, new):
    fidelity = _pick(new)["fidelity"]
    fidelity["accuracy"] = None
    fidelity["mean_cosine"] -= 0.001
    c = compare_reports(old, new)
    assert c.ok and c.quality_metric == "mean cosine"
    assert c.quality_change == pytest.approx(-0.001)
    assert c.notes == ["quality compared by mean cosine: the new report has no accuracy"]


def test_negative_limits_are_refused(old):
    with pytest.raises(UserError, match="limits must be zero or more"):
        compare_reports(old, old, max_latency_regression=-0.1)


def test_a_pick_missing_from_the_variants_is_named(old, new):
    new["pick"] = "0123456789abcdef"
    with pytest.raises(UserError, match="pick 0123456789abcdef is not among its measured"):
        compare_reports(old, new)


def test_the_gate_reads_the_schema_optimize_writes():
    assert SCHEMA_VERSION in KNOWN_SCHEMA_VERSIONS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such report; pass the report.json"),
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[1, 2]", "not an optimize report (it has no schema_version)"),
        ('{"pick": null}', "not an optimize report (it has no schema_version)"),
        ('{"schema_version": 99}', "schema_version 99 is not one this version of optimize reads"),
    ],
    ids=["missing", "invalid-json", "not-an-object", "no-version", "unknown-version"],
)
def test_load_report_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        load_report(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_load_report_reads_a_real_report(report_path):
    assert load_report(report_path) == json.loads(report_path.read_text())


def test_reports_of_models_with_other_inputs_are_refused_unless_allowed(old, new):
    new["source"]["inputs"] = [{"name": "ids", "dims": ["batch", 128], "dtype": "int64"}]
    with pytest.raises(
        UserError, match=r"different models \(.* takes x:batch,1,8,8, .* takes ids:batch,128\)"
    ):
        compare_reports(old, new)
    c = compare_reports(old, new, allow_different_model=True)
    assert any(n.startswith("the reports are of different models") for n in c.notes)


def test_a_retrained_model_is_compared_with_a_note(old, new):
    new["source"]["sha256"] = "0" * 64
    c = compare_reports(old, new)
    assert c.ok and any(n.startswith("the model file changed") for n in c.notes)
