"""The `optimize` command's application: its global options, how a failure is said (one
line, exit 2 for the user's mistake, 3 for a bug), and how recipe keys are named as flags."""

from __future__ import annotations

import os
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
    # The run says its own progress a line at a time; Hugging Face's bars for loading and
    # converting weights would break into its lines. A variable the user set is kept.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def fail(exc: Exception, debug: bool) -> NoReturn:
    """Stop with the user's mistake in one line (exit 2), or a bug as an internal error
    (exit 3); --debug adds the full traceback, a child process's included."""
    user = isinstance(exc, UserError)
    if debug:
        typer.echo(full_traceback(exc), err=True)
    typer.echo(f"error: {exc}" if user else f"error: {internal_error_line(exc)}", err=True)
    raise typer.Exit(code=USER_ERROR_EXIT if user else INTERNAL_ERROR_EXIT)
