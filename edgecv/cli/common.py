"""What every ``edgecv`` command shares: exit codes, the parser class, argument types, output helpers.

Exit codes:

    0  success
    1  the command ran and its verdict is negative (check found errors,
       benchmark regression against a baseline, no artifact to ship)
    2  usage error (bad arguments), with a suggestion for typos
    3  edgecv error (bad model, missing runtime, failed conversion, ...),
       reported as one line
  130  interrupted
  141  stdout closed early by its reader (``| head``)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..errors import BackendNotAvailable, did_you_mean
from ..task_registry import TASKS as REGISTERED_TASKS

__all__ = ["EXIT_OK", "EXIT_NEGATIVE", "EXIT_USAGE", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PIPE_CLOSED", "TASKS", "CommandParser",
           "comma_floats", "accuracy_points", "positive_int", "thread_count", "non_negative_int", "parse_threads", "parse_tolerance", "print_json", "error_line",
           "import_converters"]

EXIT_OK, EXIT_NEGATIVE, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away

TASKS = tuple(task.verb for task in REGISTERED_TASKS)  # the task verbs the commands accept


class CommandParser(argparse.ArgumentParser):
    """argparse with typo suggestions for sub-commands and choices, exiting with :data:`EXIT_USAGE`."""

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


# -- argument types (argparse ``type=``) --------------------------------------------------------------------------

def comma_floats(text: str) -> list[float]:
    """``"127.5"`` -> [127.5]; ``"123.7,116.3,103.5"`` -> three per-channel values.

    Raises:
        argparse.ArgumentTypeError: a part is not a number.
    """
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}") from exc


def accuracy_points(text: str) -> float:
    """An accuracy budget in percentage points: ``"1"``, ``"0.5pt"`` or ``"1%"`` -> 1.0 / 0.5 / 1.0.

    Raises:
        argparse.ArgumentTypeError: not a number.
    """
    try:
        return float(text.rstrip("%").rstrip("pt").strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected points, e.g. 1 or 0.5, got {text!r}") from exc


def positive_int(text: str) -> int:
    """``"4"`` -> 4: a whole number of at least 1 (``--threads``, ``--max-frames``, ``--queue-size``, ...).

    Raises:
        argparse.ArgumentTypeError: not a whole number, or below 1.
    """
    raw = str(text).strip()
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 12:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 999999999999, got {text!r}")
    return int(raw)


def thread_count(text: str) -> int:
    """``"4"`` -> 4: interpreter threads, 1 to :data:`edgecv.model.MAX_THREADS`.

    Raises:
        argparse.ArgumentTypeError: not a whole number in that range.
    """
    from ..model import MAX_THREADS

    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"--threads takes 1 to {MAX_THREADS}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """``"0"`` -> 0: a whole number of at least 0 (``--warmup``).

    Raises:
        argparse.ArgumentTypeError: not a whole number.
    """
    raw = str(text).strip()
    if not raw.isdigit() or len(raw) > 12:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 999999999999, got {text!r}")
    return int(raw)


def parse_threads(text: str) -> int | list[int]:
    """``"4"`` -> 4; ``"1,2,4"`` -> [1, 2, 4] (a sweep).

    Raises:
        argparse.ArgumentTypeError: not positive integers, or a value twice.
    """
    from ..model import MAX_THREADS

    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p.isdigit() or not 1 <= int(p) <= MAX_THREADS for p in parts):
        raise argparse.ArgumentTypeError(f"--threads takes positive integers separated by commas (e.g. 1,2,4), "
                                         f"got {text!r}")
    values = [int(p) for p in parts]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"--threads lists a value twice: {text!r}")
    return values[0] if len(values) == 1 else values


def parse_tolerance(text: str) -> float:
    """``"10%"`` -> 0.10; ``"0.1"`` -> 0.10. A bare number of 1 or more is refused (write 10% or 0.10).

    Raises:
        argparse.ArgumentTypeError: not a non-negative percentage or fraction.
    """
    raw = str(text).strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--tolerance takes a percentage like 10% or a fraction like 0.10, got {text!r}")
    if percent:
        return value / 100.0
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"--tolerance {text!r} is ambiguous: write {value:g}% for percent, "
                                         f"or a fraction below 1 (0.10 = 10%)")
    return value


# -- output ------------------------------------------------------------------------------------------------------

def print_json(data: Any, *, indent: int = 2, default: Callable[[Any], Any] | None = None) -> None:
    """Print *data* on stdout as strict JSON and nothing else (NaN/infinity as null, with a warning on stderr)."""
    from ..strict_json import dumps

    print(dumps(data, indent=indent, default=default), flush=True)


def error_line(command: str, exc: BaseException) -> str:
    """The one-line cause printed on stderr when *command* fails: the message with its whitespace collapsed."""
    return f"edgecv {command}: error: {' '.join(str(exc).split())}"


# -- the workstation side ----------------------------------------------------------------------------------------

def import_converters(why: str, *, tensorflow: bool = False) -> ModuleType:
    """Import :mod:`converters` (and TensorFlow when asked) with TensorFlow's log noise turned down.

    Args:
        why: the start of the error message, e.g. "converting needs the workstation extras".
        tensorflow: import TensorFlow now, so that a missing one fails before any work.

    Raises:
        BackendNotAvailable: the workstation extras are not installed; the message ends with *why*'s pip hint.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import converters

        if tensorflow:
            from converters._env import import_tensorflow

            import_tensorflow()
    except ImportError as exc:
        raise BackendNotAvailable(why) from exc
    return converters
