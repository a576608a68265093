"""Atomic file output: every file edgecv writes goes through here.

Content is written to a hidden temporary file in the destination folder,
flushed and fsynced, then renamed over the destination in one step. A crash,
a kill or an exception at any point leaves either the old file or no file,
never a partial one. The file gets the mode a plain ``open(path, "w")`` would
give it (0666 less the process umask: 0644 under umask 022), not the 0600 of
the temporary file, so a model copied to a device service account or a report
served by a web server stays readable. Temporary files a killed process left
behind are removed by :func:`remove_stale_temporaries`, which the first write of a
process into a folder runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

__all__ = ["atomic_write", "atomic_path", "file_mode", "remove_stale_temporaries", "host_tag", "process_alive"]


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it (``os.umask`` alone must set one)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permission bits of a new file under the current umask (0o644 under 0o022)."""
    return 0o666 & ~_umask()


_TEMP_NAME = re.compile(r"^\..+\.([A-Za-z0-9]+)-(\d+)-[A-Za-z0-9_]{8}\.tmp")  # .<name>.<host>-<pid>-<random>.tmp


def host_tag() -> str:
    """Whose process ids a temporary name holds: this host's name (letters and digits), on Linux its pid
    namespace and its boot id.

    Boards left at one default host name (``raspberrypi``) share the initial pid namespace's number, so the
    boot id (``/proc/sys/kernel/random/boot_id``, new at every boot) tells them apart: a writer never takes
    another machine's running write, sharing a network folder, for a killed one of its own.
    """
    import socket

    host = "".join(ch for ch in socket.gethostname() if ch.isalnum())[:32] or "host"
    tag = host
    try:
        tag += "n" + "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit())
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            tag += "b" + "".join(ch for ch in f.read() if ch.isalnum())[:12]
    except OSError:
        pass
    return tag


def process_alive(pid: int) -> bool:
    """Whether process *pid* runs on this host (POSIX; True when it cannot be told)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists under another user, or cannot tell: keep its file
    return True


def _temp_prefix(dest: Path) -> str:
    return f".{dest.name}.{host_tag()}-{os.getpid()}-"


def _is_stale(entry: os.DirEntry) -> bool:
    match = _TEMP_NAME.match(entry.name)
    # another host's or container's writer cannot be probed: its file stays
    return match is not None and os.name == "posix" and match.group(1) == host_tag() and \
        not process_alive(int(match.group(2)))


_SWEPT: set[str] = set()
_SWEPT_LOCK = threading.Lock()


def _sweep_once(folder: Path) -> None:
    """:func:`remove_stale_temporaries` the first time this process writes into *folder* (a killed writer's files
    are older than this process; sweeping once keeps writing thousands of frames into one folder linear)."""
    key = os.path.realpath(folder)
    with _SWEPT_LOCK:
        if key in _SWEPT:
            return
        _SWEPT.add(key)
    remove_stale_temporaries(folder)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the hidden temporary files that killed writers left in *folder*; return their paths.

    A temporary file is named ``.<name>.<host>-<pid>-<random>.tmp<suffix>``: it is stale when it names
    this host (and pid namespace) and process *pid* no longer exists; a write still running in another
    process, or on another host sharing the folder, keeps its file. Nothing else is touched, not even
    hidden files that look like an older edgecv's temporaries (a user's ``.notes.20261201.tmp`` looks just
    the same). Files that cannot be removed are left.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if entry.name.startswith(".") and entry.is_file(follow_symlinks=False) and _is_stale(entry):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _prepare(path: str | os.PathLike, overwrite: bool) -> Path:
    dest = Path(path)
    if dest.is_dir():
        raise ConfigError(f"cannot write {dest}: it is a directory; give a file name")
    if dest.exists() and not overwrite:
        raise ConfigError(f"{dest} already exists; pass overwrite=True (CLI: --force) to replace it")
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"cannot write {dest}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {dest}: folder {folder} is not writable; choose another output folder")
    return dest


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True, allow_empty: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to *path*; on success it replaces *path*.

    For tools that insist on writing by file name (onnx.save, cv2.VideoWriter,
    matplotlib). The temporary name keeps the destination's suffix so such
    tools pick the right format.

    Raises:
        ConfigError: destination is a directory, its folder is missing or not
            writable, it exists and ``overwrite`` is False, nothing was
            written (unless ``allow_empty``), or the system refused the write
            (full disk, read-only file system).
    """
    dest = _prepare(path, overwrite)
    _sweep_once(dest.parent if str(dest.parent) else Path("."))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(dest), suffix=".tmp" + dest.suffix, dir=dest.parent or ".")
    except OSError as exc:
        raise _cannot_write(dest, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists() or (tmp.stat().st_size == 0 and not allow_empty):
            raise ConfigError(f"nothing was written for {dest}; the writer produced an empty file")
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, file_mode())
            if not overwrite and dest.exists():
                raise ConfigError(f"{dest} appeared while writing; pass overwrite=True to replace it")
            os.replace(tmp, dest)
        except OSError as exc:
            raise _cannot_write(dest, exc) from exc
        _fsync_dir(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(path: str | os.PathLike, data: bytes | str, *, overwrite: bool = True) -> Path:
    """Write *data* (bytes, or str as UTF-8) to *path* atomically; return the path.

    Raises:
        ConfigError: see :func:`atomic_path`.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, overwrite=overwrite, allow_empty=True) as tmp:
        try:
            tmp.write_bytes(payload)
        except OSError as exc:   # a full disk, a quota, a file system turned read-only
            raise _cannot_write(Path(path), exc) from exc
    return Path(path)


def _cannot_write(dest: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot write {dest}: {exc.strerror or exc}; free some space or choose another folder")
