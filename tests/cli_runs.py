"""Driving the `optimize` command in tests: short timings, and a refusal's exit code and text."""

import time
from pathlib import Path

from typer.testing import CliRunner

from optimize.cli import app

FAST = ["--measure-seconds", "0.05"]


def error_of(args: list[str]) -> tuple[int, str]:
    """The exit code and the standard error, stripped, of `optimize` with `args`: where a
    refusal is said (standard output has the progress lines before it)."""
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stderr.strip()


def assert_refused(
    args: list[str], expected: str, inputs: list[Path], out: Path, within_s: float
) -> None:
    """`optimize args` refuses its input as bad: exit 2 within `within_s` seconds, one line
    on stderr containing `expected` and no traceback, every file in `inputs` byte for byte
    as it was, and no best.onnx or report.json in `out`."""
    before = {path: path.read_bytes() for path in inputs}
    start = time.monotonic()
    code, output = error_of(args)
    took = time.monotonic() - start
    assert code == 2, output
    assert len(output.splitlines()) == 1 and output.startswith("error: "), output
    assert expected in output and "Traceback" not in output, output
    assert took < within_s, f"refused after {took:.1f} s"
    assert all(path.read_bytes() == data for path, data in before.items())
    assert not (out / "best.onnx").exists() and not (out / "report.json").exists()
