"""Imports go one way (hardware ← passes ← optimize), subpackages included, and no module
imports itself back through a circle."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"hardware": {"passes", "optimize"}, "passes": {"optimize"}, "optimize": set()}


def _modules() -> dict[str, Path]:
    """Every module of the three packages, subpackages included, by dotted name."""
    found = {}
    for package in FORBIDDEN:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The project modules `name` imports, anywhere in the file (function bodies too: a
    lazy import is still a dependency)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name) for name in MODULES}


def test_every_package_is_walked():
    assert {"optimize.config.recipe_file", "optimize.build.builder", "hardware.profile"} <= set(
        MODULES
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    offenders = {
        name: sorted(t for t in targets if t.split(".")[0] in FORBIDDEN[package])
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
        and any(t.split(".")[0] in FORBIDDEN[package] for t in targets)
    }
    assert offenders == {}


def _circle() -> list[str] | None:
    """One import circle among the project's modules, or None."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        trail.append(name)
        for target in sorted(GRAPH[name]):
            # A package's __init__ importing its own modules is how packages work.
            if name.startswith(target + "."):
                continue
            if state.get(target) == "open":
                return trail[trail.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[name] = "done"
        trail.pop()
        return None

    for name in sorted(GRAPH):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_import_circles():
    assert _circle() is None


def test_every_module_has_a_docstring():
    missing = [
        name
        for name, path in MODULES.items()
        if ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []


# The stages of a run inside optimize/, in the order data flows through them: a module may
# import its own stage and earlier ones, never a later one. Records are leaves every stage
# may read; the foundations (errors, the output folder, child processes, where units run)
# know no stage; the cluster executor reads its configuration; api and the CLI come last.
STAGE_ORDER = [
    {"records", "errors", "store", "isolation", "execution", "stage_clock"},
    {"config"},
    {"source"},
    {"data"},
    {"build"},
    {"measure"},
    {"choose"},
    {"search"},
    {"serve"},
    {"report"},
    {"cluster"},
    {"api", "cli", "cli_app", "cli_flags", "cli_tools", "examples", "__main__"},
]


def _stage(module: str) -> int:
    """The rank of an optimize module's stage (its folder, or its own name at the top)."""
    part = module.split(".")[1] if "." in module else "api"
    return next(i for i, names in enumerate(STAGE_ORDER) if part in names)


def test_every_optimize_folder_has_a_stage():
    parts = {name.split(".")[1] for name in MODULES if name.startswith("optimize.")}
    assert parts - set().union(*STAGE_ORDER) == set()


def test_stages_import_only_earlier_stages():
    later = {
        name: sorted(t for t in targets if t.startswith("optimize.") and _stage(t) > _stage(name))
        for name, targets in GRAPH.items()
        if name.startswith("optimize.")
    }
    assert {name: found for name, found in later.items() if found} == {}


def test_records_are_leaves():
    records = [name for name in MODULES if name.startswith("optimize.records")]
    reaching = {
        name: sorted(
            t
            for t in GRAPH[name]
            if t.startswith("optimize.") and not t.startswith("optimize.records")
        )
        for name in records
    }
    assert records and {name: found for name, found in reaching.items() if found} == {}


# A module of the job longer than this holds two responsibilities.
MAX_JOB_MODULE_LINES = 350


def test_job_modules_stay_small():
    long = {
        name: lines
        for name, path in MODULES.items()
        if name.startswith("optimize")
        and (lines := len(path.read_text().splitlines())) > MAX_JOB_MODULE_LINES
    }
    assert long == {}
