"""SHA-256 of files and folders: the one place edgecv hashes what lies on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["sha256_file", "sha256_tree", "update_with_file"]

CHUNK_BYTES = 1 << 20


def update_with_file(digest: Any, path: str | os.PathLike) -> Any:
    """Feed the bytes of *path* into *digest* (a hashlib object) in 1 MiB chunks; returns *digest*.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of one file.

    Raises:
        OSError: the file cannot be read (callers translate it into their own error).
    """
    return update_with_file(hashlib.sha256(), path).hexdigest()


def sha256_tree(folder: str | os.PathLike) -> str:
    """Hex SHA-256 of a folder: every file's relative path and bytes, in sorted path order.

    Raises:
        OSError: a file cannot be read.
    """
    root = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0")
        update_with_file(digest, path)
    return digest.hexdigest()
