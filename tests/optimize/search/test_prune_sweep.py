"""The pruning sweep on the digits CNN: increasing ratios under the accuracy budget, with
recovery fine-tuning, then the kept ratio quantized; and its skip for ONNX sources."""

import numpy as np
import pytest
import torch
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe

# Every variant judged, however slow it screens: these tests read each one's fidelity.
QUICK = {**QUICK_MEASURE, "time_in_full": "all"}
BASELINE = [Chain((), "baseline")]


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory, digits, digits_cnn):
    folder = tmp_path_factory.mktemp("prune")
    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    torch.export.save(program, folder / "cnn.pt2")
    np.savez(folder / "eval.npz", x=digits.test_x, labels=digits.test_y)
    np.savez(folder / "calibration.npz", x=digits.train_x[:256])
    return folder


@pytest.fixture(scope="module")
def swept(digits_files, tmp_path_factory):
    recipe = Recipe(
        model=digits_files / "cnn.pt2",
        out=tmp_path_factory.mktemp("swept"),
        data={"eval": digits_files / "eval.npz", "calibration": digits_files / "calibration.npz"},
        chains=BASELINE,
        builtin=False,
        measure=QUICK,
        search={"fallback": False},
        prune={"ratios": (0.3, 0.6, 0.9), "finetune": "optimize.examples:finetune_digits"},
    )
    return run(recipe)


def test_sweep_keeps_the_largest_ratio_within_the_accuracy_budget(swept):
    sweep = swept.prune_sweep
    assert [row.ratio for row in sweep.rows] == [0.3, 0.6, 0.9]
    within = [row.ratio for row in sweep.rows if row.verdict is None]
    assert within, "fine-tuned pruning at 0.3 should stay within one point"
    assert sweep.kept_ratio == max(within)
    for row in sweep.rows:
        if row.variant_id:  # every tried ratio is a measured variant in the report
            variant = swept.variant(row.variant_id)
            assert variant.status == "measured"
            assert variant.verdict == row.verdict
    kept = swept.variant(next(r.variant_id for r in sweep.rows if r.ratio == sweep.kept_ratio))
    metrics = kept.steps[0].metrics
    assert metrics["params_after"] < metrics["params_before"]
    assert metrics["macs_after"] < metrics["macs_before"]
    assert kept.size_mb < swept.variants[0].size_mb
    report = (swept.out_dir / "report.md").read_text()
    assert "## Pruning sweep" in report and f"kept ratio {sweep.kept_ratio:g}" in report


def test_pruned_model_is_then_quantized(swept):
    kept = swept.prune_sweep.kept_ratio
    chains = [
        [s.name for s in v.steps] for v in swept.variants if v.status == "measured" and v.steps
    ]
    assert ["prune_structured", "export", "quantize_static"] in chains
    quantized = next(
        v
        for v in swept.variants
        if [s.name for s in v.steps] == ["prune_structured", "export", "quantize_static"]
    )
    assert quantized.steps[0].params["ratio"] == kept
    assert quantized.fidelity.score is not None


def test_magnitude_pruning_reports_its_compressed_size(swept):
    magnitude = next(v for v in swept.variants if v.steps and v.steps[0].name == "prune_magnitude")
    metrics = magnitude.steps[0].metrics
    assert metrics["compressed_mb"] < metrics["dense_mb"]
    assert "compressed" in (swept.out_dir / "report.md").read_text()


def test_onnx_sources_skip_pruning_with_the_reason(digits_cnn_onnx, digits, tmp_path):
    np.savez(tmp_path / "eval.npz", x=digits.test_x[:64], labels=digits.test_y[:64])
    recipe = Recipe(
        model=digits_cnn_onnx,
        out=tmp_path / "out",
        data={"eval": tmp_path / "eval.npz"},
        chains=BASELINE,
        builtin=False,
        measure=QUICK,
        prune={"ratios": (0.3,)},
    )
    results = run(recipe)
    skipped = [v for v in results.variants if v.status == "skipped"]
    assert skipped and "ONNX file carries none" in skipped[0].reason
    assert results.pick is not None
