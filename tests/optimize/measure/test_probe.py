"""The dry-run's probe of a model: its size, one sample's time, the samples its data holds."""

import numpy as np
import pytest
from cli_runs import error_of
from typer.testing import CliRunner

from optimize.cli import app
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.measure.probe import probe_model
from optimize.source.load import SourceSpec


def test_a_pytorch_model_is_timed_eagerly_and_its_data_counted(digits_files, tmp_path):
    np.savez(tmp_path / "calibration.npz", x=np.zeros((30, 1, 8, 8), np.float32))
    recipe = Recipe(
        model=digits_files / "cnn.pt2",
        data={"eval": digits_files / "eval.npz", "calibration": tmp_path / "calibration.npz"},
    )
    probe = probe_model(SourceSpec.from_recipe(recipe), recipe.data)
    assert probe.exported and 0 < probe.sample_ms < 100
    assert probe.size_mb == pytest.approx((digits_files / "cnn.pt2").stat().st_size / 2**20)
    # The labels are not a model input; the arrays' headers give the counts.
    assert (probe.eval_samples, probe.calibration_samples) == (200, 30)
    assert probe.throughput_batch == 32


def test_an_onnx_model_is_timed_in_onnx_runtime_on_generated_inputs(digits_cnn_onnx):
    probe = probe_model(SourceSpec(digits_cnn_onnx), Recipe(model=digits_cnn_onnx).data)
    assert not probe.exported and 0 < probe.sample_ms < 100
    assert probe.eval_samples == probe.calibration_samples == 64


def test_the_dry_run_estimates_from_the_probe_and_refuses_what_a_run_would(
    digits_cnn_onnx, tmp_path
):
    result = CliRunner().invoke(app, ["run", str(digits_cnn_onnx), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert " ms in ONNX Runtime and " in result.output
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(digits_cnn_onnx.read_bytes()[:100])
    code, output = error_of(["run", str(broken), "--dry-run"])
    assert code == 2 and len(output.splitlines()) == 1
    with pytest.raises(UserError):
        probe_model(SourceSpec(broken), Recipe(model=broken).data)
