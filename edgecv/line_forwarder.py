"""A thread that passes on, filtered, the lines written into a file that stands in for a descriptor.

Native libraries write to descriptors 1 and 2 behind Python's back. Pointing a
descriptor at an unlinked temporary file (never a pipe: a library writing
megabytes with the GIL held would block on a full pipe whose reader needs the
GIL) and reading what is appended every 20 ms with ``pread`` lets edgecv drop
known noise and pass every other line on, in order. Used by the ``edgecv``
command (:mod:`edgecv.cli.streams`) and by conversions
(:mod:`converters._native_logs`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

__all__ = ["LineForwarder"]


class LineForwarder(threading.Thread):
    """Copies the lines appended to the file *source_fd* to *out_fd*, those for which *keep(line)* is true.

    ``keep`` gets each line without its newline (and trailing carriage return). Call :meth:`stop`, restore
    the descriptors, then :meth:`drain` for the rest (a last line without newline too).
    """

    def __init__(self, source_fd: int, out_fd: int, keep: Callable[[bytes], bool], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.source_fd, self.out_fd, self.keep = source_fd, out_fd, keep
        self.offset = 0
        self.pending = b""
        self.done = threading.Event()

    def pass_on(self) -> None:
        """Forward every complete line appended since the last call."""
        while True:
            chunk = os.pread(self.source_fd, 1 << 16, self.offset)
            if not chunk:
                return
            self.offset += len(chunk)
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            self._write(b"".join(line + b"\n" for line in lines if self.keep(line.rstrip(b"\r"))))

    def _write(self, data: bytes) -> None:
        if data:
            with contextlib.suppress(OSError):  # stderr closed or a broken pipe: the lines are dropped, not raised
                os.write(self.out_fd, data)

    def poll(self) -> None:
        """What the thread does every 20 ms (subclasses add to it)."""
        self.pass_on()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.poll()

    def stop(self) -> None:
        """Stop the thread."""
        self.done.set()
        self.join()

    def drain(self) -> None:
        """Pass on what is left, a last line without its newline too (after :meth:`stop`)."""
        self.pass_on()
        if self.pending and self.keep(self.pending.rstrip(b"\r")):
            self._write(self.pending)
        self.pending = b""
