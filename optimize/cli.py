"""The `optimize run` command: parse, call the API, print. No policy here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from optimize.cli_app import FLAG_NAMES, app, fail
from optimize.errors import UserError

__all__ = ["app", "main"]


@app.command()
def run(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="model file (TorchScript, pickled module, .pt2, .onnx) or Hugging Face model folder"
        ),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(help="a recipe file (TOML); ./optimize.toml is read when no model is given"),
    ] = None,
    target: Annotated[str | None, typer.Option(help="cpu, gpu or gpu:N [default: cpu]")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder [default: optimized]")] = None,
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="model input as NAME:DIMS[:DTYPE], e.g. x:batch,3,224,224:float32; repeat per input",
        ),
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option(
            help="labelled data: an .npz with one array per model input plus 'labels', a "
            "folder of .npy files, or module:function yielding (inputs, labels) batches"
        ),
    ] = None,
    calibration_data: Annotated[
        str | None,
        typer.Option(help="inputs to calibrate static int8, in any --eval-data form"),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="task metric on labelled data: top1, top5 (any topK), f1, mse, mae, r2, "
            "cosine or module:function [implied by outputs and labels]"
        ),
    ] = None,
    trust_pickle: Annotated[
        bool, typer.Option(help="allow a pickled module: unpickling runs code from the file")
    ] = False,
    task: Annotated[
        str | None,
        typer.Option(
            help="for a Hugging Face model folder: feature-extraction, text-classification, "
            "token-classification or fill-mask [the one its architecture names]"
        ),
    ] = None,
    model_code: Annotated[
        Path | None, typer.Option(help="a .py file defining the pickled module's class")
    ] = None,
    min_cosine: Annotated[
        float | None,
        typer.Option(help="without labels: lowest mean output cosine to the original [0.999]"),
    ] = None,
    min_top1_agreement: Annotated[
        float | None,
        typer.Option(
            help="without labels, for class scores: lowest share of samples whose top class "
            "stays the original's, e.g. 0.99 for a classifier [off: embeddings look alike]"
        ),
    ] = None,
    max_accuracy_drop: Annotated[
        float | None,
        typer.Option(help="with labels: largest top-1 accuracy drop, in points [1.0]"),
    ] = None,
    max_relative_accuracy_drop: Annotated[
        float | None,
        typer.Option(help="with labels: largest accuracy drop in percent of the original's"),
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="largest median batch-1 latency of the pick")
    ] = None,
    max_size_mb: Annotated[float | None, typer.Option(help="largest size of the pick")] = None,
    max_memory_mb: Annotated[
        float | None,
        typer.Option(help="largest memory the pick's session adds to the serving process"),
    ] = None,
    measure_seconds: Annotated[
        float | None, typer.Option(help="timed seconds per figure; runs adapt to it [1.0]")
    ] = None,
    budget_minutes: Annotated[
        float | None,
        typer.Option(help="start no new variant after this many minutes; the rest is reported"),
    ] = None,
    exporter: Annotated[
        str | None,
        typer.Option(help="how PyTorch models become ONNX: auto, dynamo or torchscript [auto]"),
    ] = None,
    opset: Annotated[int | None, typer.Option(help="the ONNX opset the export writes [18]")] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="after choosing, sweep the pick under load (as `optimize serve-bench`) and "
            "write the recommended setup into serving/",
        ),
    ] = False,
    slo_p99_ms: Annotated[
        float | None, typer.Option(help="with --serve: the p99 latency, ms, to meet")
    ] = None,
    price_per_hour: Annotated[
        float | None, typer.Option(help="with --serve: the machine's price per hour")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="run on a Ray cluster: its address, 'auto' (RAY_ADDRESS) or 'local' (one "
            "started here); builds run anywhere, measurements on nodes of the hardware class"
        ),
    ] = None,
    hardware_class: Annotated[
        str | None,
        typer.Option(
            help="with --cluster: the class id (from `optimize node-resources`) to measure "
            "on [this machine's]"
        ),
    ] = None,
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
    openvino: Annotated[
        bool,
        typer.Option(help="also run the baseline and portable int8 variants on OpenVINO (CPU)"),
    ] = True,
    prune: Annotated[
        bool,
        typer.Option(
            help="sweep structured pruning of the PyTorch model (ratios 0.1 to 0.7) and keep "
            "the largest within tolerance"
        ),
    ] = False,
    prune_ratios: Annotated[
        str | None, typer.Option(help="the sweep's ratios, e.g. 0.2,0.4,0.6 (implies --prune)")
    ] = None,
    finetune: Annotated[
        str | None,
        typer.Option(
            help="module:function that trains a pruned torch.nn.Module and returns it, run "
            "between pruning and export"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="check the recipe and print the plan without building anything")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="print report.json on stdout instead of the table")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="no progress and no table: the pick and the reports"),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also say why each failed variant failed, in full"),
    ] = False,
    log_file: Annotated[
        Path | None, typer.Option(help="also append every progress line, timed, to this file")
    ] = None,
    debug: Annotated[bool, typer.Option(help="show tracebacks (implies --verbose)")] = False,
) -> None:
    """Export, transform, measure and choose: writes best.onnx and reports into --out.
    Exit code 0 with a pick, 1 when no variant meets the limits, 2 on bad input."""
    from hardware.detect import check_target
    from hardware.targets import parse_target
    from optimize.api import run as run_recipe
    from optimize.config.plan import describe_plan
    from optimize.config.recipe import Recipe
    from optimize.config.recipe_file import DEFAULT_NAME, load_recipe
    from optimize.measure.probe import probe_model
    from optimize.report.terminal import TerminalProgress, print_results
    from optimize.search.prune_sweep import DEFAULT_RATIOS, sweep_ratios
    from optimize.source.load import SourceSpec

    try:
        if recipe is None and model is None and Path(DEFAULT_NAME).is_file():
            recipe = Path(DEFAULT_NAME)
        if recipe is None and model is None:
            raise UserError(
                f"give a model file, or a recipe with --recipe (or an {DEFAULT_NAME} here)"
            )
        base = load_recipe(recipe) if recipe else Recipe(model=model)
        ratios = sweep_ratios(prune_ratios) if prune_ratios else None
        if prune and not (ratios or base.prune.ratios):
            ratios = DEFAULT_RATIOS
        overrides = {
            "model": model,
            "target": target,
            "out": out,
            "model_code": model_code,
            "task": task,
            "trust_pickle": True if trust_pickle else None,
            "inputs": input or None,
            "export": {"exporter": exporter, "opset": opset},
            "data": {"eval": eval_data, "calibration": calibration_data, "metric": metric},
            "limits": {
                "min_cosine": min_cosine,
                "min_top1_agreement": min_top1_agreement,
                "max_accuracy_drop": max_accuracy_drop,
                "max_relative_accuracy_drop": max_relative_accuracy_drop,
                "max_latency_ms": max_latency_ms,
                "max_size_mb": max_size_mb,
                "max_memory_mb": max_memory_mb,
            },
            "measure": {
                "seconds": measure_seconds,
                "torch_runtimes": False if not torch_runtimes else None,
                "onnx_runtimes": _without("openvino") if not openvino else None,
                "reuse": False if remeasure else None,
            },
            "search": {"budget_minutes": budget_minutes},
            "serve": {
                "sweep": True if serve else None,
                "slo_p99_ms": slo_p99_ms,
                "price_per_hour": price_per_hour,
            },
            "prune": {"ratios": ratios, "finetune": finetune},
            "cluster": {"address": cluster, "hardware_class": hardware_class},
        }
        plan = base.with_overrides(_given(overrides), names=FLAG_NAMES)
        if dry_run:
            check_target(parse_target(plan.target))
            chains = plan.chains_to_try(_cpu_flags())
            typer.echo(describe_plan(plan, chains, probe_model(SourceSpec.from_recipe(plan), plan.data)))
            return
        with TerminalProgress(quiet=json_output or quiet, log_file=log_file) as progress:
            results = run_recipe(plan, progress=progress.update)
    except typer.Exit:
        raise
    except Exception as exc:  # every failure ends in one line; see fail
        fail(exc, debug)
    if verbose or debug:
        for variant in results.variants:
            if variant.detail:
                typer.echo(f"{variant.label} failed:\n{variant.detail}", err=True)
    if json_output:
        typer.echo(json.dumps(results.to_dict(), indent=2, default=str))
    else:
        print_results(results, brief=quiet)
    if results.pick is None:
        raise typer.Exit(code=1)


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides a user gave: None means the flag was not given, so the recipe's value
    stands; a section with nothing given is left out."""
    given = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            value = _given(value) or None
        if value is not None:
            given[key] = value
    return given


def _without(name: str) -> tuple[str, ...]:
    """The other runtimes that run ONNX variants, all but `name`."""
    from optimize.measure.runtime_rows import onnx_runtimes

    return tuple(r.name for r in onnx_runtimes() if r.name != name)


def _cpu_flags() -> list[str]:
    from hardware.detect import describe_host

    return describe_host(include_gpus=False).cpu_flags


def main() -> None:
    app()


# The other commands register themselves on the same application, after `run`, so that
# the help lists `run` first.
import optimize.cli_tools  # noqa: E402, F401
