"""The `optimize run` command: flags -> overrides on a Recipe (optimize.cli_flags) -> the
API -> print. No policy here."""

from __future__ import annotations

import gc
import json
from typing import Any

import typer

from optimize.cli_app import app, fail
from optimize.cli_flags import flag_names, overrides, run_signature

__all__ = ["app", "main"]


def run(**given: Any) -> None:
    """Export, transform, measure and choose: writes best.onnx and reports into --out.
    Exit code 0 with a pick, 1 when no variant meets the limits, 2 on bad input."""
    from optimize.api import dry_run
    from optimize.api import run as run_recipe
    from optimize.config.recipe_file import base_recipe
    from optimize.report.terminal import TerminalProgress, print_results

    debug = given["debug"]
    try:
        base = base_recipe(given["model"], given["recipe"])
        recipe = base.with_overrides(overrides(given), names=flag_names())
        if given["dry_run"]:
            typer.echo(dry_run(recipe))
            return
        quiet = given["json_output"] or given["quiet"]
        with TerminalProgress(quiet=quiet, log_file=given["log_file"]) as progress:
            results = run_recipe(recipe, progress=progress.update)
    except typer.Exit:
        raise
    except Exception as exc:  # every failure ends in one line; see fail
        fail(exc, debug)
    if given["verbose"] or debug:
        for variant in results.variants:
            if variant.detail:
                typer.echo(f"{variant.label} failed:\n{variant.detail}", err=True)
    if given["json_output"]:
        typer.echo(json.dumps(results.to_dict(), indent=2, default=str))
    else:
        print_results(results, brief=given["quiet"])
    if results.pick is None:
        raise typer.Exit(code=1)


# typer reads the options from the signature; the table in optimize.cli_flags is its source.
run.__signature__ = run_signature()
app.command()(run)


def main() -> None:
    """The `optimize` command."""
    try:
        app()
    finally:
        # Python's exit would otherwise collect, one by one, the millions of objects that
        # torch and the runtimes left: about 1.5 s on a 2-core machine, for nothing.
        gc.freeze()


# The other commands register themselves on the same application, after `run`, so that
# the help lists `run` first.
import optimize.cli_tools  # noqa: E402, F401
