"""The output folder of a conversion: created (and removed again on failure), and published into all or nothing.

Nothing lands under a final name before every artifact is built, validated
and reported. Publishing moves each staged file into place atomically
(``edgecv.atomic``); if any move or the report write fails, the files this
call added are removed again (files it replaced with ``overwrite=True`` stay
replaced) and so are the folders it created. A publish that is killed cannot
clean up: the next conversion into the folder does, from the journal this
writes first (:mod:`converters.publish_journal`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from edgecv.atomic import atomic_path, atomic_write
from edgecv.errors import ConfigError
from edgecv.hashing import sha256_file

from .build import StagedArtifact
from .context import ConversionContext
from .conversion_report import Artifact, ConversionReport, ConversionResult
from .plan import Plan
from .publish_journal import write_journal

__all__ = ["output_folder", "publish"]

log = logging.getLogger("edgecv.converters")


@contextmanager
def output_folder(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Create the output folder if needed; if the body raises, remove the folders this created (while empty).

    Raises:
        ConfigError: *output_dir* is a file, or cannot be created.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output_dir {out} is a file, not a folder; choose a folder")
    created = []
    probe = out
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror or exc}; choose a writable folder") from exc
    try:
        yield out
    except BaseException:
        _remove_created(created)
        raise


def _remove_created(created: list[Path]) -> None:
    for folder in created:  # innermost first; only while empty
        try:
            folder.rmdir()
        except OSError:
            return


def publish(ctx: ConversionContext, staged: Sequence[StagedArtifact], report: ConversionReport) -> ConversionResult:
    """Move the published artifacts, then their Edge TPU builds, into the output folder, and write the report.

    Raises:
        ConfigError: a destination appeared meanwhile and ``overwrite`` is False, or the folder is not writable.
        BaseException: whatever interrupted it, after removing what this call had added.
    """
    options, out = ctx.options, ctx.plans.output_dir
    moves = _moves(ctx, staged)
    # what a failed publish must leave in place: every file at a destination now (Edge TPU builds included)
    preexisting = {path for path in [*(dest for _, dest, _, _ in moves), ctx.plans.report_path] if path.exists()}
    reported = {a.name: a for a in report.artifacts}
    sums = [(reported[dest.name].size_bytes, reported[dest.name].sha256) if dest.name in reported else
            (src.stat().st_size, sha256_file(src)) for src, dest, _, _ in moves]   # hashed once, for the report
    report_json = report.to_json().encode("utf-8")
    added = [(dest, *sums[i]) for i, (_, dest, _, _) in enumerate(moves) if dest not in preexisting]
    if options.write_report and ctx.plans.report_path not in preexisting:
        added.append((ctx.plans.report_path, len(report_json), hashlib.sha256(report_json).hexdigest()))
    write_journal(ctx.stage, added)                 # a kill from here on is rolled back by the next conversion
    published: list[Path] = []
    try:
        artifacts = []
        for (src, dest, plan, is_edgetpu), (size, digest) in zip(moves, sums):
            with atomic_path(dest, overwrite=options.overwrite) as tmp:
                os.replace(src, tmp)
            published.append(dest)
            artifacts.append(Artifact(str(dest), plan.format, plan.precision, plan.io_dtype, size, digest, is_edgetpu))
        written_report = None
        if options.write_report:
            written_report = str(atomic_write(ctx.plans.report_path, report_json, overwrite=options.overwrite))
            published.append(ctx.plans.report_path)
        return ConversionResult(tuple(artifacts), report, str(out), written_report)
    except BaseException:
        _roll_back(published, preexisting)
        raise


def _moves(ctx: ConversionContext, staged: Sequence[StagedArtifact]) -> list[tuple[Path, Path, Plan, bool]]:
    """``(staged file, destination, plan, is Edge TPU build)``: published plans first, then the compiled builds."""
    moves = [(s.path, ctx.plans.destinations[s.plan], s.plan, False) for s in staged if s.plan.publish]
    moves += [(s.edgetpu.compiled, ctx.plans.output_dir / s.edgetpu.compiled.name, s.plan, True) for s in staged
              if s.edgetpu is not None and s.edgetpu.compiled is not None]
    return moves


def _roll_back(published: Iterable[Path], preexisting: set[Path]) -> None:
    """All or nothing: remove what this call added (files it replaced stay replaced)."""
    for path in published:
        if path in preexisting:
            continue
        try:
            path.unlink()
        except OSError:
            log.error("could not remove %s after a failed conversion", path)
