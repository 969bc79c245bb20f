"""Model files in every form -> Source: the loaded model, its input spec and its content id."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
import pickle
import sys
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from optimize.errors import OptimizeError
from passes.base import DTYPES, TensorSpec
from passes.onnx_files import external_data_files
from passes.torch_run import dynamic_batch_program

Form = Literal["torchscript", "pickled_module", "exported_program", "onnx"]

ACCEPTED_FORMS = (
    "TorchScript (torch.jit.save), an ExportedProgram (torch.export.save, .pt2), "
    "a whole pickled nn.Module (torch.save(model), with --trust-pickle) or ONNX"
)
FLAG_FORM = "NAME:DIMS[:DTYPE], e.g. x:batch,3,224,224:float32"
BATCH = "batch"

# ONNX TensorProto element types this tool feeds, by the DTYPES name they map to.
_ONNX_ELEM_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}


@dataclass
class Source:
    """A user's model as loaded: the file (never modified), its form, input spec and model."""

    path: Path
    form: Form
    inputs: list[TensorSpec]
    model: Any
    sample_inputs: dict[str, np.ndarray]
    source_id: str

    @property
    def model_kind(self) -> Literal["torch", "onnx"]:
        return "onnx" if self.form == "onnx" else "torch"


@dataclass(frozen=True)
class _Flag:
    spec: TensorSpec
    dtype_given: bool


def parse_input_flag(text: str) -> TensorSpec:
    """Parse `NAME:DIMS[:DTYPE]` (dims comma separated, ints or symbolic names) into a
    TensorSpec; dtype defaults to float32."""
    return _parse_flag(text).spec


def _parse_flag(text: str) -> _Flag:
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise OptimizeError(f"bad --input '{text}': expected {FLAG_FORM}")
    dims: list[int | str] = []
    for dim in (d.strip() for d in parts[1].split(",")):
        if dim.isdigit():
            dims.append(int(dim))
        elif dim.isidentifier():
            dims.append(dim)
        else:
            raise OptimizeError(
                f"bad --input '{text}': dim '{dim}' is neither a size nor a name; expected {FLAG_FORM}"
            )
    dtype = parts[2] if len(parts) == 3 else "float32"
    if dtype not in DTYPES:
        raise OptimizeError(
            f"bad --input '{text}': unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}"
        )
    return _Flag(TensorSpec(parts[0], tuple(dims), dtype), dtype_given=len(parts) == 3)


def load_source(
    path: Path,
    input_flags: list[str] | None = None,
    trust_pickle: bool = False,
    model_code: Path | None = None,
) -> Source:
    """Load a model file of any accepted form, detected from its content, not its name.

    `input_flags` (`NAME:DIMS[:DTYPE]`) give or override the input spec; `trust_pickle`
    allows unpickling a whole module, whose classes `model_code` (a .py file) may define.
    """
    path = Path(path)
    _check_file(path)
    flags = [_parse_flag(text) for text in input_flags or []]
    names = [f.spec.name for f in flags]
    if len(set(names)) != len(names):
        raise OptimizeError(f"--input names repeat: {', '.join(names)}; give each input once")

    kind = _detect_form(path)
    if kind == "onnx":
        inputs, source_id = _load_onnx(path, flags)
        return Source(path, "onnx", inputs, None, {}, source_id)
    source_id = _sha256([path])
    if kind == "exported_program":
        program, inputs, samples = _load_exported_program(path, flags)
        return Source(path, "exported_program", inputs, program, samples, source_id)
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
        raise OptimizeError(f"model file not found: {path}")
    if path.is_dir():
        raise OptimizeError(f"{path} is a directory; pass the model file inside it")
    if path.stat().st_size == 0:
        raise OptimizeError(f"{path} is empty (0 bytes); save the model again")


def _not_a_model(path: Path, detail: str) -> OptimizeError:
    return OptimizeError(
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


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# ONNX


def _load_onnx(path: Path, flags: list[_Flag]) -> tuple[list[TensorSpec], str]:
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
        raise OptimizeError(
            f"{path} keeps its weights in {', '.join(missing)}, which is missing beside it; "
            "copy the external-data file(s) next to the model"
        )
    initializers = {t.name for t in graph.initializer}
    declared = [_onnx_input_spec(path, vi) for vi in graph.input if vi.name not in initializers]
    return _apply_flags_by_name(path, declared, flags), _sha256([path, *data_files])


@dataclass(frozen=True)
class _Unshaped:
    """A declared input whose shape the file does not record; an --input flag must give it."""

    name: str
    dtype: str


def _onnx_input_spec(path: Path, value_info) -> TensorSpec | _Unshaped:
    if not value_info.type.HasField("tensor_type"):
        raise OptimizeError(
            f"{path}: input '{value_info.name}' is not a tensor (a sequence, map or optional); "
            "only tensor inputs are supported"
        )
    tensor_type = value_info.type.tensor_type
    dtype = _ONNX_ELEM_TYPES.get(tensor_type.elem_type)
    if dtype is None:
        import onnx

        type_name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        raise OptimizeError(
            f"{path}: input '{value_info.name}' has element type {type_name}, which is not "
            f"supported; supported: {', '.join(DTYPES)}"
        )
    if not tensor_type.HasField("shape"):
        return _Unshaped(value_info.name, dtype)
    dims: list[int | str] = []
    for index, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or f"dim{index}")
    return TensorSpec(value_info.name, tuple(dims), dtype)


def _apply_flags_by_name(
    path: Path, declared: list[TensorSpec | _Unshaped], flags: list[_Flag]
) -> list[TensorSpec]:
    """Declared inputs, each replaced by the --input flag of its name; flags must name
    declared inputs and agree with the sizes and dtypes the file fixes."""
    by_name = {d.name: d for d in declared}
    unknown = [f.spec.name for f in flags if f.spec.name not in by_name]
    if unknown:
        raise OptimizeError(
            f"--input names {', '.join(unknown)} are not inputs of {path.name}; "
            f"its inputs are: {', '.join(by_name) or 'none'}"
        )
    given = {f.spec.name: f for f in flags}
    specs = []
    for item in declared:
        flag = given.get(item.name)
        if flag is None:
            if isinstance(item, _Unshaped):
                raise OptimizeError(
                    f"{path.name} does not record the shape of input '{item.name}'; give it "
                    f"with --input {item.name}:batch,...:{item.dtype}"
                )
            specs.append(item)
            continue
        specs.append(_merge_flag(item, flag))
    return specs


def _merge_flag(item: TensorSpec | _Unshaped, flag: _Flag) -> TensorSpec:
    spec = flag.spec
    if flag.dtype_given and spec.dtype != item.dtype:
        raise OptimizeError(
            f"--input {spec.name}: the model takes {item.dtype}, not {spec.dtype}; "
            f"drop the dtype or use {item.dtype}"
        )
    if isinstance(item, TensorSpec):
        if len(spec.dims) != len(item.dims):
            raise OptimizeError(
                f"--input {spec.name}: the model's input has {len(item.dims)} dims "
                f"({_dims_text(item.dims)}), the flag gives {len(spec.dims)}"
            )
        for index, (fixed, wanted) in enumerate(zip(item.dims, spec.dims, strict=True)):
            if isinstance(fixed, int) and isinstance(wanted, int) and fixed != wanted:
                raise OptimizeError(
                    f"--input {spec.name}: dim {index} is fixed at {fixed} in the model, "
                    f"not {wanted} ({_dims_text(item.dims)})"
                )
    return TensorSpec(spec.name, spec.dims, item.dtype)


def _dims_text(dims: tuple[int | str, ...]) -> str:
    return ",".join(str(d) for d in dims)


# ExportedProgram (.pt2)


def _load_exported_program(path: Path, flags: list[_Flag]):
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # torch raises many types for damaged or mismatched archives
        raise OptimizeError(
            f"{path} looks like a torch.export.save archive but could not be loaded "
            f"({_first_line(exc)}); save it again with this torch version ({torch.__version__})"
        ) from exc
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    declared: list[TensorSpec | _Unshaped] = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise OptimizeError(
                f"{path}: input '{name}' is not a tensor; only programs whose inputs are "
                "tensors are supported"
            )
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise OptimizeError(
                f"{path}: input '{name}' is {dtype}, which is not supported; "
                f"supported: {', '.join(DTYPES)}"
            )
        dims = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
        if dims:
            dims = (BATCH, *dims[1:])
        declared.append(TensorSpec(name, dims, dtype))
    inputs = _apply_flags_by_name(path, declared, flags)
    samples = _example_inputs(program, inputs)
    try:
        # Saved programs usually have static shapes (torch.export's default); one that
        # accepts any batch can be measured and evaluated at any batch.
        program = dynamic_batch_program(program, inputs)
    except Exception:  # torch.export raises many types; all mean the graph fixes the batch
        inputs = [_saved_batch(spec, placeholders[spec.name]) for spec in inputs]
    return program, inputs, samples


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
    except RuntimeError as exc:
        raise OptimizeError(
            f"{path} looks like a torch.jit.save archive but could not be loaded "
            f"({_first_line(exc)}); save it again with torch.jit.save"
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
    except (RuntimeError, EOFError, ValueError) as exc:
        raise _not_a_model(path, f"a damaged torch.save file: {_first_line(exc)}") from exc
    if weights is not None:
        raise _not_a_module(path, weights)
    if not trust_pickle:
        raise OptimizeError(
            f"{path} is a whole pickled module (torch.save(model)), and unpickling it runs "
            "arbitrary code from the file: rerun with --trust-pickle if you trust it, or save "
            "the model with torch.jit.save or torch.export.save"
        )
    with _model_code(model_code) as pickle_module:
        try:
            loaded = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=pickle_module
            )
        except (AttributeError, ImportError) as exc:
            where = f"defined in {model_code} or importable" if model_code else "importable"
            raise OptimizeError(
                f"{path} refers to a class that is not {where} ({_first_line(exc)}); pass the "
                ".py file that defines the model's class with --model-code path.py"
            ) from exc
    if not isinstance(loaded, torch.nn.Module):
        raise _not_a_module(path, loaded)
    return loaded.eval()


def _not_a_module(path: Path, loaded: object) -> OptimizeError:
    if isinstance(loaded, dict):
        return OptimizeError(
            f"{path} holds weights only (a state_dict), not the model's code: build the module "
            "in Python, load_state_dict() these weights, then save it with "
            "torch.jit.save(torch.jit.script(model), ...) or torch.export.save"
        )
    return OptimizeError(
        f"{path} holds a {type(loaded).__name__}, not an nn.Module; save the model itself "
        "with torch.jit.save or torch.export.save"
    )


@contextlib.contextmanager
def _model_code(model_code: Path | None) -> Iterator[types.ModuleType]:
    """A pickle module for torch.load whose unpickler also finds the classes defined in
    `model_code`, whatever module name the pickle gives them (often `__main__`)."""
    if model_code is None:
        yield pickle
        return
    model_code = Path(model_code)
    if not model_code.is_file():
        raise OptimizeError(f"--model-code file not found: {model_code}")
    if model_code.suffix != ".py":
        raise OptimizeError(f"--model-code {model_code} is not a .py file defining the model")
    # The file's own folder is importable while it runs and while unpickling, so it can
    # import modules beside it.
    sys.path.insert(0, str(model_code.parent.resolve()))
    try:
        user_module = _import_file(model_code)
        yield _pickle_module_finding(user_module, model_code.stem)
    finally:
        sys.path.remove(str(model_code.parent.resolve()))


def _import_file(file: Path) -> types.ModuleType:
    name = file.stem if file.stem not in sys.modules else f"_model_code_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    # Registered so the classes it defines can be pickled again (e.g. sent to a worker).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code can fail in any way; report it as one line
        del sys.modules[name]
        raise OptimizeError(
            f"--model-code {file} failed to import: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return module


def _pickle_module_finding(user_module: types.ModuleType, stem: str) -> types.ModuleType:
    def lookup(name: str):
        return functools.reduce(getattr, name.split("."), user_module)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if module in ("__main__", stem, user_module.__name__):
                with contextlib.suppress(AttributeError):
                    return lookup(name)
            try:
                return super().find_class(module, name)
            except (AttributeError, ImportError):
                with contextlib.suppress(AttributeError):
                    return lookup(name)
                raise

    def load(file, **kwargs):
        return Unpickler(file, **kwargs).load()

    module = types.ModuleType("optimize_model_code_pickle")
    module.__dict__.update(pickle.__dict__)
    module.Unpickler = Unpickler
    module.load = load
    return module


def _module_inputs(path: Path, module, flags: list[_Flag], form: Form) -> list[TensorSpec]:
    """The input spec of a module that records no shapes: the --input flags, in the order of
    forward()'s parameters when they name them, checked against how many it takes."""
    params, required, unlimited = _forward_params(module)
    if not flags:
        example = " ".join(
            f"--input {p}:batch,3,224,224:float32" for p in params[:required] or ["x"]
        )
        what = "TorchScript module" if form == "torchscript" else "pickled module"
        raise OptimizeError(
            f"{path.name} is a {what}, which does not record input shapes: give each input of "
            f"forward({', '.join(params)}) with --input, e.g. {example}"
        )
    specs = [f.spec for f in flags]
    if len(specs) < required or (len(specs) > len(params) and not unlimited):
        if unlimited:
            expected = f"at least {required}"
        else:
            expected = f"{required}" if required == len(params) else f"{required} to {len(params)}"
        raise OptimizeError(
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
