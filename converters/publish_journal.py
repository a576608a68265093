"""The journal a publish keeps in its staging folder, so a killed publish is rolled back by the next conversion.

``publish`` moves several files into the output folder; a SIGKILL between two
moves leaves part of a new artifact set published and nothing to remove it.
Before the first move it writes ``publish-journal.json`` into its staging
folder: every file it is about to add (not replace), with size and SHA-256.
When the next conversion into the folder finds that staging folder of a killed
process (:func:`converters.staging.remove_stale_stages`), it first removes
those files (only the ones still holding exactly what the killed publish
wrote), then the staging folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from edgecv.atomic import atomic_write
from edgecv.hashing import sha256_file

__all__ = ["JOURNAL_NAME", "write_journal", "roll_back_journal"]

log = logging.getLogger("edgecv.converters")

JOURNAL_NAME = "publish-journal.json"


def write_journal(stage: Path, added: Sequence[tuple[Path, int, str]]) -> None:
    """Record the files a publish is about to add: ``(destination, size in bytes, sha256 hex)``."""
    entries = [{"path": str(path), "size": int(size), "sha256": digest} for path, size, digest in added]
    atomic_write(stage / JOURNAL_NAME, json.dumps(entries))


def roll_back_journal(stage: Path) -> list[Path]:
    """Remove the files a killed publish added (as its journal in *stage* lists them); return those removed.

    A listed file is removed only while its size and SHA-256 are what the killed publish wrote, so
    anything written there since is kept. A missing or unreadable journal removes nothing.
    """
    try:
        entries = json.loads((stage / JOURNAL_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    removed = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            path = Path(entry["path"])
            if path.is_file() and path.stat().st_size == int(entry["size"]) and sha256_file(path) == entry["sha256"]:
                path.unlink()
                removed.append(path)
                log.info("removed %s, published by a conversion that was killed before it finished", path)
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return removed
