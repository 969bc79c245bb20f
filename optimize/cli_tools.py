"""The `optimize` commands besides `run`: serve-bench, compare and targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from optimize.cli_app import app, fail
from optimize.errors import UserError


@app.command("serve-bench")
def serve_bench(
    out: Annotated[Path, typer.Argument(help="the output folder of an `optimize run`")],
    slo_p99_ms: Annotated[
        float | None,
        typer.Option(
            help="the p99 latency, ms, the recommended setup must meet; for a language "
            "model, of the time to first token"
        ),
    ] = None,
    price_per_hour: Annotated[
        float | None, typer.Option(help="the machine's price per hour, for the cost per million")
    ] = None,
    seconds: Annotated[
        float, typer.Option(help="seconds of load at each point, after a short warm-up")
    ] = 0.5,
    through_server: Annotated[
        bool,
        typer.Option(
            help="also sweep the pick served by KServe's model server on 127.0.0.1, over HTTP"
        ),
    ] = False,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Serve the pick under rising load for each split of the cores into instances and
    threads, batching off and on; recommend the setup with the most requests per second
    within the SLO and write it into serving/. A language model's pick is served to 1, 2,
    4 and 8 concurrent streams, the SLO on its time to first token. Exit 1 when no setup
    meets the SLO."""
    from optimize.config.sections import ServeSection
    from optimize.config.validation import SectionError
    from optimize.serve.bench import serve_bench as sweep
    from optimize.serve.stream_report import under_load_lines

    try:
        try:
            plan = ServeSection(
                sweep=True,
                slo_p99_ms=slo_p99_ms,
                price_per_hour=price_per_hour,
                seconds=seconds,
                through_server=through_server,
            )
        except SectionError as exc:
            flag = f"--{str(exc.path[0]).replace('_', '-')}"
            raise UserError(f"{flag}: {exc.message}") from None
        sweeps, streams = sweep(out, plan, typer.echo)
    except typer.Exit:
        raise
    except Exception as exc:  # every failure ends in one line; see fail
        fail(exc, debug)
    done = [streams] if streams else sweeps
    for line in under_load_lines(sweeps, streams):
        typer.echo(line)
    typer.echo(f"results: {out / 'serving' / ('stream' if streams else 'load')}_sweep.md")
    if any(found.recommended is None for found in done):
        raise typer.Exit(code=1)


@app.command()
def compare(
    old: Annotated[Path, typer.Argument(help="the earlier run's report.json")],
    new: Annotated[Path, typer.Argument(help="the new run's report.json")],
    max_latency_regression: Annotated[
        float, typer.Option(help="largest allowed rise of the pick's p50 latency, 0.1 = 10%")
    ] = 0.10,
    max_accuracy_drop: Annotated[
        float, typer.Option(help="largest allowed fall of the pick's accuracy, in points")
    ] = 0.0,
    allow_different_host: Annotated[
        bool,
        typer.Option(help="compare reports from different machines (their latencies differ)"),
    ] = False,
    allow_different_model: Annotated[
        bool, typer.Option(help="compare reports of models that take different inputs")
    ] = False,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Compare two runs' picks: exit 1 when the new one regressed beyond the limits and
    both runs' spreads; exit 2 when the reports come from different machines."""
    from optimize.report.compare import compare_reports, load_report
    from optimize.report.compare_text import render_comparison

    try:
        comparison = compare_reports(
            load_report(old),
            load_report(new),
            max_latency_regression,
            max_accuracy_drop,
            allow_different_host,
            allow_different_model,
        )
    except typer.Exit:
        raise
    except Exception as exc:  # every failure ends in one line; see fail
        fail(exc, debug)
    typer.echo(render_comparison(comparison))
    if not comparison.ok:
        raise typer.Exit(code=1)


@app.command()
def targets(
    json_output: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """What this machine offers: CPU, instruction sets, memory, runtimes and GPUs."""
    from hardware.detect import describe_host

    info = describe_host().to_dict()
    if json_output:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        typer.echo(f"{key}: {value}")


@app.command("node-resources")
def node_resources() -> None:
    """The Ray custom resources this machine publishes as a cluster node, as JSON for
    `ray start --resources`: its measuring slot and its hardware classes (CPU; GPU too
    where it has one). `optimize run --cluster` measures on nodes of the run's class."""
    from optimize.cluster.hardware_class import node_resources as resources

    typer.echo(json.dumps(resources()))
