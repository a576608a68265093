"""Honour TF_CPP_MIN_LOG_LEVEL for the lines TensorFlow's C++ writes straight to stderr.

TensorFlow 2.16+ logs through absl, and whatever it logs before
``absl::InitializeLog()`` (the oneDNN and CUDA notices at import, converter
diagnostics) goes to file descriptor 2 whatever ``TF_CPP_MIN_LOG_LEVEL`` says;
the TFLite converter prints its quantizer settings and the TFLite runtime its
XNNPACK notice the same way. :func:`native_logs_filtered` points descriptor 2
at a temporary file while a block runs, and a thread forwards each new line to
the real stderr as it appears (every 20 ms while the block runs, the rest when
it ends), except the informational lines of those known forms when the level
hides them (``TF_CPP_MIN_LOG_LEVEL`` >= 1; absl warnings from 2, errors from
3). Nothing else is dropped or reordered. A file, not a pipe: a writer never
blocks, even when native code holds the GIL the forwarder needs while it logs
more than a pipe holds (MLIR error dumps). When the process dies inside the
block, what the forwarder had not yet passed on (at most the last 20 ms, or
what was written while native code held the GIL) is lost with the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

from edgecv.line_forwarder import LineForwarder

__all__ = ["native_logs_filtered", "hidden_line"]

# absl's prefix: severity letter, MMDD, time, thread id, file:line]
_ABSL = re.compile(rb"^([IWE])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_LEVEL = {b"I": 1, b"W": 2, b"E": 3}
_INFO_LINES = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(rb"^INFO: "),                               # TFLite's own logger (e.g. the XNNPACK delegate)
    re.compile(rb"^fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, "
               rb"output_inference_type: \w+$"),           # the TFLite converter's quantizer settings
)
_LOCK = threading.Lock()


def _level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def hidden_line(line: bytes, level: int) -> bool:
    """True when *line* (without its newline) is a native log line that log level *level* hides."""
    match = _ABSL.match(line)
    if match:
        return level >= _ABSL_LEVEL[match.group(1)]
    return level >= 1 and any(p.match(line) for p in _INFO_LINES)


class _Forwarder(LineForwarder):
    """Passes on the native lines that the log level does not hide."""

    def __init__(self, source_fd: int, out_fd: int, level: int) -> None:
        super().__init__(source_fd, out_fd, lambda line: not hidden_line(line, level), "edgecv-native-logs")

    def finish(self) -> None:
        """Stop polling, pass on the rest (a last line without newline too)."""
        self.stop()
        self.drain()


def _flush_python_stderr() -> None:
    """Write out what Python buffered for stderr, so it lands on the descriptor it was written for."""
    with contextlib.suppress(OSError, ValueError, AttributeError):   # (closed, or sys.stderr is None)
        sys.stderr.flush()


def _redirect(level: int) -> tuple[int, int, _Forwarder] | None:
    """Point descriptor 2 at a temporary file; ``(saved stderr, file, forwarder)``, None when impossible."""
    if not hasattr(os, "pread"):
        return None
    _flush_python_stderr()
    try:
        saved = os.dup(2)
    except OSError:
        return None                              # no stderr descriptor: nothing to filter
    try:
        source, name = tempfile.mkstemp(prefix="edgecv-native-log-")
        os.unlink(name)
    except OSError:
        os.close(saved)
        return None
    forwarder = _Forwarder(source, saved, level)
    os.dup2(source, 2)
    forwarder.start()
    return saved, source, forwarder


def _restore(saved: int, source: int, forwarder: _Forwarder) -> None:
    _flush_python_stderr()
    os.dup2(saved, 2)
    forwarder.finish()
    os.close(source)
    os.close(saved)


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Run a block with native stderr lines filtered by ``TF_CPP_MIN_LOG_LEVEL`` (see the module docstring).

    A pass-through when the level shows everything (0), when stderr has no file
    descriptor, without ``os.pread`` (Windows), or when another thread is inside
    such a block (descriptor 2 is the process's, so only one block redirects it at a time).
    """
    level = _level()
    if level < 1 or not _LOCK.acquire(blocking=False):
        yield
        return
    try:
        redirected = _redirect(level)
        try:
            yield
        finally:
            if redirected is not None:
                _restore(*redirected)
    finally:
        _LOCK.release()
