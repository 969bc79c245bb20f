"""Model files in every form -> Source: which form the file is in, and the loader of that
form (one module each) that gives its model, input spec and content id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hardware.model_files import is_gguf
from optimize.config.input_flags import InputFlag, parse_input_flags
from optimize.errors import UserError
from optimize.source.exported_program import declared_max_batch, load_exported_program
from optimize.source.files import check_file, detect_form, file_digest
from optimize.source.index_ranges import program_index_limits
from optimize.source.input_spec import apply_flags_by_name
from optimize.source.onnx_file import load_onnx_file
from optimize.source.torch_module import load_pickled_module, load_torchscript, module_inputs
from passes.base import TensorSpec

if TYPE_CHECKING:
    from optimize.config.recipe import Recipe

Form = Literal[
    "torchscript", "pickled_module", "exported_program", "onnx", "hf_folder", "causal_lm"
]


@dataclass(frozen=True)
class SourceSpec:
    """Where a user's model is and how it is loaded: all a child process needs to load the
    same source again."""

    path: Path
    input_flags: tuple[str, ...] = ()
    trust_pickle: bool = False
    model_code: Path | None = None
    task: str | None = None
    # Where a GGUF source is dequantized into a model folder: the run's cache.
    cache_dir: Path | None = None

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> SourceSpec:
        """The source a recipe names, with its loading options."""
        flags = tuple(recipe.input_flags or ())
        cache = recipe.out.resolve() / "cache"
        return cls(recipe.model, flags, recipe.trust_pickle, recipe.model_code, recipe.task, cache)

    def load(self) -> Source:
        """The source this names, loaded."""
        flags = list(self.input_flags) or None
        return load_source(
            self.path, flags, self.trust_pickle, self.model_code, self.task, self.cache_dir
        )


@dataclass
class Source:
    """A user's model as loaded: the file (never modified), its form, input spec and model.
    `reload`, when given, loads the model and its saved sample inputs on first use instead
    (see optimize.source.known): a re-run whose work is all stored never needs them."""

    path: Path
    form: Form
    inputs: list[TensorSpec]
    loaded_model: Any
    loaded_samples: dict[str, np.ndarray]
    source_id: str
    reload: Callable[[], Source] | None = None
    # The most rows the model accepts where it declares a bounded dynamic batch (a .pt2
    # exported with Dim("batch", max=N)); None when unbounded or fixed.
    max_batch: int | None = None
    # Integer inputs that index an embedding table: {name: the table's rows}.
    index_limits: dict[str, int] = field(default_factory=dict)
    # How it was loaded, to load it again elsewhere.
    spec: SourceSpec | None = None

    @property
    def model_kind(self) -> Literal["torch", "onnx", "hf_folder"]:
        """What the first pass of a chain receives: an ONNX file, a PyTorch model, or a
        causal LM's model folder."""
        if self.form == "causal_lm":
            return "hf_folder"
        return "onnx" if self.form == "onnx" else "torch"

    @property
    def generative(self) -> bool:
        """Whether the source generates text, measured in tokens per second."""
        return self.form == "causal_lm"

    @property
    def artifact(self) -> Path:
        """The file or folder the first pass of a chain reads: a causal LM's model folder
        (a GGUF source's dequantized one), else the source file."""
        return self.model if self.generative else self.path

    @property
    def model(self) -> Any:
        """The loaded model (None for ONNX sources, the model folder for causal LMs)."""
        self._load()
        return self.loaded_model

    @property
    def sample_inputs(self) -> dict[str, np.ndarray]:
        """Inputs saved with the model (a .pt2's example inputs), by name."""
        self._load()
        return self.loaded_samples

    def _load(self) -> None:
        if self.reload is not None:
            full = self.reload()
            self.loaded_model, self.loaded_samples, self.reload = (
                full.model,
                full.sample_inputs,
                None,
            )


def load_source(
    path: Path,
    input_flags: list[str] | None = None,
    trust_pickle: bool = False,
    model_code: Path | None = None,
    task: str | None = None,
    cache_dir: Path | None = None,
) -> Source:
    """Load a model file of any accepted form, detected from its content, not its name.

    `input_flags` (`NAME:DIMS[:DTYPE]`) give or override the input spec; `trust_pickle`
    allows unpickling a whole module, whose classes `model_code` (a .py file) may define;
    `task` says what a Hugging Face folder's model is loaded for; a GGUF file is
    dequantized into a folder under `cache_dir`.
    """
    path = Path(path)
    flags = parse_input_flags(input_flags)
    if causal := _load_causal_lm(path, task, cache_dir):
        source = causal
    else:
        source = _load_form(path, flags, trust_pickle, model_code, task)
    source.spec = SourceSpec(
        path, tuple(input_flags or ()), trust_pickle, model_code, task, cache_dir
    )
    return source


def _load_causal_lm(path: Path, task: str | None, cache_dir: Path | None) -> Source | None:
    """The causal LM at `path` (a text-generating model folder, or a GGUF file), or None
    when it is not one."""
    from optimize.source import causal_lm

    if is_gguf(path):
        if task not in (None, causal_lm.TEXT_GENERATION):
            raise UserError(f"{path.name} is a GGUF language model: use --task text-generation")
        if cache_dir is None:
            raise UserError(f"{path.name} is a GGUF file: it is read in a run with --out")
        folder = causal_lm.dequantized_folder(path, cache_dir)
        digest = file_digest([path])
    elif path.is_dir() and (path / "config.json").is_file():
        if not causal_lm.generates_text(path, task):
            return None
        folder, digest = path, causal_lm.causal_lm_digest(path)
    else:
        return None
    causal_lm.check_causal_lm_folder(folder)
    return Source(path, "causal_lm", causal_lm.token_inputs(), folder, {}, digest)


def _load_form(
    path: Path,
    flags: list[InputFlag],
    trust_pickle: bool,
    model_code: Path | None,
    task: str | None,
) -> Source:
    """The source in whichever form its content shows."""
    if path.is_dir() and (path / "config.json").is_file():
        return _load_hf_folder(path, flags, task)
    check_file(path)

    kind = detect_form(path)
    if kind == "onnx":
        inputs, source_id, limits = load_onnx_file(path, flags)
        return Source(path, "onnx", inputs, None, {}, source_id, index_limits=limits)
    source_id = file_digest([path])
    if kind == "exported_program":
        program, inputs, samples = load_exported_program(path, flags)
        return Source(
            path,
            "exported_program",
            inputs,
            program,
            samples,
            source_id,
            max_batch=declared_max_batch(program, inputs),
            index_limits=program_index_limits(program, [spec.name for spec in inputs]),
        )
    if kind == "torchscript":
        module = load_torchscript(path)
        form: Form = "torchscript"
    else:
        module = load_pickled_module(path, trust_pickle, model_code)
        form = "pickled_module"
    inputs = module_inputs(path, module, flags, form)
    return Source(path, form, inputs, module, {}, source_id)


def _load_hf_folder(path: Path, flags: list[InputFlag], task: str | None) -> Source:
    from optimize.source.hf_files import folder_files
    from optimize.source.hf_folder import (
        SAMPLE_ROWS,
        index_limits,
        input_specs,
        load_hf_folder,
        text_samples,
    )

    module, names, config = load_hf_folder(path, task)
    specs, length = input_specs(names, config, flags)
    inputs = apply_flags_by_name(path, specs, flags)
    names = [spec.name for spec in inputs]
    samples = text_samples(config, names, length, SAMPLE_ROWS)
    digest = file_digest(folder_files(path))
    limits = index_limits(config, names)
    return Source(path, "hf_folder", inputs, module, samples, digest, index_limits=limits)
