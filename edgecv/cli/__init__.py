"""The ``edgecv`` command line: one module per command, dispatched through plain imports.

Each command module has ``NAME``, ``HELP``, ``DESCRIPTION``, ``EPILOG`` (with an
example), ``add_arguments(parser)`` and ``run(args) -> int``. Results go to
stdout (``--json`` where offered), logs to stderr. Exit codes:

    0  success
    1  the command ran and its verdict is negative (check found errors,
       benchmark regression against a baseline)
    2  usage error (bad arguments), with a suggestion for typos
    3  edgecv error (bad model, missing runtime, failed conversion, ...),
       reported as one line
  130  interrupted (Ctrl-C, from the first moment the command starts)
  141  stdout was closed early (``edgecv run --json | head``): the rest is dropped quietly

This package is the only part of :mod:`edgecv` that may import :mod:`converters`
(the workstation side), and only inside the commands that convert (``convert``,
``demo``), so ``edgecv --help`` and ``edgecv run`` never load TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from .._version import __version__
from ..errors import EdgeCVError
from . import _startup, annotate, bench, check, convert, demo, describe, doctor, run, targets  # _startup first
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NEGATIVE,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_USAGE,
    CommandParser,
    error_line,
)
from .streams import command_streams

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_NEGATIVE", "EXIT_USAGE", "EXIT_ERROR",
           "EXIT_INTERRUPTED", "EXIT_PIPE_CLOSED"]

# the commands in the order ``edgecv --help`` lists them, by name
COMMANDS: dict[str, ModuleType] = {command.NAME: command for command in
                                   (convert, run, describe, annotate, bench, targets, check, doctor, demo)}


def _add_command(sub: argparse._SubParsersAction, command: ModuleType) -> None:
    parser = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION,
                            epilog=command.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_arguments(parser)
    parser.set_defaults(_run=command.run)


def build_parser() -> argparse.ArgumentParser:
    """The ``edgecv`` parser with one sub-parser per command in :data:`COMMANDS`."""
    parser = CommandParser(prog="edgecv", description="Take trained vision models to edge devices.",
                           epilog="Run 'edgecv COMMAND --help' for the options and an example of each command.\n"
                                  "Exit codes: 0 ok, 1 negative verdict (check errors, regression), 2 usage, "
                                  "3 edgecv error, 130 interrupted, 141 output closed early.",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgecv {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for command in COMMANDS.values():
        _add_command(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgecv`` console script; returns the exit code.

    Ctrl-C at any point ends with one line and :data:`EXIT_INTERRUPTED`; a reader that closes stdout
    early (``| head``) ends it quietly with :data:`EXIT_PIPE_CLOSED`.

    Raises:
        SystemExit: on ``--help``, ``--version`` (code 0) and usage errors (code 2), as argparse does.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("edgecv: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE_CLOSED
    except Exception as exc:
        if not _caused_by_interrupt(exc):
            raise
        print("edgecv: interrupted", file=sys.stderr)  # e.g. numpy turns Ctrl-C during its import into ImportError
        return EXIT_INTERRUPTED


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 20:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


_NUMPY_COMMANDS = ("run", "bench", "check", "convert", "demo")


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is left cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if _startup.starting() and args.command in _NUMPY_COMMANDS:
        import numpy  # noqa: F401 - numpy turns Ctrl-C during its import into a bare ImportError
    _startup.end()  # from here Ctrl-C is a KeyboardInterrupt, so commands clean up
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    run_command: Callable[[argparse.Namespace], int] = args._run
    streams = command_streams(keep_native=args.verbose > 0) if _startup.IS_COMMAND else contextlib.nullcontext()
    try:
        with streams:
            code = int(run_command(args) or 0)
    except EdgeCVError as exc:
        print(error_line(args.command, exc), file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.flush()  # a closed pipe shows here, inside main, not in the interpreter's exit
    return code
