"""Imports go one way: hardware imports neither passes nor optimize; passes never optimize."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"hardware": {"passes", "optimize"}, "passes": {"optimize"}, "optimize": set()}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).glob("*.py")
        if _imported_packages(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_every_module_has_a_docstring():
    missing = [
        str(path.relative_to(ROOT))
        for package in FORBIDDEN
        for path in (ROOT / package).glob("*.py")
        if ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
