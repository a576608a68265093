"""Atomic file output: every file edgecv writes goes through here.

Content is written to a hidden temporary file in the destination folder,
flushed and fsynced, then renamed over the destination in one step. A crash,
a kill or an exception at any point leaves either the old file or no file,
never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

__all__ = ["atomic_write", "atomic_path"]


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
            writable, it exists and ``overwrite`` is False, or nothing was
            written (unless ``allow_empty``).
    """
    dest = _prepare(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists() or (tmp.stat().st_size == 0 and not allow_empty):
            raise ConfigError(f"nothing was written for {dest}; the writer produced an empty file")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if not overwrite and dest.exists():
            raise ConfigError(f"{dest} appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, dest)
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
        tmp.write_bytes(payload)
    return Path(path)
