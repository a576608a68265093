"""Shared test fixtures: where the real models live, and the lean-environment guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEAN = os.environ.get("EDGECV_LEAN_ENV") == "1"


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


def pytest_sessionfinish(session, exitstatus):
    """In the lean device environment a skipped or empty run is a failure."""
    if not LEAN:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter else {}
    # A module of workstation-only tests (tensorflow, onnx) skips as a whole at collection, before `-m device`
    # deselects its tests; only a skipped *test* means a device test did not run here.
    skipped = [r for r in stats.get("skipped", []) if getattr(r, "when", "collect") != "collect"]
    passed = len(stats.get("passed", []))
    if skipped or passed == 0:
        names = ", ".join(r.nodeid for r in skipped[:5])
        print(f"\nlean device run: {passed} passed, {len(skipped)} device tests skipped ({names}); "
              "every device test must run here")
        session.exitstatus = 1
