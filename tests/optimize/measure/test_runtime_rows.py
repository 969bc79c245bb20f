"""OpenVINO rows in a real run: the baseline and the portable int8 variant run on it,
checked against the original like any variant, and skipped with the reason when absent."""

import builtins

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.build.variant import RuntimeRow, Status
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from passes.quantize_static import QuantizeStatic

CHAINS = [Chain((), "baseline"), Chain((QuantizeStatic(),), "static int8")]


def _recipe(model, out, digits, tmp_path):
    np.savez(tmp_path / "eval.npz", x=digits.test_x[:128], labels=digits.test_y[:128])
    np.savez(tmp_path / "calibration.npz", x=digits.train_x[:128])
    return Recipe(
        model=model,
        out=out,
        data={"eval": tmp_path / "eval.npz", "calibration": tmp_path / "calibration.npz"},
        chains=CHAINS,
        builtin=False,
        # Every row timed and judged: the rows' accuracy is what these tests read.
        measure={
            **QUICK_MEASURE,
            "onnx_runtimes": ("openvino",),
            "threads": (1,),
            "time_in_full": "all",
        },
    )


def test_openvino_runs_the_baseline_and_the_int8_variant(digits_cnn_onnx, digits, tmp_path):
    results = run(_recipe(digits_cnn_onnx, tmp_path / "out", digits, tmp_path))
    rows = [v for v in results.variants if isinstance(v, RuntimeRow)]
    labels = {r.label for r in rows}
    assert "openvino f32 on original" in labels
    assert "openvino f32 on quantize_static" in labels
    for row in rows:
        assert row.status == Status.MEASURED, row.reason
        assert row.parent in {v.id for v in results.model_variants}
        precision = row.runtime_settings["precision"]
        assert row.measurements.providers[0].startswith("OpenVINO CPU (")
        assert row.measurements.settings["precision"] == precision
        # Top-1 within a point of the original's on held-out digits, bf16 and int8 included.
        assert row.fidelity.accuracy_drop_points <= 1.0
    f32 = next(r for r in rows if r.label == "openvino f32 on original")
    assert f32.measurements.providers[0] == "OpenVINO CPU (f32)"
    assert f32.measurements.providers[1].startswith("throughput hint: ")
    assert f32.fidelity.mean_cosine > 0.99999
    report = (tmp_path / "out" / "report.md").read_text()
    assert "openvino f32 on original" in report


def test_without_openvino_its_rows_say_how_to_install(
    digits_cnn_onnx, digits, tmp_path, monkeypatch
):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    recipe = _recipe(digits_cnn_onnx, tmp_path / "out", digits, tmp_path)
    results = run(recipe.with_overrides({"chains": CHAINS[:1]}))
    [row] = [v for v in results.variants if isinstance(v, RuntimeRow)]
    assert row.status == Status.SKIPPED
    assert row.reason == "OpenVINO is not installed: pip install openvino"
    assert results.pick is not None and results.pick.runtime == "onnxruntime"


def test_an_unknown_runtime_is_refused_with_the_known_ones(tmp_path):
    from optimize.errors import UserError

    with pytest.raises(UserError, match=r"measure.onnx_runtimes\[0\]: unknown runtime 'openvno' "):
        Recipe(model=tmp_path / "m.onnx", measure={"onnx_runtimes": ["openvno"]})
