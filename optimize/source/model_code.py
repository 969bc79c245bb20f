"""Unpickling a whole module whose classes a user's `--model-code` .py file defines."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

from optimize.errors import UserError, first_line


@contextlib.contextmanager
def model_code_pickle(model_code: Path | None) -> Iterator[types.ModuleType]:
    """A pickle module for torch.load whose unpickler also finds the classes defined in
    `model_code`, whatever module name the pickle gives them (often `__main__`)."""
    if model_code is None:
        yield pickle
        return
    model_code = Path(model_code)
    if not model_code.is_file():
        raise UserError(f"--model-code file not found: {model_code}")
    if model_code.suffix != ".py":
        raise UserError(f"--model-code {model_code} is not a .py file defining the model")
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
        raise UserError(
            f"--model-code {file} failed to import: {type(exc).__name__}: {first_line(exc)}"
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
