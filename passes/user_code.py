"""Importing a user's function named as `module:function` (fine-tuning, data, metrics)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hardware.errors import UserError


def import_callable(spec: str, what: str) -> Callable[..., Any]:
    """The function `spec` names: `package.module:function`, importable from sys.path, or
    `path/to/file.py:function`. `what` names its role in error messages. Raises UserError
    with one line saying what was wrong."""
    module_name, sep, function_name = spec.rpartition(":")
    if not sep or not module_name or not function_name.isidentifier():
        raise UserError(f"{what} '{spec}': expected module:function, e.g. my_project.data:batches")
    try:
        module = _module(module_name)
    except Exception as exc:  # user code: any failure at import is reported, not raised raw
        raise UserError(f"{what} '{spec}': cannot import {module_name}: {exc}") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"{what} '{spec}': {module_name} has no function {function_name}")
    return function


def _module(name: str):
    path = Path(name)
    if path.suffix != ".py":
        return importlib.import_module(name)
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    module_id = f"_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    if module_id in sys.modules:
        return sys.modules[module_id]
    spec = importlib.util.spec_from_file_location(module_id, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_id] = module  # pickling the user's objects needs the module findable
    spec.loader.exec_module(module)
    return module
