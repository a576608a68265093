"""``edgecv targets``, ``edgecv check`` and ``edgecv doctor``: the target profiles, pre-flight checks, host report."""

from __future__ import annotations

import argparse
import json
import sys


class TargetsCommand:
    DESCRIPTION = """List the hardware target profiles: device, runtime, delegate or providers,
preferred formats and precisions, threads and constraints."""
    EPILOG = """examples:
  edgecv targets
  edgecv targets coral-usb --json"""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", nargs="?", help="show one target in full")
        parser.add_argument("--json", action="store_true", help="print JSON")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        import targets

        chosen = [targets.get(args.name)] if args.name else targets.all()
        if args.json:
            data = [t.to_dict() for t in chosen]
            print(json.dumps(data[0] if args.name else data, indent=2))
            return 0
        if args.name:
            for key, value in chosen[0].to_dict().items():
                print(f"{key:<16} {value}")
            return 0
        print(f"{'target':<15} {'runtime':<12} {'accelerator':<26} {'formats':<12} {'precisions':<24} {'threads':>7}")
        for t in chosen:
            accel = t.delegate or (",".join(p.replace("ExecutionProvider", "") for p in t.onnx_providers)
                                   if t.runtime == "onnxruntime" else "-")
            print(f"{t.name:<15} {t.runtime:<12} {accel:<26} {','.join(t.formats):<12} {','.join(t.precisions):<24} "
                  f"{t.default_threads if t.default_threads is not None else 'all':>7}")
        return 0


class CheckCommand:
    DESCRIPTION = """Pre-flight check: read a .tflite or .onnx graph and list what will not run
(errors) or will run slowly (warnings) on a target, before anyone flashes a device.

Exit status: 0 the model runs there (warnings allowed unless --strict),
1 errors found (or warnings with --strict), 2 usage, 3 unreadable model."""
    EPILOG = """examples:
  edgecv check model_int8.tflite --target coral-usb
  edgecv check model.onnx --target jetson-orin --json > check.json"""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", help="a .tflite or .onnx model")
        parser.add_argument("--target", required=True, action="append",
                            help="target name (repeat to check several)")
        parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
        parser.add_argument("--strict", action="store_true", help="fail on warnings too")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        import targets

        reports = [targets.check(args.model, name) for name in args.target]
        if args.json:
            data = [r.to_dict() for r in reports]
            print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
        else:
            print("\n\n".join(r.to_text() for r in reports))
        failed = any(r.errors or (args.strict and r.warnings) for r in reports)
        return 1 if failed else 0


class DoctorCommand:
    DESCRIPTION = """Report what this host can run: installed runtimes and their versions
(ai-edge-litert, tflite-runtime and the numpy it needs, onnxruntime and its
providers, tensorflow), Edge TPU devices and libedgetpu, the board model,
CPU governor and temperature, and the target profile that matches. Never fails."""
    EPILOG = """examples:
  edgecv doctor
  edgecv doctor --json"""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        import targets

        report = targets.detect()
        print(report.to_json() if args.json else report.to_text())
        return 0


def main_for(command: type) -> None:  # pragma: no cover - convenience for python -m
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    sys.exit(command.run(parser.parse_args()))
