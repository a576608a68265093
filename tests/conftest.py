"""Shared test fixtures: where the real models live, and the lean-environment guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEAN = os.environ.get("EDGECV_LEAN_ENV") == "1"
#: Set by tools/arm64/test.sh: the tests run on an emulated CPU (QEMU user mode), 40-70x slower than native.
EMULATED = bool(os.environ.get("EDGECV_EMULATED"))


def fixtures_dir() -> Path | None:
    env = os.environ.get("EDGECV_FIXTURES")
    path = Path(env) if env else REPO.parent / "shared" / "fixtures"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def fixtures() -> Path:
    path = fixtures_dir()
    if path is None:
        pytest.skip("fixtures folder absent: set EDGECV_FIXTURES or provide ../shared/fixtures")
    return path


@pytest.fixture(scope="session")
def onnx2tf_tool():
    """onnx2tf for TFLite from ONNX, found as users find it (EDGECV_ONNX2TF, .venv-onnx2tf, PATH).

    `make test` builds the tool environment first, so under CI its absence is a failure, not a skip.
    """
    try:
        from converters.onnx_translate import INSTALL_HINT, find_onnx2tf
    except ImportError as exc:
        pytest.skip(f"converters not importable here: {exc}")
    tool = find_onnx2tf()
    if tool is None:
        message = f"onnx2tf tool environment missing: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


def _unimportable_skips(stats: dict) -> list:
    """Skips because a module could not be imported (``pytest.importorskip``)."""
    return [r for r in stats.get("skipped", []) if "could not import" in str(getattr(r, "longrepr", ""))]


def pytest_sessionfinish(session, exitstatus):
    """In the lean device environment a skipped or empty run is a failure; in the workstation environment
    (`make test-full` installs every extra) a test module skipped for a package it could not import is one."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter else {}
    if not LEAN:
        missing = _unimportable_skips(stats)
        if missing and os.environ.get("EDGECV_ALLOW_IMPORT_SKIPS") != "1":
            print(f"\nworkstation run: {len(missing)} test module(s) skipped for a package they could not import "
                  f"({', '.join(str(r.longrepr[-1]) for r in missing[:3])}); `make test-full` installs every "
                  "extra, so this is a broken environment or a test that blocks an import for the whole session "
                  "(set EDGECV_ALLOW_IMPORT_SKIPS=1 to run a partial environment on purpose)")
            session.exitstatus = 1
        return
    # A module of workstation-only tests (tensorflow, onnx) skips as a whole at collection, before `-m device`
    # deselects its tests; only a skipped *test* means a device test did not run here.
    skipped = [r for r in stats.get("skipped", []) if getattr(r, "when", "collect") != "collect"]
    passed = len(stats.get("passed", []))
    if skipped or passed == 0:
        names = ", ".join(r.nodeid for r in skipped[:5])
        print(f"\nlean device run: {passed} passed, {len(skipped)} device tests skipped ({names}); "
              "every device test must run here")
        session.exitstatus = 1
