"""Driving the `optimize` command in tests: short timings, and a refusal's exit code and text."""

from typer.testing import CliRunner

from optimize.cli import app

FAST = ["--measure-seconds", "0.05"]


def error_of(args: list[str]) -> tuple[int, str]:
    """The exit code and the whole output, stripped, of `optimize` with `args`."""
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output.strip()
