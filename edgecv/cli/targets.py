"""``edgecv targets``: list the hardware target profiles, or show one in full."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, print_json

NAME = "targets"
HELP = "list the hardware target profiles"
DESCRIPTION = """List the hardware target profiles: device, runtime, delegate or providers,
preferred formats and precisions, threads and constraints."""
EPILOG = """examples:
  edgecv targets
  edgecv targets coral-usb --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv targets`` arguments to *parser*."""
    parser.add_argument("name", nargs="?", help="show one target in full")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Print the table of targets (or one target, or JSON); always 0.

    Raises:
        UnknownTargetError: *name* is not a target (with close matches).
    """
    import targets

    chosen = [targets.get(args.name)] if args.name else targets.all()
    if args.json:
        data = [t.to_dict() for t in chosen]
        print_json(data[0] if args.name else data)
        return EXIT_OK
    if args.name:
        for key, value in chosen[0].to_dict().items():
            print(f"{key:<16} {value}")
        return EXIT_OK
    print(f"{'target':<15} {'runtime':<12} {'accelerator':<26} {'formats':<12} {'precisions':<24} {'threads':>7}")
    for t in chosen:
        accel = t.delegate or (",".join(p.replace("ExecutionProvider", "") for p in t.onnx_providers)
                               if t.runtime == "onnxruntime" else "-")
        print(f"{t.name:<15} {t.runtime:<12} {accel:<26} {','.join(t.formats):<12} {','.join(t.precisions):<24} "
              f"{t.default_threads if t.default_threads is not None else 'all':>7}")
    return EXIT_OK
