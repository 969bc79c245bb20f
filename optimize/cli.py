"""The `optimize` command: parse, call the API, print. No policy here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardware.targets import TargetUnavailableError
from optimize.errors import OptimizeError
from passes.base import PassError

app = typer.Typer(
    help="Find the fastest form of a model on your hardware that is still accurate enough.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

USER_ERRORS = (OptimizeError, PassError, TargetUnavailableError, ValueError)


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    model: Annotated[
        Path, typer.Argument(help="model file: TorchScript, pickled module, .pt2 or .onnx")
    ],
    target: Annotated[str, typer.Option(help="cpu, gpu or gpu:N")] = "cpu",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("optimized"),
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="model input as NAME:DIMS[:DTYPE], e.g. x:batch,3,224,224:float32; repeat per input",
        ),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(help=".npz with one array per model input and optional 'labels'"),
    ] = None,
    calibration_data: Annotated[
        Path | None,
        typer.Option(help=".npz with one array per model input, to calibrate static int8"),
    ] = None,
    trust_pickle: Annotated[
        bool, typer.Option(help="allow a pickled module: unpickling runs code from the file")
    ] = False,
    model_code: Annotated[
        Path | None, typer.Option(help="a .py file defining the pickled module's class")
    ] = None,
    min_cosine: Annotated[
        float, typer.Option(help="lowest mean cosine similarity of outputs to the original")
    ] = 0.999,
    max_accuracy_drop: Annotated[
        float, typer.Option(help="largest top-1 accuracy drop in points, with labelled data")
    ] = 1.0,
    measure_seconds: Annotated[
        float, typer.Option(help="timed seconds per figure; the run count adapts to it")
    ] = 1.0,
    remeasure: Annotated[
        bool,
        typer.Option(
            help="measure again even where the output folder has figures taken "
            "under the same conditions"
        ),
    ] = False,
    torch_runtimes: Annotated[
        bool, typer.Option(help="also measure PyTorch eager and torch.compile on the source")
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="print report.json on stdout instead of the table")
    ] = False,
    debug: Annotated[bool, typer.Option(help="show tracebacks")] = False,
) -> None:
    """Export, transform, measure and choose: writes best.onnx and reports into --out."""
    from hardware.profile import TimingBudget
    from optimize.api import RunOptions
    from optimize.api import run as run_job
    from optimize.evaluate import Tolerance
    from optimize.terminal import TerminalProgress, print_results

    options = RunOptions(
        budget=TimingBudget(measure_s=measure_seconds, warmup_s=min(0.2, measure_seconds / 2)),
        tolerance=Tolerance(min_cosine=min_cosine, max_accuracy_drop=max_accuracy_drop),
        torch_runtimes=torch_runtimes,
        reuse_measurements=not remeasure,
    )
    try:
        with TerminalProgress(quiet=json_output) as progress:
            results = run_job(
                model,
                target=target,
                out=out,
                inputs=input,
                eval_data=eval_data,
                calibration_data=calibration_data,
                trust_pickle=trust_pickle,
                model_code=model_code,
                options=options,
                progress=progress.update,
            )
    except USER_ERRORS as exc:
        _fail(exc, debug)
    if json_output:
        typer.echo(json.dumps(results.to_dict(), indent=2, default=str))
    else:
        print_results(results)
    if results.pick is None:
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


def main() -> None:
    app()
