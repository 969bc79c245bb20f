"""The `optimize` command's refusals: each bad input is one line, exit 2, before any work;
a bug is an internal error, exit 3."""

import time

import numpy as np
import onnxruntime as ort
import pytest
import torch
from cli_runs import assert_refused, error_of
from typer.testing import CliRunner

from optimize.cli import app


@pytest.mark.parametrize(
    "make, extra, expected",
    [
        (None, [], "not found"),
        (lambda p: p.write_bytes(b""), [], "empty"),
        (lambda p: p.write_bytes(b"\x13\x37 not a model at all" * 10), [], "TorchScript"),
    ],
    ids=["missing", "empty", "garbage"],
)
def test_bad_model_files_fail_in_one_line(make, extra, expected, tmp_path):
    path = tmp_path / "model.pt"
    if make:
        make(path)
    code, output = error_of(["run", str(path), "--out", str(tmp_path / "o"), *extra])
    assert code == 2
    assert output.startswith("error: ") and len(output.splitlines()) == 1
    assert expected.lower() in output.lower()
    assert "Traceback" not in output


def test_pickle_without_flag_and_state_dict_fail_in_one_line(digits_cnn, tmp_path):
    torch.save(digits_cnn, tmp_path / "whole.pt")
    torch.save(digits_cnn.state_dict(), tmp_path / "weights.pt")
    code, output = error_of(["run", str(tmp_path / "whole.pt"), "--input", "x:batch,1,8,8"])
    assert code == 2 and "--trust-pickle" in output and len(output.splitlines()) == 1
    code, output = error_of(["run", str(tmp_path / "weights.pt")])
    assert code == 2 and "state_dict" in output and len(output.splitlines()) == 1


def test_wrong_input_spec_fails_in_one_line(digits_files):
    code, output = error_of(["run", str(digits_files / "cnn.pt"), "--input", "x:batch;1"])
    assert code == 2 and "NAME:DIMS" in output and len(output.splitlines()) == 1


def test_missing_eval_arrays_are_named(digits_files, tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 1, 8, 8), np.float32))
    code, output = error_of(
        [
            "run",
            str(digits_files / "cnn.pt2"),
            "--eval-data",
            str(tmp_path / "bad.npz"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "lacks arrays for model input(s) x" in output


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA"
)
@pytest.mark.parametrize("dry", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_gpu_target_without_gpu_says_what_to_install(digits_files, tmp_path, dry):
    code, output = error_of(
        [
            "run",
            str(digits_files / "cnn.pt2"),
            "--target",
            "gpu",
            "--out",
            str(tmp_path / "o"),
            *dry,
        ]
    )
    assert code == 2 and "onnxruntime-gpu" in output and len(output.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(app, ["run", str(tmp_path / "none.pt"), "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ")
    assert "not found" in result.output.lower()


def test_a_bug_is_an_internal_error_not_bad_input(digits_files, tmp_path, monkeypatch):
    import optimize.api

    def broken(*args, **kwargs):
        raise KeyError("variant")

    monkeypatch.setattr(optimize.api, "prepare_data", broken)
    args = ["run", str(digits_files / "cnn.pt2"), "--out", str(tmp_path / "o")]
    code, output = error_of(args)
    assert code == 3 and len(output.splitlines()) == 1
    assert output.startswith("error: internal error (KeyError") and "--debug" in output
    debug = CliRunner().invoke(app, [*args, "--debug"])
    assert debug.exit_code == 3 and "raise KeyError" in debug.output


def test_prune_and_data_flags_reach_the_plan_and_bad_values_fail_in_one_line(
    digits_files, tmp_path
):
    base = ["run", str(digits_files / "cnn.pt2"), "--out", str(tmp_path / "out"), "--dry-run"]
    dry = CliRunner().invoke(app, [*base, "--prune-ratios", "0.5,0.2"])
    assert dry.exit_code == 0, dry.output
    assert "pruning sweep: ratios 0.2, 0.5" in dry.output
    code, output = error_of([*base, "--prune-ratios", "0.2,1.5"])
    assert code == 2 and "between 0 and 1" in output
    code, output = error_of(
        [
            "run",
            str(digits_files / "cnn.pt2"),
            "--out",
            str(tmp_path / "out"),
            "--eval-data",
            str(digits_files / "eval.npz"),
            "--metric",
            "accuracy",
            "--no-torch-runtimes",
        ]
    )
    assert code == 2 and "unknown metric 'accuracy'" in output


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--measure-seconds", "-1"], "--measure-seconds: expected a number above 0, got -1.0"),
        (["--min-cosine", "1.5"], "--min-cosine: expected a cosine from -1 to 1, got 1.5"),
        (["--budget-minutes", "0"], "--budget-minutes: expected a number above 0, got 0.0"),
        (["--target", "tpu"], "--target: unknown target 'tpu'"),
    ],
    ids=["seconds", "cosine", "budget", "target"],
)
def test_flags_are_checked_as_the_recipe_file_is(digits_files, tmp_path, flags, expected):
    """A flag goes through the same Recipe checks as the same key in optimize.toml."""
    args = ["run", str(digits_files / "cnn.pt2"), "--out", str(tmp_path / "o"), "--dry-run"]
    code, output = error_of([*args, *flags])
    assert code == 2 and output.startswith(f"error: {expected}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "out, expected",
    [("report.md", "this is a file, not a folder"), ("report.md/sub", "is a file, so no folder")],
    ids=["a-file", "under-a-file"],
)
def test_an_unusable_output_folder_is_refused_before_any_work(
    digits_files, tmp_path, out, expected
):
    (tmp_path / "report.md").write_text("mine\n")
    started = time.monotonic()
    code, output = error_of(["run", str(digits_files / "cnn.pt2"), "--out", str(tmp_path / out)])
    assert code == 2 and len(output.splitlines()) == 1 and expected in output
    assert time.monotonic() - started < 10
    assert (tmp_path / "report.md").read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_an_output_folder_the_file_system_refuses_is_bad_input(digits_files):
    # /proc takes no new folders, even from root, whom the permission bits let through.
    code, output = error_of(["run", str(digits_files / "cnn.pt2"), "--out", "/proc/optimized"])
    assert code == 2 and len(output.splitlines()) == 1
    assert "--out /proc/optimized" in output and "cannot be made" in output


def test_a_model_whose_outputs_are_all_nan_stops_in_seconds(save_float_graph, tmp_path):
    from onnx import helper

    weights = {"w": np.full((4, 2), np.nan, dtype=np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = save_float_graph(tmp_path / "nan.onnx", nodes, weights, 4, 2)
    out = tmp_path / "out"
    expected = "NaN or infinite for every one of the 64 evaluation inputs"
    assert_refused(["run", str(model), "--out", str(out)], expected, [model], out, within_s=30)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([["a"] * 64] * 10), "array 'x' holds <U1 values, but the model's input takes"),
        (
            np.zeros((10, 3, 3), np.float32),
            "array 'x' has shape (10, 3, 3), but the model's input is (batch, 1, 8, 8)",
        ),
    ],
    ids=["strings", "shape"],
)
def test_evaluation_data_that_cannot_feed_the_model_is_named(
    digits_files, tmp_path, array, expected
):
    data, model, out = tmp_path / "eval.npz", digits_files / "cnn.pt2", tmp_path / "o"
    np.savez(data, x=array)
    args = ["run", str(model), "--out", str(out), "--eval-data", str(data)]
    assert_refused(args, expected, [model, data], out, within_s=60)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("x:batch,1,8", "cnn.pt fails on inputs shaped as --input x:batch,1,8"),
        ("x:batch,100000,100000,100000", "one sample would take 3,725,290 GiB"),
    ],
    ids=["rank", "absurd"],
)
def test_input_specs_that_contradict_the_model_fail_in_one_line(
    digits_files, tmp_path, spec, expected
):
    model, out = digits_files / "cnn.pt", tmp_path / "o"
    args = ["run", str(model), "--input", spec, "--out", str(out)]
    assert_refused(args, expected, [model], out, within_s=60)
