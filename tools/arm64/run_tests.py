"""Runs pytest inside the emulated aarch64 interpreter after stating what runs the tests.

Called by tools/arm64/test.sh as ``.arm64/<variant>/bin/python tools/arm64/run_tests.py [pytest args]``.
Prints ``platform.machine()`` and the versions of the packages under test from this same process,
then the deselected device tests with their reasons (tools/arm64/deselected.txt), then the tests' wall time.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("numpy", "opencv-python-headless", "tflite-runtime", "ai-edge-litert", "onnxruntime", "pytest")


def deselected(listing: Path, variant: str) -> list[tuple[str, str]]:
    """(node id, reason) per line of ``listing`` that applies to ``variant``.

    A line is ``[variant] node id  # reason``; without the ``[variant]`` prefix it applies to every variant.
    """
    rows = []
    for line in listing.read_text().splitlines():
        node, _, reason = line.partition("#")
        node = node.strip()
        if node.startswith("["):
            only, _, node = node[1:].partition("]")
            if only != variant:
                continue
        if node.strip():
            rows.append((node.strip(), reason.strip()))
    return rows


def installed(names: tuple[str, ...]) -> str:
    """``name version`` for each installed distribution in ``names``."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main(args: list[str]) -> int:
    import pytest

    variant = os.environ.get("EDGECV_ARM64_VARIANT", "")
    sys.path.insert(0, str(REPO))        # like `python -m pytest` from the repository root
    print(f"arm64 run: variant {variant}, platform.machine()={platform.machine()} python {platform.python_version()} "
          f"({sys.executable})")
    print(f"arm64 run: {installed(PACKAGES)}")
    skip = deselected(REPO / "tools" / "arm64" / "deselected.txt", variant)
    for node, reason in skip:
        print(f"arm64 run: deselected {node}: {reason}")
    if platform.machine() != "aarch64":
        print("arm64 run: this interpreter is not aarch64; refusing to report an x86 run as an arm64 one")
        return 2
    start = time.monotonic()
    code = pytest.main([*args, *(f"--deselect={node}" for node, _ in skip)])
    print(f"arm64 run: tests took {time.monotonic() - start:.0f} s on platform.machine()={platform.machine()}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
