"""The sections of a Recipe: its inputs, data, measuring, search, pruning and
preprocessing, each a closed, strict table checked on its own and inside the Recipe."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, field_validator, model_validator

from hardware.profile import TimingBudget
from hardware.runtimes.registry import RUNTIMES, other_onnx_runtimes
from optimize.config.validation import AboveZero, KeyedError, Section, did_you_mean, show
from optimize.errors import UserError
from passes.base import DTYPES
from passes.preprocess_spec import PreprocessSpec, parse_preprocessing

# Paths are the one conversion allowed: a string names a file.
FilePath = Annotated[Path, Field(strict=False)]


def data_source(text: str | Path) -> Path | str:
    """Evaluation or calibration data as named: `module:function` (or `file.py:function`)
    when it reads as one and no such file exists, else a path. The CLI, the recipe file and
    the API all go by this one rule."""
    if isinstance(text, Path):
        return text
    module, sep, function = text.rpartition(":")
    if sep and function.isidentifier() and len(module) >= 2 and not Path(text).exists():
        return text
    return Path(text)


def not_empty(value: Path | None) -> Path | None:
    """`value`, unless it is an empty path."""
    if value is not None and not str(value).strip() or str(value) == ".":
        raise ValueError("expected a path, got an empty string")
    return value


class InputEntry(Section):
    """One model input, for models that do not carry their input spec: its name, dims
    (sizes, or names like 'batch' for dims that vary) and dtype (float32 when unstated)."""

    name: str
    dims: tuple[int | str, ...]
    dtype: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or ":" in value or value != value.strip():
            raise ValueError(f"expected a name without ':' or spaces around it, got {show(value)}")
        return value

    @field_validator("dims", mode="before")
    @classmethod
    def _dims(cls, value: Any) -> Any:
        value = tuple(value) if isinstance(value, list) else value
        if isinstance(value, tuple):
            if not value:
                raise ValueError("expected at least one dim")
            for d, dim in enumerate(value):
                size = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0
                if not (size or (isinstance(dim, str) and dim.isidentifier())):
                    raise KeyedError(
                        (d,), f"expected a size (0 or more) or a name like 'batch', got {show(dim)}"
                    )
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        if value is not None and value not in DTYPES:
            raise ValueError(f"unknown dtype {show(value)}; known: {', '.join(DTYPES)}")
        return value

    @classmethod
    def parse(cls, text: str) -> InputEntry:
        """From `NAME:DIMS[:DTYPE]`, as --input takes it."""
        from optimize.config.input_flags import parse_input_flag

        spec = parse_input_flag(text)
        dtype = spec.dtype if text.strip().count(":") == 2 else None
        return cls(name=spec.name, dims=spec.dims, dtype=dtype)

    def flag(self) -> str:
        """As --input takes it: only a dtype the user stated is passed on, since the loader
        treats an unstated one as an assumption, not a claim to check against a graph."""
        text = f"{self.name}:{','.join(str(d) for d in self.dims)}"
        return f"{text}:{self.dtype}" if self.dtype else text


class DataSection(Section):
    """Labelled evaluation data, calibration inputs (the evaluation inputs when unset), and
    the task metric (implied by outputs and labels when unset)."""

    eval: Annotated[Path | str | None, PlainValidator(lambda v: _data(v))] = None
    calibration: Annotated[Path | str | None, PlainValidator(lambda v: _data(v))] = None
    metric: str | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        if value is not None:
            from optimize.records.metrics import make_metric

            make_metric(value)
        return value


def _data(value: Any) -> Path | str | None:
    if value is None or isinstance(value, Path):
        return not_empty(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a path or module:function, got {show(value)}")
    return not_empty(data_source(value)) if isinstance(data_source(value), Path) else value


class MeasureSection(Section):
    """How each figure is taken: timed seconds (the loop adapts to noise within them), the
    warm-up, the fewest and most timed runs, the thread counts swept (all physical cores and one by
    default), whether PyTorch's own runtimes are measured, the runtimes besides ONNX Runtime
    that run the ONNX variants, and whether stored figures taken under the same conditions
    are reused. Every candidate is first screened for `screen_seconds` (at most `seconds`)
    under one thread setting; only those that could still win are timed in full."""

    seconds: AboveZero = 1.0
    screen_seconds: AboveZero = 0.1
    # "all": every candidate within the limits is timed in full and torch.compile is
    # always tried, for benchmarks that compare with every peer.
    time_in_full: Literal["contenders", "all"] = "contenders"
    warmup_seconds: float | None = None
    min_runs: int = Field(default=10, ge=1)
    max_runs: int = Field(default=2000, ge=1)
    warmup_runs: int = Field(default=3, ge=0)
    threads: tuple[int, ...] | None = None
    torch_runtimes: bool = True
    # None: every registered runtime that takes ONNX files, ONNX Runtime aside.
    onnx_runtimes: tuple[str, ...] | None = None
    # Runtimes the run leaves out, by name, whichever were asked for.
    left_out: tuple[str, ...] = ()
    reuse: bool = True
    # The time limit of one measurement unit; a model whose pass over the evaluation set
    # is slow gets more (optimize.measure.conditions.unit_time_limit).
    timeout_s: AboveZero = 600.0

    @field_validator("warmup_seconds")
    @classmethod
    def _warmup(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"expected 0 or more seconds, got {show(value)}")
        return value

    @field_validator("onnx_runtimes", "left_out", mode="before")
    @classmethod
    def _onnx_runtimes(cls, value: Any) -> Any:
        value = tuple(value) if isinstance(value, list) else value
        known = [r.name for r in other_onnx_runtimes()]
        for i, name in enumerate(value if isinstance(value, tuple) else ()):
            if name not in known:
                raise KeyedError(
                    (i,),
                    f"unknown runtime {show(name)}{did_you_mean(str(name), known)}; known: "
                    f"{', '.join(known)}",
                )
        return value

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        value = tuple(value) if isinstance(value, list) else value
        if isinstance(value, tuple) and (
            not value or any(not isinstance(n, int) or n < 1 for n in value)
        ):
            raise ValueError(f"expected thread counts of 1 or more, got {show(value)}")
        return value

    def other_runtimes(self) -> tuple[str, ...]:
        """The runtimes besides ONNX Runtime that run the baseline and the portable int8
        variants: those asked for (every one registered when none is named), less those
        left out."""
        asked = self.onnx_runtimes
        if asked is None:
            asked = tuple(r.name for r in other_onnx_runtimes())
        return tuple(name for name in asked if name not in self.left_out)

    def runtimes_beside_onnxruntime(self) -> tuple[str, ...]:
        """Every runtime measured beside ONNX Runtime, in the registry's order: PyTorch on
        the source (unless torch_runtimes is off) and other_runtimes()."""
        files = self.other_runtimes()
        return tuple(
            r.name
            for r in RUNTIMES.values()
            if r.name in files or (r.takes == "torch" and self.torch_runtimes)
        )

    def budget(self) -> TimingBudget:
        """The timing loop's budget for one figure."""
        warmup = (
            self.warmup_seconds if self.warmup_seconds is not None else min(0.2, self.seconds / 2)
        )
        return TimingBudget(
            warmup_runs=self.warmup_runs,
            warmup_s=warmup,
            measure_s=self.seconds,
            min_runs=self.min_runs,
            max_runs=max(self.max_runs, self.min_runs),
        )

    def screen_budget(self) -> TimingBudget:
        """The timing loop's budget for screening: enough runs to rank roughly."""
        seconds = min(self.screen_seconds, self.seconds)
        return TimingBudget(
            warmup_runs=min(self.warmup_runs, 2),
            warmup_s=min(0.02, seconds / 2),
            measure_s=seconds,
            min_runs=min(self.min_runs, 5),
            max_runs=max(self.max_runs, self.min_runs),
        )


class SearchSection(Section):
    """How the search spends its time: a budget after which no new variant starts, the
    accuracy fallback (keep nodes in float until a variant is within limits) and how many
    nodes it may keep, and the longest one variant may take to build."""

    budget_minutes: AboveZero | None = None
    fallback: bool = True
    max_excluded: int = Field(default=16, ge=1)
    build_timeout_s: float = Field(default=1800.0, gt=0)


# The pruning sweep's ratios when it is asked for without any.
DEFAULT_PRUNE_RATIOS = (0.1, 0.2, 0.3, 0.5, 0.7)


class PruneSection(Section):
    """The structured-pruning sweep: its ratios (none: no sweep; `sweep` true with none
    given: DEFAULT_PRUNE_RATIOS) and the function that fine-tunes a pruned module, as
    module:function."""

    sweep: bool = False
    ratios: tuple[float, ...] = ()
    finetune: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_ratios(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("sweep") and not data.get("ratios"):
            return {**data, "ratios": DEFAULT_PRUNE_RATIOS}
        return data

    @field_validator("ratios", mode="before")
    @classmethod
    def _ratios(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _ratios_text(value)
        value = tuple(value) if isinstance(value, list) else value
        if isinstance(value, tuple):
            if not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and 0 < r < 1 for r in value
            ):
                raise ValueError("expected fractions between 0 and 1, e.g. [0.1, 0.3, 0.5]")
            return tuple(sorted({float(r) for r in value}))
        return value


def _ratios_text(text: str) -> tuple[float, ...]:
    """Ratios from '0.1,0.3,0.5' text, as the command line gives them."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"{show(text)}: give comma-separated fractions, e.g. 0.1,0.3,0.5"
        ) from None


class ExportSection(Section):
    """How a PyTorch model becomes ONNX: the exporter ("auto": torch.export's for modules
    and programs, TorchScript's for ScriptModules; or "dynamo" or "torchscript") and the
    ONNX opset it writes."""

    exporter: str = "auto"
    opset: int = Field(default=18, ge=9, le=25)

    @field_validator("exporter")
    @classmethod
    def _exporter(cls, value: str) -> str:
        from passes.export import EXPORTERS

        if value not in EXPORTERS:
            raise ValueError(f"unknown exporter '{value}'; use one of {', '.join(EXPORTERS)}")
        return value


class ServeSection(Section):
    """The load sweep of the pick (optimize serve-bench): whether a run does it after
    choosing, the p99 latency the recommended setup must meet, the machine's price per
    hour for the cost of a million requests, seconds of load per point, and whether to
    sweep through KServe's model server too."""

    sweep: bool = False
    slo_p99_ms: AboveZero | None = None
    price_per_hour: AboveZero | None = None
    seconds: AboveZero = 0.5
    through_server: bool = False


class ClusterSection(Section):
    """Where a run's units execute: with no address, on this machine; else on the Ray
    cluster at `address` ("auto": the one RAY_ADDRESS names; "local": one started on this
    machine for the run). Measurements run only on nodes of `hardware_class` (a class id
    `optimize node-resources` publishes; by default this machine's class)."""

    address: str | None = None
    hardware_class: str | None = None

    @model_validator(mode="after")
    def _class_needs_a_cluster(self) -> ClusterSection:
        if self.hardware_class is not None and self.address is None:
            raise ValueError("a hardware class is measured on a cluster: give its address too")
        if self.address == "":
            raise ValueError("give the cluster's HOST:PORT, 'auto' or 'local'")
        return self


class PreprocessSection(Section):
    """Preprocessing compiled in front of the model (steps per raw input), and raw data to
    fit the statistics its steps leave unset."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    steps: Annotated[PreprocessSpec, PlainValidator(lambda v: _preprocess_steps(v))]
    fit: FilePath | None = None


def _preprocess_steps(value: Any) -> PreprocessSpec:
    if isinstance(value, PreprocessSpec):
        return value
    try:
        return parse_preprocessing(value)
    except UserError:
        raise
    except ValueError as exc:
        raise ValueError(str(exc)) from None
