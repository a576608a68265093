"""Honour TF_CPP_MIN_LOG_LEVEL for the lines TensorFlow's C++ writes straight to stderr.

TensorFlow 2.16+ logs through absl, and whatever it logs before
``absl::InitializeLog()`` (the oneDNN and CUDA notices at import, converter
diagnostics) goes to file descriptor 2 whatever ``TF_CPP_MIN_LOG_LEVEL`` says;
the TFLite converter prints its quantizer settings and the TFLite runtime its
XNNPACK notice the same way. :func:`native_logs_filtered` routes descriptor 2
through a pipe while a block runs and a thread forwards every line at once,
except the informational lines of those known forms when the level hides them
(``TF_CPP_MIN_LOG_LEVEL`` >= 1; absl warnings from 2, errors from 3). Nothing
else is held back or reordered: what the block writes reaches stderr as it is
written, so when the process crashes inside the block its messages are
normally out already (a line written in the last instant before the process
dies can be lost with the pipe).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

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


def _forward(read_fd: int, out_fd: int, level: int) -> None:
    """Copy lines from *read_fd* to *out_fd* until end of file, dropping the hidden ones; closes both."""
    pending = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe, os.fdopen(out_fd, "wb", buffering=0) as out:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not hidden_line(line.rstrip(b"\r"), level))
            if kept:
                out.write(kept)
        if pending and not hidden_line(pending, level):
            out.write(pending)


def _redirect(level: int) -> tuple[int, threading.Thread] | None:
    """Point descriptor 2 at a pipe read by a forwarding thread; ``(saved stderr, thread)``, None if impossible."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        saved = os.dup(2)
    except OSError:
        return None                              # no stderr descriptor: nothing to filter
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        os.close(saved)
        return None
    # the forwarder writes to (and closes) its own copy of the real stderr, so it may outlive the block
    forwarder = threading.Thread(target=_forward, args=(read_fd, os.dup(saved), level), daemon=True,
                                 name="edgecv-native-logs")
    forwarder.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    return saved, forwarder


def _restore(saved: int, forwarder: threading.Thread) -> None:
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os.dup2(saved, 2)                            # closes the pipe's last write end: the forwarder sees EOF
    os.close(saved)
    forwarder.join(timeout=5.0)                  # (a child process still holding the pipe keeps it open)


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Run a block with native stderr lines filtered by ``TF_CPP_MIN_LOG_LEVEL`` (see the module docstring).

    A pass-through when the level shows everything (0), when stderr has no file
    descriptor, or when another thread is inside such a block (descriptor 2 is the
    process's, so only one block redirects it at a time).
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
