"""The serving tests' shared output folder: a real run's pick, made once per test module
(each module's sweeps rewrite its serving files)."""

import pytest
from cli_runs import FAST
from typer.testing import CliRunner

from optimize.cli import app


@pytest.fixture(scope="module")
def picked(digits_files, tmp_path_factory):
    """An output folder with an ONNX Runtime pick of the digits CNN."""
    out = tmp_path_factory.mktemp("picked") / "out"
    args = ["run", str(digits_files / "cnn.pt2"), "--out", str(out), "--no-torch-runtimes"]
    result = CliRunner().invoke(app, [*args, "--no-openvino", *FAST])
    assert result.exit_code == 0, result.output
    return out
