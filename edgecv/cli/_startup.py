"""Ctrl-C while the ``edgecv`` command is still importing: one line and exit 130, never a traceback.

Imported first by :mod:`edgecv.cli`. Only when this process is the ``edgecv``
command (the console script, or ``python -m edgecv.cli``, whose ``argv[0]`` is
still ``"-m"`` while the package imports) does it install a SIGINT handler;
an application importing :mod:`edgecv.cli` keeps its own. :func:`edgecv.cli.main`
puts Python's handler back (via :func:`end`) once the imports a command needs are done.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["IS_COMMAND", "starting", "end"]

#: Whether this process is the edgecv command itself.
IS_COMMAND = os.path.basename(sys.argv[0] if sys.argv else "") in ("edgecv", "-m")


def _interrupted_while_starting(signum: int, frame: object) -> None:
    sys.stderr.write("edgecv: interrupted\n")
    os._exit(130)


def starting() -> bool:
    """Whether the start-up handler is still the one installed."""
    return signal.getsignal(signal.SIGINT) is _interrupted_while_starting


def end() -> None:
    """Give Ctrl-C back to Python (KeyboardInterrupt, so commands clean up) if the start-up handler is in place."""
    if starting():
        signal.signal(signal.SIGINT, signal.default_int_handler)


if IS_COMMAND and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
