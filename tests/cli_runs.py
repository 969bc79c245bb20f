"""Driving the `optimize` command in tests: short timings, and a refusal's exit code and text."""

from typer.testing import CliRunner

from optimize.cli import app

FAST = ["--measure-seconds", "0.05"]


def error_of(args: list[str]) -> tuple[int, str]:
    """The exit code and the standard error, stripped, of `optimize` with `args`: where a
    refusal is said (standard output has the progress lines before it)."""
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stderr.strip()
