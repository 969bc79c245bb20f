"""The options of `optimize run` in one table: each maps to the Recipe field it sets, and
its help shows that field's default, read from the Recipe. The command is built from it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from optimize.config.recipe import Recipe


@dataclass(frozen=True)
class Flag:
    """One option: its parameter name, the Recipe field it sets (dotted, None for an option
    of the command itself), its type and help; a switch sets `sets` when given (its
    parameter's default is `default`); `decls` names it on the command line where the
    parameter's name would not."""

    param: str
    field: str | None
    type: Any
    help: str
    sets: Any = None
    default: Any = None
    decls: tuple[str, ...] = ()

    @property
    def is_switch(self) -> bool:
        return self.sets is not None

    @property
    def cli_name(self) -> str:
        """How the user types it, e.g. --eval-data."""
        return self.decls[0] if self.decls else f"--{self.param.replace('_', '-')}"


MODEL_HELP = "model file (TorchScript, pickled module, .pt2, .onnx) or Hugging Face model folder"

RUN_FLAGS = (
    Flag(
        "recipe",
        None,
        Path | None,
        "a recipe file (TOML); ./optimize.toml is read when no model is given",
    ),
    Flag("target", "target", str | None, "cpu, gpu or gpu:N"),
    Flag("out", "out", Path | None, "output folder"),
    Flag(
        "input",
        "inputs",
        list[str] | None,
        "model input as NAME:DIMS[:DTYPE], e.g. x:batch,3,224,224:float32; repeat per input",
        decls=("--input",),
    ),
    Flag(
        "eval_data",
        "data.eval",
        str | None,
        "labelled data: an .npz with one array per model input plus 'labels', a folder of "
        ".npy files, or module:function yielding (inputs, labels) batches; for a language "
        "model, a UTF-8 .txt (or .jsonl with a 'text' field) to measure perplexity on",
    ),
    Flag(
        "calibration_data",
        "data.calibration",
        str | None,
        "inputs to calibrate static int8, in any --eval-data form",
    ),
    Flag(
        "metric",
        "data.metric",
        str | None,
        "task metric on labelled data: top1, top5 (any topK), f1, mse, mae, r2, cosine or "
        "module:function (implied by outputs and labels when not given)",
    ),
    Flag(
        "trust_pickle",
        "trust_pickle",
        bool,
        "allow a pickled module: unpickling runs code from the file",
        sets=True,
        default=False,
    ),
    Flag(
        "task",
        "task",
        str | None,
        "for a Hugging Face model folder: feature-extraction, text-classification, "
        "token-classification, fill-mask or text-generation (by default the one its "
        "architecture names)",
    ),
    Flag("model_code", "model_code", Path | None, "a .py file defining the pickled module's class"),
    Flag(
        "min_cosine",
        "limits.min_cosine",
        float | None,
        "without labels: lowest mean output cosine to the original",
    ),
    Flag(
        "min_top1_agreement",
        "limits.min_top1_agreement",
        float | None,
        "without labels, for class scores: lowest share of samples whose top class stays the "
        "original's, e.g. 0.99 for a classifier (off by default: embeddings look alike)",
    ),
    Flag(
        "max_accuracy_drop",
        "limits.max_accuracy_drop",
        float | None,
        "with labels: largest top-1 accuracy drop, in points",
    ),
    Flag(
        "max_relative_accuracy_drop",
        "limits.max_relative_accuracy_drop",
        float | None,
        "with labels: largest accuracy drop in percent of the original's",
    ),
    Flag(
        "max_perplexity_increase",
        "limits.max_perplexity_increase",
        float | None,
        "for a language model: largest perplexity increase over the original's, in percent",
    ),
    Flag(
        "objective",
        "objective",
        str | None,
        "for a language model, what its pick is best at: decode (the default), ttft, "
        "throughput (tokens/s over concurrent streams) or memory (peak memory)",
    ),
    Flag(
        "max_latency_ms",
        "limits.max_latency_ms",
        float | None,
        "largest median batch-1 latency of the pick",
    ),
    Flag("max_size_mb", "limits.max_size_mb", float | None, "largest size of the pick"),
    Flag(
        "max_memory_mb",
        "limits.max_memory_mb",
        float | None,
        "largest memory the pick's session adds to the serving process",
    ),
    Flag(
        "measure_seconds", "measure.seconds", float | None, "timed seconds per figure (runs adapt)"
    ),
    Flag(
        "budget_minutes",
        "search.budget_minutes",
        float | None,
        "end the run in about this many minutes; what it did not try is reported",
    ),
    Flag(
        "exporter",
        "export.exporter",
        str | None,
        "how PyTorch models become ONNX: auto, dynamo or torchscript",
    ),
    Flag("opset", "export.opset", int | None, "the ONNX opset the export writes"),
    Flag(
        "serve",
        "serve.sweep",
        bool,
        "after choosing, sweep the pick under load (as `optimize serve-bench`) and write the "
        "recommended setup into serving/",
        sets=True,
        default=False,
        decls=("--serve",),
    ),
    Flag(
        "slo_p99_ms", "serve.slo_p99_ms", float | None, "with --serve: the p99 latency, ms, to meet"
    ),
    Flag(
        "price_per_hour",
        "serve.price_per_hour",
        float | None,
        "with --serve: the machine's price per hour",
    ),
    Flag(
        "cluster",
        "cluster.address",
        str | None,
        "run on a Ray cluster: its address, 'auto' (RAY_ADDRESS) or 'local' (one started "
        "here); builds run anywhere, measurements on nodes of the hardware class",
    ),
    Flag(
        "hardware_class",
        "cluster.hardware_class",
        str | None,
        "with --cluster: the class id (from `optimize node-resources`) to measure on "
        "(by default this machine's)",
    ),
    Flag(
        "remeasure",
        "measure.reuse",
        bool,
        "measure again even where the output folder has figures taken under the same conditions",
        sets=False,
        default=False,
    ),
    Flag(
        "torch_runtimes",
        "measure.torch_runtimes",
        bool,
        "also measure PyTorch eager and torch.compile on the source",
        sets=False,
        default=True,
    ),
    Flag(
        "openvino",
        "measure.left_out",
        bool,
        "also run the baseline and portable int8 variants on OpenVINO (CPU)",
        sets=("openvino",),
        default=True,
    ),
    Flag(
        "prune",
        "prune.sweep",
        bool,
        "sweep structured pruning of the PyTorch model and keep the largest ratio within tolerance",
        sets=True,
        default=False,
    ),
    Flag(
        "prune_ratios",
        "prune.ratios",
        str | None,
        "the sweep's ratios, e.g. 0.2,0.4,0.6 (implies --prune)",
    ),
    Flag(
        "finetune",
        "prune.finetune",
        str | None,
        "module:function that trains a pruned torch.nn.Module and returns it, run between "
        "pruning and export",
    ),
    Flag(
        "dry_run",
        None,
        bool,
        "check the recipe and print the plan without building anything",
        default=False,
    ),
    Flag(
        "json_output",
        None,
        bool,
        "print report.json on stdout instead of the table",
        default=False,
        decls=("--json",),
    ),
    Flag(
        "quiet",
        None,
        bool,
        "no progress and no table: the pick and the reports",
        default=False,
        decls=("--quiet", "-q"),
    ),
    Flag(
        "verbose",
        None,
        bool,
        "also say why each failed variant failed, in full",
        default=False,
        decls=("--verbose", "-v"),
    ),
    Flag("log_file", None, Path | None, "also append every progress line, timed, to this file"),
    Flag("debug", None, bool, "show tracebacks (implies --verbose)", default=False),
)


def recipe_default(field: str) -> Any:
    """The default a Recipe gives `field` (dotted: 'limits.min_cosine')."""
    *sections, key = field.split(".")
    if not sections:
        return Recipe.model_fields[key].default
    section = Recipe.model_fields[sections[0]].default
    return getattr(section, key)


def help_text(flag: Flag) -> str:
    """The flag's help, ending with the Recipe's default for its field where it has one (a
    switch's own default typer shows itself)."""
    if flag.is_switch or flag.field is None:
        return flag.help
    default = recipe_default(flag.field)
    if default in (None, "", (), []):
        return flag.help
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    # Escaped: the help is rich markup, where a bare [..] would be read as a style.
    return rf"{flag.help} \[default: {shown}]"


def run_signature() -> inspect.Signature:
    """The `run` command's parameters, as typer reads them: the model argument, then one
    option per flag."""
    model = inspect.Parameter(
        "model",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[Path | None, typer.Argument(help=MODEL_HELP)],
    )
    options = [
        inspect.Parameter(
            flag.param,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=flag.default,
            annotation=Annotated[
                flag.type,
                typer.Option(*flag.decls, help=help_text(flag), show_default=flag.is_switch),
            ],
        )
        for flag in RUN_FLAGS
    ]
    return inspect.Signature([model, *options])


def overrides(given: dict[str, Any]) -> dict[str, Any]:
    """The Recipe overrides (nested by section) of the options a user gave: a valued option
    left at None, or a switch at its default, was not given, so the recipe's value stands."""
    nested: dict[str, Any] = {}
    for flag in RUN_FLAGS:
        value = given.get(flag.param)
        if flag.field is None or value is None or value == []:
            continue
        if flag.is_switch:
            if value == flag.default:
                continue
            value = flag.sets
        *sections, key = flag.field.split(".")
        place = nested
        for section in sections:
            place = place.setdefault(section, {})
        place[key] = value
    if given.get("model") is not None:
        nested["model"] = given["model"]
    return nested


def flag_names() -> dict[str, str]:
    """How each Recipe field is named on the command line, for error messages."""
    names = {flag.field: flag.cli_name for flag in RUN_FLAGS if flag.field is not None}
    return names | {"model": "MODEL"}
