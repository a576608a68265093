"""A one-line progress display on stderr, shown only when stderr is a terminal.

Updates are throttled (ten a second at most) and written between timed
calls, never inside one. Nothing is written when stderr is a pipe or a file,
or when the caller turns progress off (``edgecv bench --json``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_INTERVAL_S = 0.1
_SHOW_AFTER_S = 0.5  # short runs finish before any line appears


class Progress:
    """Progress of one benchmark phase after another ("warm-up", "runs")."""

    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self.active = bool(enabled and isatty is not None and isatty())
        self._label = label
        self._started = time.monotonic()
        self._last = 0.0
        self._width = 0

    def update(self, phase: str, done: int, total: int | None, *, elapsed_s: float = 0.0,
               duration_s: float | None = None) -> None:
        """Show ``done`` of ``total`` calls (or elapsed of ``duration_s`` seconds) for *phase*."""
        if not self.active:
            return
        now = time.monotonic()
        if now - self._started < _SHOW_AFTER_S or now - self._last < _INTERVAL_S:
            return
        self._last = now
        if total is not None:
            part = f"{done}/{total} ({100.0 * done / total:.0f}%)" if total else f"{done}"
        else:
            part = f"{done} calls"
        if duration_s is not None:
            part += f", {elapsed_s:.1f}/{duration_s:.1f} s"
        self._write(f"edgecv bench {self._label}: {phase} {part}")

    def _write(self, text: str) -> None:
        pad = " " * max(0, self._width - len(text))
        self._stream.write("\r" + text + pad)
        self._stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Erase the line (if one was shown)."""
        if self.active and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
