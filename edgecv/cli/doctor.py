"""``edgecv doctor``: what this host can run (runtimes, accelerators, board) and the matching target."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK

NAME = "doctor"
HELP = "report the runtimes, accelerators and board of this host"
DESCRIPTION = """Report what this host can run: installed runtimes and their versions
(ai-edge-litert, tflite-runtime and the numpy it needs, onnxruntime and its
providers, tensorflow), Edge TPU devices and libedgetpu, the board model,
CPU governor and temperature, the target profile that matches, and where
onnx2tf is (TFLite from ONNX models; EDGECV_ONNX2TF, the repository's
.venv-onnx2tf or PATH). Never fails."""
EPILOG = """examples:
  edgecv doctor
  edgecv doctor --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv doctor`` arguments to *parser*."""
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Print the host report (text or JSON); always 0."""
    import targets

    report = targets.detect()
    tool = onnx2tf_status()
    if args.json:
        print(json.dumps({**json.loads(report.to_json()), "onnx2tf": tool}, indent=2))
    else:
        print(report.to_text())
        print(onnx2tf_line(tool))
    return EXIT_OK


def onnx2tf_status() -> dict[str, Any]:
    """Where onnx2tf is for ONNX -> TFLite conversions: ``{"found", "path", "version", "how", "hint"}``; never raises."""
    try:
        from converters.onnx_translate import INSTALL_HINT, find_onnx2tf
    except Exception as exc:  # a device install without the converters' packages
        return {"found": False, "path": None, "version": None, "how": None,
                "hint": f"not checked: the converters cannot be imported here ({type(exc).__name__})"}
    try:
        tool = find_onnx2tf()
    except Exception as exc:  # EDGECV_ONNX2TF names nothing usable: its message says what to do
        return {"found": False, "path": None, "version": None, "how": "EDGECV_ONNX2TF", "hint": str(exc)}
    if tool is None:
        return {"found": False, "path": None, "version": None, "how": None, "hint": INSTALL_HINT}
    return {"found": True, "path": str(tool.executable), "version": tool.version(), "how": tool.how, "hint": None}


def onnx2tf_line(status: dict[str, Any]) -> str:
    """One text line for :func:`onnx2tf_status`."""
    if status["found"]:
        return (f"onnx2tf (TFLite from ONNX): {status['path']} ({status['version'] or 'version unknown'}, "
                f"found via {status['how']})")
    return f"onnx2tf (TFLite from ONNX): not found; {status['hint']}"
