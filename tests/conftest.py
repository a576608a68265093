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


def pytest_sessionfinish(session, exitstatus):
    """In the lean device environment a skipped or empty run is a failure."""
    if not LEAN:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if skipped or passed == 0:
        print(f"\nlean device run: {passed} passed, {skipped} skipped; every device test must run here")
        session.exitstatus = 1
