"""The Recipe: the one typed description of a run that optimize.toml, the CLI's flags and
the Python API all build, with the same checks and the same one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from hardware.model_files import is_gguf
from hardware.targets import parse_target
from optimize.config.chain_entries import chain_from_entry
from optimize.config.chains import Chain, builtin_chains
from optimize.config.limits import Limits
from optimize.config.sections import (
    ClusterSection,
    DataSection,
    ExportSection,
    FilePath,
    InputEntry,
    MeasureSection,
    PreprocessSection,
    PruneSection,
    SearchSection,
    ServeSection,
    not_empty,
)
from optimize.config.validation import KeyedError, Section, describe_validation_error, show
from optimize.errors import UserError

DEFAULT_OUT = Path("optimized")


# What a language model's pick is fastest at (optimize.choose.objective).
Objective = Literal["decode", "ttft", "throughput", "memory"]


class Recipe(Section):
    """Everything a run needs. Only `model` is required; every other key has the default
    a quick, stable run wants. Build it in Python, read it from optimize.toml
    (optimize.config.recipe_file), or let the CLI build it from flags."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: FilePath
    target: str = "cpu"
    out: FilePath = DEFAULT_OUT
    model_code: FilePath | None = None
    trust_pickle: bool = False
    # What a Hugging Face model folder's model is loaded for (optimize.source.hf_folder).
    task: str | None = None
    # What a language model's pick is fastest at; None: decode (optimize.choose.objective).
    objective: Objective | None = None
    builtin: bool = True
    inputs: list[InputEntry] = []
    export: ExportSection = ExportSection()
    data: DataSection = DataSection()
    limits: Limits = Limits()
    measure: MeasureSection = MeasureSection()
    search: SearchSection = SearchSection()
    prune: PruneSection = PruneSection()
    serve: ServeSection = ServeSection()
    cluster: ClusterSection = ClusterSection()
    preprocess: PreprocessSection | None = None
    chains: list[Annotated[Chain, PlainValidator(chain_from_entry)]] = []

    @field_validator("model", "out", "model_code")
    @classmethod
    def _path(cls, value: Path | None) -> Path | None:
        return not_empty(value)

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return str(parse_target(value))

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [InputEntry.parse(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("preprocess", mode="before")
    @classmethod
    def _preprocess(cls, value: Any) -> Any:
        # The file form: [preprocess] with `fit` beside one key per input.
        if isinstance(value, dict) and "steps" not in value:
            steps = {k: v for k, v in value.items() if k != "fit"}
            if not steps:
                return None
            return {"steps": steps, **({"fit": value["fit"]} if "fit" in value else {})}
        return value

    @model_validator(mode="after")
    def _whole(self) -> Recipe:
        names = [entry.name for entry in self.inputs]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise KeyedError(
                    ("inputs", i, "name"), f"{show(name)} is given twice; give each input once"
                )
        if not self.builtin and not self.chains:
            raise KeyedError(
                ("builtin",), "false leaves nothing to try; add [[chains]] or set it true"
            )
        return self

    def chains_to_try(self, cpu_flags: list[str], generative: bool = False) -> list[Chain]:
        """The target's built-in chains for a CPU with `cpu_flags` (those of a model that
        generates text where `generative`, the GGUF file itself among them where it was
        given as one) unless `builtin` is off, then the recipe's own."""
        target = parse_target(self.target)
        from_gguf = generative and is_gguf(self.model)
        builtin = builtin_chains(target, cpu_flags, generative, from_gguf) if self.builtin else []
        return builtin + list(self.chains)

    @property
    def input_flags(self) -> list[str] | None:
        """The inputs as --input texts, or None when the recipe states none."""
        return [entry.flag() for entry in self.inputs] or None

    def with_overrides(
        self, overrides: dict[str, Any], names: dict[str, str] | None = None
    ) -> Recipe:
        """This recipe with `overrides` applied (nested by section, e.g. {"limits":
        {"min_cosine": 0.99}}) and checked again; `names` says how the user named each key
        (a CLI flag) for the error message."""
        merged = _merge(dict(self), overrides)
        try:
            return Recipe.model_validate(merged)
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc, Recipe, names)) from None


def _merge(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Fields with overrides on top; a section is merged key by key."""
    merged = dict(fields)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, Section):
            merged[key] = _merge(dict(current), value)
        else:
            merged[key] = value
    return merged
