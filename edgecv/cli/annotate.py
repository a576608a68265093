"""``edgecv annotate``: write a model's settings into a copy of it, checked by one run on a probe image."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import EXIT_OK, TASKS
from .settings_flags import add_settings_arguments, collect, settings_manifest

NAME = "annotate"
HELP = "write task settings (labels, preprocessing, head) into a copy of a model"
DESCRIPTION = """Write the settings a third-party model needs into a copy of it, so that
edgecv run MODEL and edgecv.Detector(MODEL) need no further arguments.

ONNX: the manifest goes into the model's metadata_props ("edgecv.manifest").
TFLite: into the model's metadata ("EDGECV_MANIFEST", next to any standard
TFLite metadata), or a sidecar OUT.json for models whose weights live outside
the flatbuffer (the >2 GB format).
What the model already states is kept unless a flag overrides it. The input is
never written: OUT must differ from MODEL unless --force. Before anything is
written the copy is loaded with the task and run once on a probe image; a
setting that fails stops the command, and the probe's warnings are printed."""
EPILOG = """examples:
  edgecv annotate version-RFB-320.onnx --task detect --form decoded --box-format xyxy --background-class 0 \\
      --score-activation none --box-normalized true --mean 127 --std 128 --color rgb -o faces.onnx
  edgecv annotate version-slim-320_without_postprocessing.onnx --task detect --form raw \\
      --anchors ultraface --box-coder ultraface --background-class 0 --score-activation none \\
      --mean 127 --std 128 --color rgb --labels face.txt -o faces_raw.onnx
  edgecv annotate ssd.tflite --task detect --config ssd_settings.toml -o ssd_annotated.tflite"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv annotate`` arguments to *parser*."""
    parser.add_argument("model", help="a .tflite or .onnx model")
    parser.add_argument("--task", required=True, choices=TASKS, help="what the model does")
    parser.add_argument("-o", "--output", required=True, help="the annotated copy (same suffix as MODEL)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT (and its sidecar) if it exists; with OUT = MODEL, write into MODEL itself")
    add_settings_arguments(parser)


def _destination(source: Path, out: Path, force: bool) -> bool:
    """Check where the copy goes; True when it replaces the input itself.

    Raises:
        ConfigError: another suffix, the input without --force, or an existing file without --force.
    """
    from ..errors import ConfigError

    if out.suffix.lower() != source.suffix.lower():
        raise ConfigError(f"-o {out} must have the model's suffix {source.suffix!r}")
    same = out.exists() and os.path.samefile(out, source)
    if same and not force:
        raise ConfigError(f"-o {out} is the input model; annotate writes a copy: give another -o, or --force to "
                          "write into the input itself")
    if not force:
        for path in (out, out.with_name(out.name + ".json")):
            if path.exists():
                raise ConfigError(f"{path} exists; pass --force to replace it, or choose another -o")
    return same


def _manifest(args: argparse.Namespace, task: str) -> Any:
    """The model's manifest with the stated settings laid over it."""
    from ..errors import ConfigError
    from ..model import load

    stated = collect(args)
    if task != "detection" and stated.get("score_threshold") is not None:
        raise ConfigError(f"a {task} model's manifest has no score threshold; pass --score-threshold to edgecv run")
    with load(args.model) as model:
        return settings_manifest(task, stated, model).merged_over(model.manifest)


def _probe(path: Path, task: str) -> tuple[str, tuple[str, ...]]:
    """Load *path* with its task, run it once on a synthetic photo-like image: ``(summary, warnings)``.

    Raises:
        (everything the task raises at construction or on its first call)
    """
    from ..tasks import task_class
    from ..tasks.family import probe_image

    with task_class(task)(path) as runner:
        result = runner(probe_image())
        warnings = runner.model.warnings
    found = (f"{len(result.detections)} detections" if hasattr(result, "detections") else type(result).__name__)
    return found, warnings


def _write(source: Path, staged: Path, manifest: Any) -> str:
    """Write the annotated copy at *staged* (and its sidecar for TFLite); say where the settings went."""
    from ..atomic import atomic_write
    from ..manifest import MANIFEST_KEY, TFLITE_MANIFEST_NAME, sidecar_path

    if source.suffix.lower() == ".onnx":
        from ..formats.onnx_metadata import with_metadata_prop

        atomic_write(staged, with_metadata_prop(source.read_bytes(), MANIFEST_KEY, manifest.to_json(),
                                                what=f"ONNX model {source}"))
        return "ONNX metadata_props 'edgecv.manifest'"
    from ..formats.tflite_metadata_writer import with_metadata_entry

    embedded = with_metadata_entry(source.read_bytes(), TFLITE_MANIFEST_NAME, manifest.to_json().encode("utf-8"),
                                   what=f"TFLite model {source}")
    if embedded is not None:
        atomic_write(staged, embedded)
        return f"TFLite metadata {TFLITE_MANIFEST_NAME!r}"
    shutil.copyfile(source, staged)          # buffers outside the flatbuffer: the sidecar carries the settings
    atomic_write(sidecar_path(staged), manifest.to_json())
    return f"sidecar {sidecar_path(staged).name}"


def _publish(staged: Path, out: Path) -> None:
    """Move the staged copy (and sidecar) into place; a stale sidecar of an ONNX *out* is removed."""
    from ..manifest import sidecar_path

    side, dest_side = sidecar_path(staged), sidecar_path(out)
    if side.exists():
        os.replace(side, dest_side)
    elif dest_side.exists():
        dest_side.unlink()          # it would override the embedded manifest (only reached with --force)
    os.replace(staged, out)


def run(args: argparse.Namespace) -> int:
    """Annotate, probe, publish; print where the settings went and the probe's warnings.

    Raises:
        ConfigError: bad destination or settings; (and everything loading and the task raise).
    """
    from ..task_registry import get_task

    task = get_task(args.task).name
    source, out = Path(args.model), Path(args.output)
    if not source.is_file():
        from ..errors import ModelLoadError

        raise ModelLoadError(f"model file {source} does not exist")
    _destination(source, out, args.force)
    manifest = _manifest(args, task)
    with tempfile.TemporaryDirectory(prefix=".edgecv-annotate-", dir=out.parent if str(out.parent) else ".") as tmp:
        staged = Path(tmp) / out.name
        where = _write(source, staged, manifest)
        found, warnings = _probe(staged, task)
        _publish(staged, out)             # atomic_write already gave the staged files the umask's mode
    print(f"edgecv annotate: wrote {out} (settings in its {where}); probe run: {found}", file=sys.stderr)
    for message in warnings:
        print(f"edgecv annotate: warning: {message}", file=sys.stderr)
    return EXIT_OK
