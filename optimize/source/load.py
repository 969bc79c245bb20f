"""Model files in every form -> Source: the loaded model, its input spec and its content id."""

from __future__ import annotations

import hashlib
import inspect
import pickle
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hardware.model_files import external_data_files
from optimize.config.input_flags import InputFlag, parse_input_flags
from optimize.errors import UserError, first_line
from optimize.source.index_ranges import onnx_index_limits, program_index_limits
from optimize.source.input_spec import Unshaped, apply_flags_by_name, onnx_input_specs
from optimize.source.model_code import model_code_pickle
from optimize.source.onnx_checks import check_onnx_loads
from passes.base import DTYPES, TensorSpec
from passes.torch_run import dynamic_batch_program, positional_program

if TYPE_CHECKING:
    from optimize.config.recipe import Recipe

Form = Literal["torchscript", "pickled_module", "exported_program", "onnx", "hf_folder"]

ACCEPTED_FORMS = (
    "TorchScript (torch.jit.save), an ExportedProgram (torch.export.save, .pt2), "
    "a whole pickled nn.Module (torch.save(model), with --trust-pickle), ONNX, or a "
    "Hugging Face model folder (save_pretrained)"
)
# 'org/name', as a Hugging Face Hub id reads.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
BATCH = "batch"


@dataclass(frozen=True)
class SourceSpec:
    """Where a user's model is and how it is loaded: all a child process needs to load the
    same source again."""

    path: Path
    input_flags: tuple[str, ...] = ()
    trust_pickle: bool = False
    model_code: Path | None = None
    task: str | None = None

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> SourceSpec:
        """The source a recipe names, with its loading options."""
        flags = tuple(recipe.input_flags or ())
        return cls(recipe.model, flags, recipe.trust_pickle, recipe.model_code, recipe.task)

    def load(self) -> Source:
        """The source this names, loaded."""
        flags = list(self.input_flags) or None
        return load_source(self.path, flags, self.trust_pickle, self.model_code, self.task)


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
    def model_kind(self) -> Literal["torch", "onnx"]:
        return "onnx" if self.form == "onnx" else "torch"

    @property
    def model(self) -> Any:
        """The loaded model (None for ONNX sources)."""
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
) -> Source:
    """Load a model file of any accepted form, detected from its content, not its name.

    `input_flags` (`NAME:DIMS[:DTYPE]`) give or override the input spec; `trust_pickle`
    allows unpickling a whole module, whose classes `model_code` (a .py file) may define;
    `task` says what a Hugging Face folder's model is loaded for.
    """
    path = Path(path)
    source = _load_form(path, parse_input_flags(input_flags), trust_pickle, model_code, task)
    source.spec = SourceSpec(path, tuple(input_flags or ()), trust_pickle, model_code, task)
    return source


def _load_form(
    path: Path, flags: list[InputFlag], trust_pickle: bool, model_code: Path | None, task: str | None
) -> Source:
    """The source in whichever form its content shows."""
    if path.is_dir() and (path / "config.json").is_file():
        return _load_hf_folder(path, flags, task)
    _check_file(path)

    kind = _detect_form(path)
    if kind == "onnx":
        inputs, source_id, limits = _load_onnx(path, flags)
        return Source(path, "onnx", inputs, None, {}, source_id, index_limits=limits)
    source_id = file_digest([path])
    if kind == "exported_program":
        program, inputs, samples = _load_exported_program(path, flags)
        return Source(
            path,
            "exported_program",
            inputs,
            program,
            samples,
            source_id,
            max_batch=_declared_max_batch(program, inputs),
            index_limits=program_index_limits(program, [spec.name for spec in inputs]),
        )
    if kind == "torchscript":
        module = _load_torchscript(path)
        form: Form = "torchscript"
    else:
        module = _load_pickled_module(path, trust_pickle, model_code)
        form = "pickled_module"
    inputs = _module_inputs(path, module, flags, form)
    return Source(path, form, inputs, module, {}, source_id)


def _check_file(path: Path) -> None:
    if not path.exists():
        hub = (
            "; a Hugging Face Hub id is not fetched: this tool never downloads, so fetch it "
            f"first (huggingface-cli download {path} --local-dir DIR) and pass DIR"
            if HUB_ID.match(str(path)) and not path.parent.exists()
            else ""
        )
        raise UserError(f"model file not found: {path}{hub}")
    if path.is_dir():
        raise UserError(
            f"{path} is a directory with no config.json; pass the model file inside it, or a "
            "Hugging Face model folder as save_pretrained writes it"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); save the model again")


def _not_a_model(path: Path, detail: str) -> UserError:
    return UserError(
        f"{path} is not a model file this tool reads ({detail}); accepted: {ACCEPTED_FORMS}"
    )


def _detect_form(path: Path) -> str:
    """'torchscript', 'exported_program', 'pickle' or 'onnx', from the file's bytes."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            # torch writes every entry under one root folder named after the file.
            inner = {n.split("/", 1)[-1] for n in archive.namelist()}
        if "archive_format" in inner:
            return "exported_program"
        if "constants.pkl" in inner and any(n.startswith("code/") for n in inner):
            return "torchscript"
        if "data.pkl" in inner:
            return "pickle"
        raise _not_a_model(path, "a zip archive, but not one torch writes")
    with path.open("rb") as file:
        first = file.read(1)
    # torch.save's legacy (non-zip) format is a bare pickle, whose first opcode is PROTO.
    return "pickle" if first == b"\x80" else "onnx"


def file_digest(files: list[Path]) -> str:
    """SHA-256 of the files' bytes, in order."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# ONNX


def _load_onnx(path: Path, flags: list[InputFlag]) -> tuple[list[TensorSpec], str, dict[str, int]]:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        # Weights stay on disk: only the graph is needed to read the input spec.
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError:
        raise _not_a_model(path, "not a torch archive and not a valid ONNX protobuf") from None
    graph = model.graph
    if not (graph.node or graph.input or graph.output):
        raise _not_a_model(path, "it parses as ONNX but holds no graph")
    data_files = external_data_files(path)
    missing = [f.name for f in data_files if not f.is_file()]
    if missing:
        raise UserError(
            f"{path} keeps its weights in {', '.join(missing)}, which is missing beside it; "
            "copy the external-data file(s) next to the model"
        )
    check_onnx_loads(path)
    declared = onnx_input_specs(path, graph)
    inputs = apply_flags_by_name(path, declared, flags)
    return inputs, file_digest([path, *data_files]), onnx_index_limits(graph)


# Hugging Face model folders


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


# ExportedProgram (.pt2)


def _load_exported_program(path: Path, flags: list[InputFlag]):
    import torch

    try:
        program = _export_load(path)
    except Exception as exc:  # torch raises many types for damaged or mismatched archives
        program = _load_with_output_types(path, exc)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    declared: list[TensorSpec | Unshaped] = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise UserError(
                f"{path}: input '{name}' is not a tensor; only programs whose inputs are "
                "tensors are supported"
            )
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise UserError(
                f"{path}: input '{name}' is {dtype}, which is not supported; "
                f"supported: {', '.join(DTYPES)}"
            )
        dims = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
        if dims:
            dims = (BATCH, *dims[1:])
        declared.append(TensorSpec(name, dims, dtype))
    try:
        program = positional_program(program)
    except Exception as exc:  # torch.export raises many types
        raise UserError(
            f"{path} takes keyword inputs and could not be re-exported to take them in "
            f"order ({first_line(exc)}); export it with positional inputs"
        ) from exc
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = apply_flags_by_name(path, declared, flags)
    samples = _example_inputs(program, inputs)
    try:
        # Saved programs usually have static shapes (torch.export's default); one that
        # accepts any batch can be measured and evaluated at any batch.
        program = dynamic_batch_program(program, inputs)
    except Exception:  # torch.export raises many types; all mean the graph fixes the batch
        inputs = [_saved_batch(spec, placeholders[spec.name]) for spec in inputs]
    return program, inputs, samples


# How torch names an output type no library has registered with its pytree yet.
UNREGISTERED_TYPE = re.compile(r"Deserializing ([\w.]+) in pytree is not registered")


class _DeserializingError(Exception):
    """torch.export.load failed; the message holds the cause torch logged before it."""


def _export_load(path: Path):
    """torch.export.load, with the cause of a failure in the exception: torch logs the
    archive's own error as a warning and raises a generic one after it."""
    import logging

    import torch

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(str(record.exc_info[1]))

    causes: list[str] = []
    logger, handler = logging.getLogger("torch.export"), Keep()
    logger.addHandler(handler)
    propagates, logger.propagate = logger.propagate, False
    try:
        return torch.export.load(str(path))
    except Exception as exc:  # see load_program
        if causes:
            raise _DeserializingError(f"{causes[0]} ({first_line(exc)})") from exc
        raise
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagates


def _load_with_output_types(path: Path, error: Exception):
    """Load a program whose outputs are of a type a library registers with torch's pytree
    when imported (a transformers ModelOutput): import that library and load again. Any
    other failure, or a library that is not installed, is refused in one line."""
    import importlib
    import importlib.util

    import torch

    unknown = UNREGISTERED_TYPE.search(str(error))
    if unknown is None:
        raise UserError(
            f"{path} looks like a torch.export.save archive but could not be loaded "
            f"({first_line(error)}); save it again with this torch version ({torch.__version__})"
        ) from error
    type_name = unknown.group(1)
    module, package = type_name.rpartition(".")[0], type_name.split(".")[0]
    if importlib.util.find_spec(package) is None:
        raise UserError(
            f"{path} returns {type_name}, a type the package '{package}' defines: "
            f"pip install {package}, then run again"
        ) from error
    importlib.import_module(module)
    try:
        return _export_load(path)
    except Exception as exc:  # as above
        raise UserError(
            f"{path} could not be loaded even with {module} imported ({first_line(exc)})"
        ) from exc


def _declared_max_batch(program, inputs: list[TensorSpec]) -> int | None:
    """The upper bound the program declares on its batch dim, when finite."""
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    bounds = []
    for spec in inputs:
        value = placeholders[spec.name].meta.get("val") if spec.has_symbolic_batch else None
        size = value.shape[0] if isinstance(value, torch.Tensor) and value.ndim else None
        if isinstance(size, torch.SymInt):
            upper = program.range_constraints.get(size.node.expr)
            # torch's int_oo calls itself finite: an integer bound is the finite one.
            if upper is not None and upper.upper.is_Integer:
                bounds.append(int(upper.upper))
    return min(bounds) if bounds else None


def _saved_batch(spec: TensorSpec, placeholder) -> TensorSpec:
    if not spec.has_symbolic_batch:
        return spec
    return TensorSpec(spec.name, (placeholder.meta["val"].shape[0], *spec.dims[1:]), spec.dtype)


def _example_inputs(program, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """The example tensors saved in the archive, when they are plain positional tensors."""
    import torch

    if program.example_inputs is None:
        return {}
    args, kwargs = program.example_inputs
    if kwargs or len(args) != len(inputs) or not all(isinstance(a, torch.Tensor) for a in args):
        return {}
    return {spec.name: a.detach().cpu().numpy() for spec, a in zip(inputs, args, strict=True)}


# TorchScript and pickled modules


def _load_torchscript(path: Path):
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # a damaged archive can fail in any of the reader's steps
        raise UserError(
            f"{path} looks like a torch.jit.save archive but could not be loaded "
            f"({first_line(exc)}); save it again with torch.jit.save"
        ) from exc
    return module.eval()


def _load_pickled_module(path: Path, trust_pickle: bool, model_code: Path | None):
    import torch

    try:
        # weights_only unpickles tensors and containers but never runs code; mmap keeps
        # large weights on disk while we only look at what the file holds.
        weights = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except pickle.UnpicklingError:
        weights = None  # it holds objects beyond tensors, such as a whole module
    except Exception as exc:  # a damaged pickle can fail in any of the unpickler's steps
        raise _not_a_model(path, f"a damaged torch.save file: {first_line(exc)}") from exc
    if weights is not None:
        raise _not_a_module(path, weights)
    if not trust_pickle:
        raise UserError(
            f"{path} is a whole pickled module (torch.save(model)), and unpickling it runs "
            "arbitrary code from the file: rerun with --trust-pickle if you trust it, or save "
            "the model with torch.jit.save or torch.export.save"
        )
    with model_code_pickle(model_code) as pickle_module:
        try:
            loaded = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=pickle_module
            )
        except (AttributeError, ImportError) as exc:
            where = f"defined in {model_code} or importable" if model_code else "importable"
            raise UserError(
                f"{path} refers to a class that is not {where} ({first_line(exc)}); pass the "
                ".py file that defines the model's class with --model-code path.py"
            ) from exc
    if not isinstance(loaded, torch.nn.Module):
        raise _not_a_module(path, loaded)
    return loaded.eval()


def _not_a_module(path: Path, loaded: object) -> UserError:
    if isinstance(loaded, dict):
        return UserError(
            f"{path} holds weights only (a state_dict), not the model's code: build the module "
            "in Python, load_state_dict() these weights, then save it with "
            "torch.jit.save(torch.jit.script(model), ...) or torch.export.save"
        )
    return UserError(
        f"{path} holds a {type(loaded).__name__}, not an nn.Module; save the model itself "
        "with torch.jit.save or torch.export.save"
    )


def _module_inputs(path: Path, module, flags: list[InputFlag], form: Form) -> list[TensorSpec]:
    """The input spec of a module that records no shapes: the --input flags, in the order of
    forward()'s parameters when they name them, checked against how many it takes."""
    params, required, unlimited = _forward_params(module)
    if not flags:
        example = " ".join(
            f"--input {p}:batch,3,224,224:float32" for p in params[:required] or ["x"]
        )
        what = "TorchScript module" if form == "torchscript" else "pickled module"
        raise UserError(
            f"{path.name} is a {what}, which does not record input shapes: give each input of "
            f"forward({', '.join(params)}) with --input, e.g. {example}"
        )
    specs = [f.spec for f in flags]
    if len(specs) < required or (len(specs) > len(params) and not unlimited):
        if unlimited:
            expected = f"at least {required}"
        else:
            expected = f"{required}" if required == len(params) else f"{required} to {len(params)}"
        raise UserError(
            f"{path.name}: forward({', '.join(params)}) takes {expected} input(s), but "
            f"{len(specs)} --input flag(s) were given"
        )
    if {s.name for s in specs} <= set(params):
        specs.sort(key=lambda s: params.index(s.name))
    return specs


def _forward_params(module) -> tuple[list[str], int, bool]:
    """forward()'s positional parameter names, how many are required, and whether it takes
    *args."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        arguments = [a for a in module.forward.schema.arguments[1:] if not a.kwarg_only]
        names = [a.name for a in arguments]
        return names, sum(not a.has_default_value() for a in arguments), False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = inspect.signature(module.forward).parameters.values()
    names = [p.name for p in parameters if p.kind in positional]
    required = sum(
        p.kind in positional and p.default is inspect.Parameter.empty for p in parameters
    )
    unlimited = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return names, required, unlimited
