"""Every pass by name: the one table the recipe, the builder and the report look passes up
in. It is read off the package, so adding a pass is adding its file."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import passes
from passes.base import Pass


def _discover() -> dict[str, type[Pass]]:
    """Each concrete pass class defined in a module of this package, by its name."""
    found: dict[str, type[Pass]] = {}
    for info in sorted(pkgutil.iter_modules(passes.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"passes.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Pass) and cls is not Pass and cls.__module__ == module.__name__:
                if cls.name in found:
                    raise TypeError(f"two passes are named {cls.name!r}: {found[cls.name]}, {cls}")
                found[cls.name] = cls
    return found


PASSES: dict[str, type[Pass]] = _discover()

# The passes a chain may name: the lead-in ones run in front of every chain by themselves.
CHAINABLE: dict[str, type[Pass]] = {n: c for n, c in PASSES.items() if not c.lead_in}


def pass_class(name: str) -> type[Pass] | None:
    """The pass class a step's name refers to, or None for a name no pass has (a step
    recorded by an older version)."""
    return PASSES.get(name)
