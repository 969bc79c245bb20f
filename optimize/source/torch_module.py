"""TorchScript and whole pickled modules as sources: loaded (a pickle only when trusted,
with the user's model code), and their inputs from the --input flags in forward()'s order."""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

from optimize.config.input_flags import InputFlag
from optimize.errors import UserError, first_line
from optimize.source.files import not_a_model
from optimize.source.model_code import model_code_pickle
from passes.base import TensorSpec


def load_torchscript(path: Path):
    """The TorchScript module in eval mode; a damaged archive is refused in one line."""
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # a damaged archive can fail in any of the reader's steps
        raise UserError(
            f"{path} looks like a torch.jit.save archive but could not be loaded "
            f"({first_line(exc)}); save it again with torch.jit.save"
        ) from exc
    return module.eval()


def load_pickled_module(path: Path, trust_pickle: bool, model_code: Path | None):
    """The pickled module in eval mode, unpickled only when trusted; weights alone or
    another object are refused with how to save the model instead."""
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
        raise not_a_model(path, f"a damaged torch.save file: {first_line(exc)}") from exc
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


def module_inputs(path: Path, module, flags: list[InputFlag], form: str) -> list[TensorSpec]:
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
