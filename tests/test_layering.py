"""The direction of dependencies (DESIGN.md): only edgecv/cli/ may import converters; targets/ never does.

Read from the source with ast, so an import inside a function counts as much as one at
the top of a module, and relative imports are resolved before they are judged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKSTATION = "converters"


def _module_of(path: Path) -> tuple[str, bool]:
    """(dotted module name, whether it is a package's ``__init__``) of a file under REPO."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _literal_import_call(node: ast.Call) -> str | None:
    """The module name of ``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imported_names(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of everything *source* imports, at any depth, relative imports resolved.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module or a name).
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base_parts = package[:max(len(package) - (node.level - 1), 0)] if node.level else []
            base = ".".join(base_parts + ([node.module] if node.module else []))
            if base:
                found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names)
        elif isinstance(node, ast.Call):
            name = _literal_import_call(node)
            if name is not None and not name.startswith("."):
                found.append((node.lineno, name))
    return found


def workstation_imports(path: Path) -> list[str]:
    """``file:line imports name`` for every import of the converters package in *path*."""
    module, is_package = _module_of(path)
    return [f"{path.relative_to(REPO)}:{line} imports {name}"
            for line, name in imported_names(path.read_text(), module, is_package=is_package)
            if name == WORKSTATION or name.startswith(WORKSTATION + ".")]


def _sources(folder: str, *, excluding: str | None = None) -> list[Path]:
    paths = sorted((REPO / folder).rglob("*.py"))
    if excluding is not None:
        paths = [p for p in paths if (REPO / excluding) not in p.parents]
    assert paths, f"no Python files under {folder}/"
    return paths


@pytest.mark.device
def test_only_the_cli_imports_converters():
    offending = [hit for path in _sources("edgecv", excluding="edgecv/cli") for hit in workstation_imports(path)]
    assert offending == [], "the device runtime imports the workstation side:\n" + "\n".join(offending)


@pytest.mark.device
def test_targets_does_not_import_converters():
    offending = [hit for path in _sources("targets") for hit in workstation_imports(path)]
    assert offending == [], "targets/ imports the workstation side:\n" + "\n".join(offending)


@pytest.mark.device
def test_the_scan_sees_the_cli_importing_converters():
    """The same scan finds the imports the CLI does have, so an empty result above means something."""
    hits = [hit for path in _sources("edgecv/cli") for hit in workstation_imports(path)]
    assert any(hit.startswith("edgecv/cli/demo.py") for hit in hits), hits


@pytest.mark.device
@pytest.mark.parametrize(("module", "source"), [
    ("edgecv.model", "import converters"),
    ("edgecv.model", "import converters.plan as plan"),
    ("edgecv.model", "from converters import convert"),
    ("edgecv.model", "def f():\n    if True:\n        from converters.plan import Plan\n"),
    ("edgecv.model", "from .. import converters"),
    ("edgecv.tasks.detector", "from ...converters import heads"),
    ("edgecv.tasks.detector", "class A:\n    def m(self):\n        from ...converters.heads import x\n"),
    ("edgecv.model", "import importlib\nimportlib.import_module('converters.convert')"),
    ("edgecv.model", "__import__('converters')"),
    ("targets.check", "try:\n    import converters\nexcept ImportError:\n    pass\n"),
])
def test_the_scan_finds_every_form_of_import(module, source):
    names = [name for _, name in imported_names(source, module)]
    assert any(n == WORKSTATION or n.startswith(WORKSTATION + ".") for n in names), names


@pytest.mark.device
@pytest.mark.parametrize(("module", "source"), [
    ("edgecv.model", "from . import converters"),           # edgecv.converters, not the workstation package
    ("edgecv.tasks.detector", "from .. import converters"),
    ("edgecv.model", "import converters_extra"),
    ("edgecv.model", "from edgecv import converters"),
    ("edgecv.model", "x = 'import converters'"),
])
def test_the_scan_does_not_flag_lookalikes(module, source):
    names = [name for _, name in imported_names(source, module)]
    assert not any(n == WORKSTATION or n.startswith(WORKSTATION + ".") for n in names), names


@pytest.mark.device
def test_relative_imports_resolve_from_a_package_init():
    """In a package's __init__, one dot is the package itself: edgecv/cli/__init__.py needs three to leave edgecv."""
    names = [name for _, name in imported_names("from ... import converters", "edgecv.cli", is_package=True)]
    assert "converters" in names
    names = [name for _, name in imported_names("from .. import converters", "edgecv.cli", is_package=True)]
    assert names == ["edgecv", "edgecv.converters"]
