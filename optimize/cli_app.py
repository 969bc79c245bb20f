"""The `optimize` command's application: its global options, how a failure is said (one
line, exit 2 for the user's mistake, 3 for a bug), and how recipe keys are named as flags."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from optimize.errors import (
    INTERNAL_ERROR_EXIT,
    USER_ERROR_EXIT,
    UserError,
    full_traceback,
    internal_error_line,
)

app = typer.Typer(
    help="Find the fastest form of a model on your hardware that is still accurate enough.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(asked: bool) -> None:
    if asked:
        from hardware.detect import distribution_versions

        typer.echo(f"optimize {distribution_versions(('optimize',))['optimize']}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Find the fastest form of a model on your hardware that is still accurate enough."""


def fail(exc: Exception, debug: bool) -> NoReturn:
    """Stop with the user's mistake in one line (exit 2), or a bug as an internal error
    (exit 3); --debug adds the full traceback, a child process's included."""
    user = isinstance(exc, UserError)
    if debug:
        typer.echo(full_traceback(exc), err=True)
    typer.echo(f"error: {exc}" if user else f"error: {internal_error_line(exc)}", err=True)
    raise typer.Exit(code=USER_ERROR_EXIT if user else INTERNAL_ERROR_EXIT)


# How a recipe key is named on the command line, for error messages.
FLAG_NAMES = {
    "inputs": "--input",
    "data.eval": "--eval-data",
    "data.calibration": "--calibration-data",
    "data.metric": "--metric",
    "measure.seconds": "--measure-seconds",
    "search.budget_minutes": "--budget-minutes",
    "prune.ratios": "--prune-ratios",
    "prune.finetune": "--finetune",
    "export.exporter": "--exporter",
    "export.opset": "--opset",
    "cluster.address": "--cluster",
    "cluster.hardware_class": "--hardware-class",
    **{
        f"serve.{key}": f"--{key.replace('_', '-')}"
        for key in ("slo_p99_ms", "price_per_hour", "seconds")
    },
    "serve.through_server": "--through-server",
    **{
        f"limits.{key}": f"--{key.replace('_', '-')}"
        for key in (
            "min_cosine",
            "min_top1_agreement",
            "max_accuracy_drop",
            "max_relative_accuracy_drop",
            "max_latency_ms",
            "max_size_mb",
            "max_memory_mb",
        )
    },
    **{key: f"--{key.replace('_', '-')}" for key in ("model", "target", "out", "model_code")},
}
