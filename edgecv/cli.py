"""The ``edgecv`` command line.

Results go to stdout (``--json`` where offered), logs to stderr. Exit codes:

    0  success
    1  the command ran and its verdict is negative (check found errors,
       benchmark regression against a baseline)
    2  usage error (bad arguments), with a suggestion for typos
    3  edgecv error (bad model, missing runtime, failed conversion, ...),
       reported as one line
  130  interrupted
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from ._version import __version__
from .errors import EdgeCVError, did_you_mean

EXIT_OK, EXIT_NEGATIVE, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("edgecv")


class _Parser(argparse.ArgumentParser):
    """argparse with typo suggestions for sub-commands and choices."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice:" in message:
            try:
                bad = message.split("invalid choice:", 1)[1].split("'")[1]
                choices = message.split("choose from", 1)[1]
                names = [c.strip(" '()\"") for c in choices.replace(",", " ").split()]
                message += did_you_mean(bad, [n for n in names if n])
            except IndexError:
                pass
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# name -> (help, module path of a module with add_arguments(parser) and run(args) -> int)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("quantize and export a model for a target, validate every artifact", "edgecv.cli_convert"),
    "run": ("run a model on an image, folder, video file or camera", "edgecv.cli_run"),
    "bench": ("benchmark models on this machine (latency, FPS, memory; compare, sweep, baseline gate)",
              "edgecv.bench_cli"),
    "targets": ("list the hardware target profiles", "edgecv.cli_tools:TargetsCommand"),
    "check": ("pre-flight check of a model against a target", "edgecv.cli_tools:CheckCommand"),
    "doctor": ("report the runtimes, accelerators and board of this host", "edgecv.cli_tools:DoctorCommand"),
    "demo": ("run the built-in end-to-end demo (train, convert, validate, benchmark, report)", "edgecv.demo"),
}


def _register(sub: argparse._SubParsersAction, name: str, help_text: str, module: str) -> None:
    import importlib

    module_name, _, attr = module.partition(":")
    mod = importlib.import_module(module_name)
    if attr:
        mod = getattr(mod, attr)
    parser = sub.add_parser(name, help=help_text, description=getattr(mod, "DESCRIPTION", help_text),
                            epilog=getattr(mod, "EPILOG", None),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(parser)
    parser.set_defaults(_run=mod.run)
    if getattr(mod, "EPILOG", None) is None:
        raise RuntimeError(f"command {name} lacks an example epilog")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgecv", description="Take trained vision models to edge devices.",
                     epilog="Run 'edgecv COMMAND --help' for the options and an example of each command.\n"
                            "Exit codes: 0 ok, 1 negative verdict (check errors, regression), 2 usage, "
                            "3 edgecv error, 130 interrupted.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgecv {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, module) in COMMANDS.items():
        _register(sub, name, help_text, module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgecv`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return int(run(args) or 0)
    except EdgeCVError as exc:
        print(f"edgecv {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgecv: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
