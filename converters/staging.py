"""The hidden staging folder a conversion builds into, and removing those of conversions that were killed.

A conversion stages into ``<output_dir>/.edgecv-convert-<host tag>-<pid>-<random>``
and moves finished files out of it; a kill (SIGKILL, power loss) cannot clean
up, so the next conversion into the same folder removes staging folders whose
process is gone on this host (POSIX only).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgecv.atomic import host_tag, process_alive
from edgecv.errors import ConfigError

from .publish_journal import roll_back_journal

__all__ = ["STAGE_PREFIX", "host_tag", "process_alive", "remove_stale_stages", "staging_folder"]

log = logging.getLogger("edgecv.converters")

STAGE_PREFIX = ".edgecv-convert-"


def remove_stale_stages(out: Path) -> list[Path]:
    """Remove the staging folders in *out* of conversions killed on this host; returns those removed.

    A folder is removed only when it names this host (see :func:`host_tag`) and its process is
    gone, so a conversion still running, on this host or on another one sharing the folder, is
    never touched (a reused process id keeps a folder until later). POSIX only: elsewhere a
    process cannot be probed without side effects.
    """
    if os.name != "posix":
        return []
    host, removed = host_tag(), []
    for entry in out.glob(STAGE_PREFIX + "*"):
        fields = entry.name[len(STAGE_PREFIX):].split("-")
        if (len(fields) < 3 or fields[0] != host or not fields[1].isdigit() or entry.is_symlink()
                or not entry.is_dir()):
            continue
        pid = int(fields[1])
        if pid == os.getpid() or process_alive(pid):
            continue
        roll_back_journal(entry)                 # files a publish killed half-way had added
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            log.info("removed %s, left by a conversion that was killed", entry)
            removed.append(entry)
    return removed


@contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A new hidden staging folder in *out* (after removing those of killed conversions), removed on exit.

    Raises:
        ConfigError: *out* is not writable.
    """
    remove_stale_stages(out)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{host_tag()}-{os.getpid()}-", dir=out))
    except OSError as exc:
        raise ConfigError(f"output folder {out} is not writable ({exc.strerror or exc}); choose another "
                          "output_dir") from exc
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
