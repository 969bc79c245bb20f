"""The example CI step's script, run for real on an example model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "ci" / "optimize-model.sh"
FLAGS = ["--measure-seconds", "0.05", "--no-torch-runtimes"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, digits, digits_cnn):
    folder = tmp_path_factory.mktemp("ci")
    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    torch.export.save(program, folder / "model.pt2")
    np.savez(folder / "eval.npz", x=digits.test_x[:200], labels=digits.test_y[:200])
    return folder


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    """One output folder for the module's runs, as successive CI runs of a job would use:
    later runs reuse the variants and figures of earlier ones."""
    return tmp_path_factory.mktemp("ci_out") / "optimized"


def _step(*args, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def test_the_workflow_runs_the_script():
    workflow = (ROOT / "examples" / "ci" / "optimize-model.yml").read_text()
    assert "bash examples/ci/optimize-model.sh" in workflow
    assert "actions/upload-artifact" in workflow and "if: always()" in workflow


def test_ci_step_passes_then_gates_a_regression(model_files, shared_out, tmp_path):
    first = _step(
        model_files / "model.pt2",
        shared_out,
        "",
        "--eval-data",
        model_files / "eval.npz",
        *FLAGS,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    baseline = tmp_path / "baseline.json"
    shutil.copy(shared_out / "report.json", baseline)

    # Into the same folder, as a re-run would: finished variants and figures are reused.
    same = _step(
        model_files / "model.pt2",
        shared_out,
        baseline,
        "--eval-data",
        model_files / "eval.npz",
        *FLAGS,
        cwd=tmp_path,
    )
    assert same.returncode in (0, 1), same.stderr
    assert (shared_out / "comparison.md").is_file(), same.stdout + same.stderr

    report = json.loads(baseline.read_text())
    pick = next(v for v in report["variants"] if v["id"] == report["pick"])
    pick["measurements"]["latency"]["p50_ms"] /= 100  # the baseline was far faster
    baseline.write_text(json.dumps(report))
    gated = _step(
        model_files / "model.pt2",
        shared_out,
        baseline,
        "--eval-data",
        model_files / "eval.npz",
        *FLAGS,
        cwd=tmp_path,
    )
    assert gated.returncode == 1
    assert "p50 latency" in gated.stdout
    assert (shared_out / "best.onnx").is_file()


def test_ci_step_fails_when_nothing_meets_the_limits(model_files, shared_out, tmp_path):
    result = _step(
        model_files / "model.pt2",
        shared_out,
        "",
        "--eval-data",
        model_files / "eval.npz",
        "--max-latency-ms",
        "0.000001",
        *FLAGS,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    report = json.loads((shared_out / "report.json").read_text())
    assert report["pick"] is None and report["closest"] is not None
