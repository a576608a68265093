"""``edgecv doctor``: what this host can run (runtimes, accelerators, board) and the matching target."""

from __future__ import annotations

import argparse

from .common import EXIT_OK

NAME = "doctor"
HELP = "report the runtimes, accelerators and board of this host"
DESCRIPTION = """Report what this host can run: installed runtimes and their versions
(ai-edge-litert, tflite-runtime and the numpy it needs, onnxruntime and its
providers, tensorflow), Edge TPU devices and libedgetpu, the board model,
CPU governor and temperature, and the target profile that matches. Never fails."""
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
    print(report.to_json() if args.json else report.to_text())
    return EXIT_OK
