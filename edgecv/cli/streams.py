"""The ``edgecv`` process's own stdout and stderr: results only on stdout, native noise kept off stderr.

Native libraries write to file descriptors 1 and 2 behind Python's back:
TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate", libjpeg's
"Corrupt JPEG data", ffmpeg's "[mjpeg @ 0x...]" and OpenCV's "[ WARN:0@...]"
camera lines, and Python libraries print to ``sys.stdout`` (ONNX Runtime's
"EP Error" banner when a provider fails), which breaks ``--json`` consumers.
While a command runs, :func:`command_streams`:

- points descriptors 1 and 2 at a temporary file that a thread forwards to the
  real stderr every 20 ms, dropping the known native notices (all of them
  pass with ``-v``);
- makes ``sys.stdout`` write to the real stdout only for edgecv's own code
  (results, JSON); anything another package prints goes to stderr;
- makes ``sys.stderr`` the real stderr, so edgecv's messages and progress
  reach the terminal at once.

Only the ``edgecv`` command does this (the runtime library never takes over an
application's descriptors), and only when both streams have descriptors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from ..line_forwarder import LineForwarder

__all__ = ["NATIVE_NOTICES", "native_notice", "command_streams"]

#: Size (bytes) of the file that catches descriptors 1 and 2 at which it is swapped for a fresh one.
ROTATE_AT_BYTES = 1 << 20

#: Lines native libraries write that edgecv's commands drop (they pass with -v).
NATIVE_NOTICES = (
    re.compile(rb"^INFO: "),                                          # TFLite's logger (XNNPACK delegate)
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(rb"^(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|Warning: unknown JFIF)"),
    re.compile(rb"^libpng warning: "),
    re.compile(rb"^\[[\w:.-]+ @ 0x[0-9a-fA-F]+\] "),                  # ffmpeg: [mjpeg @ 0x55d0...] ...
    re.compile(rb"^\[ ?(WARN|INFO|DEBUG|ERROR)(:\d+)?(@[\d.]+)?\] global "),  # OpenCV: [ WARN:0@0.012] global ...
)


def native_notice(line: bytes) -> bool:
    """Whether *line* (without its newline) is one of :data:`NATIVE_NOTICES`."""
    return any(p.match(line) for p in NATIVE_NOTICES)


class _Forwarder(LineForwarder):
    """The command's forwarder: drops the native notices and swaps its file for a fresh one every
    :data:`ROTATE_AT_BYTES`."""

    def __init__(self, source_fd: int, out_fd: int, keep_all: bool) -> None:
        super().__init__(source_fd, out_fd, lambda line: keep_all or not native_notice(line), "edgecv-native-streams")

    def _rotate(self) -> None:
        """Point descriptors 1 and 2 at a fresh file and drain the old one, so a days-long stream uses bounded disk.

        ``dup2`` swaps each descriptor in one step: a native write goes wholly to the old file or to the new one.
        """
        try:
            fresh = _unlinked_temporary()
        except OSError:             # no room for a new file: keep the old one
            return
        os.dup2(fresh, 1)
        os.dup2(fresh, 2)
        self.pass_on()
        os.close(self.source_fd)
        self.source_fd, self.offset = fresh, 0

    def poll(self) -> None:
        self.pass_on()
        if self.offset >= ROTATE_AT_BYTES:
            self._rotate()

    def finish(self) -> None:
        """Pass on what is left and close the file (after :meth:`stop` and the restore of descriptors 1 and 2)."""
        self.drain()
        os.close(self.source_fd)


class _FdWriter(io.TextIOBase):
    """Unbuffered text output to a descriptor: every write goes out whole at once (nothing left to flush later)."""

    def __init__(self, fd: int, encoding: str, errors: str) -> None:
        super().__init__()
        self.fd, self._encoding, self._errors = fd, encoding, errors

    def write(self, text: str) -> int:
        data = text.encode(self._encoding, self._errors)
        while data:
            data = data[os.write(self.fd, data):]
        return len(text)

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def fileno(self) -> int:
        return self.fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


class _ResultsStdout(io.TextIOBase):
    """``sys.stdout`` during a command: edgecv's writes go to *results*, every other package's to *other*."""

    def __init__(self, results: _FdWriter, other: _FdWriter) -> None:
        super().__init__()
        self.results, self.other = results, other

    def _target(self) -> _FdWriter:
        frame = sys._getframe(2)       # the caller of write(): print() adds no Python frame
        name = frame.f_globals.get("__name__", "") if frame is not None else ""
        return self.results if name == "edgecv" or name.startswith("edgecv.") else self.other

    def write(self, text: str) -> int:
        return self._target().write(text)

    def isatty(self) -> bool:
        return self.results.isatty()

    def fileno(self) -> int:
        return self.results.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.results.encoding


def _unlinked_temporary() -> int:
    """A descriptor of a new temporary file that has no name (it goes when closed, even after a kill)."""
    fd, name = tempfile.mkstemp(prefix="edgecv-native-")
    os.unlink(name)
    return fd


def _report_crashes_to(fd: int) -> bool:
    """Send Python's report of a fatal signal (SIGSEGV, SIGABRT, ...) to the real stderr; whether it was off before.

    Without it a native crash while descriptor 2 points at the temporary file would end the process with its
    last words unread.
    """
    import faulthandler

    was_enabled = faulthandler.is_enabled()
    faulthandler.enable(file=fd, all_threads=False)
    return was_enabled


def _restore_crash_report(was_enabled: bool) -> None:
    import faulthandler

    if was_enabled:
        faulthandler.enable(file=sys.stderr, all_threads=False)
    else:
        faulthandler.disable()


def _descriptors_usable() -> bool:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2 and hasattr(os, "pread")
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def command_streams(*, keep_native: bool = False) -> Iterator[None]:
    """Run a command with results alone on stdout and the native notices off stderr (see the module docstring).

    Args:
        keep_native: pass the native notices on too (``edgecv -v``).
    """
    if not _descriptors_usable():
        yield
        return
    results_fd, err_fd = os.dup(1), os.dup(2)
    try:
        source = _unlinked_temporary()
    except OSError:                 # no writable temporary folder (a read-only container): streams as they are
        os.close(results_fd)
        os.close(err_fd)
        yield
        return
    forwarder = _Forwarder(source, err_fd, keep_native)
    saved = sys.stdout, sys.stderr
    err = _FdWriter(err_fd, saved[1].encoding or "utf-8", "backslashreplace")
    results = _FdWriter(results_fd, saved[0].encoding or "utf-8", "strict")
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream is saved[1]]
    os.dup2(source, 1)
    os.dup2(source, 2)
    forwarder.start()
    crash_report = _report_crashes_to(err_fd)
    sys.stdout, sys.stderr = _ResultsStdout(results, err), err
    for handler in handlers:
        handler.setStream(err)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(saved[1])
        sys.stdout, sys.stderr = saved
        _restore_crash_report(crash_report)
        forwarder.stop()
        os.dup2(results_fd, 1)
        os.dup2(err_fd, 2)
        forwarder.finish()
        for fd in (results_fd, err_fd):
            os.close(fd)
