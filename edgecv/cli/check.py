"""``edgecv check``: pre-flight check of a model against one or more targets."""

from __future__ import annotations

import argparse

from .common import EXIT_NEGATIVE, EXIT_OK, print_json

NAME = "check"
HELP = "pre-flight check of a model against a target"
DESCRIPTION = """Pre-flight check: read a .tflite or .onnx graph and list what will not run
(errors) or will run slowly (warnings) on a target, before anyone flashes a device.

Exit status: 0 the model runs there (warnings allowed unless --strict),
1 errors found (or warnings with --strict), 2 usage, 3 unreadable model."""
EPILOG = """examples:
  edgecv check model_int8.tflite --target coral-usb
  edgecv check model.onnx --target jetson-orin --json > check.json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv check`` arguments to *parser*."""
    parser.add_argument("model", help="a .tflite or .onnx model")
    parser.add_argument("--target", required=True, action="append",
                        help="target name (repeat to check several)")
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")


def run(args: argparse.Namespace) -> int:
    """Print the check report(s); 1 when a target has errors (or warnings with ``--strict``), else 0.

    Raises:
        UnknownTargetError: a ``--target`` that is not a target.
        ModelLoadError: the model cannot be read.
    """
    import targets

    reports = [targets.check(args.model, name) for name in args.target]
    if args.json:
        data = [r.to_dict() for r in reports]
        print_json(data[0] if len(data) == 1 else data)
    else:
        print("\n\n".join(r.to_text() for r in reports))
    failed = any(r.errors or (args.strict and r.warnings) for r in reports)
    return EXIT_NEGATIVE if failed else EXIT_OK
