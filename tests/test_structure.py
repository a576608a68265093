"""House rules on size: no source module over 600 lines, no function or method over 100 lines.

Counted with ``ast`` over every module of the three packages; a function's length runs from its ``def``
line to its last line (docstring and nested functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("edgecv", "converters", "targets")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _long_functions(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{node.name} (line {node.lineno}, {length} lines)")
    return found


def test_the_packages_have_modules():
    assert len(_modules()) > 20


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_module_is_at_most_600_lines(path: Path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines; split it into modules with one job each"


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_functions_are_at_most_100_lines(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    long = _long_functions(tree)
    assert not long, f"{_name(path)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_convert_reads_as_its_stages():
    """converters.convert() stays a short list of named stages (signature and docstring included)."""
    tree = ast.parse((REPO / "converters" / "pipeline.py").read_text(encoding="utf-8"))
    convert = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "convert")
    assert convert.end_lineno - convert.lineno + 1 <= 80
