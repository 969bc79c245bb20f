"""The optimization job: load, plan, run passes, measure, choose and report.

The public face: `run(Recipe(model=...))` returns the `Results` of a run."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Recipe", "Results", "run"]

# Imported on first use, so that `optimize --help` starts without the heavy libraries.
_PUBLIC = {
    "run": "optimize.api",
    "Recipe": "optimize.config.recipe",
    "Results": "optimize.report.results",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'optimize' has no attribute {name!r}")
