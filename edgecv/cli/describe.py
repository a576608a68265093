"""``edgecv describe``: a model's tensors, the manifest or metadata it carries, and what each task lacks."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, print_json

NAME = "describe"
HELP = "show a model's inputs, outputs, stated settings and what each task still needs"
DESCRIPTION = """Show a model's inputs and outputs (name, shape, dtype, quantization), the manifest
or TFLite metadata found (and where), and, for each task, whether it can run the model
with what is stated: the settings it would use, or the error naming what is missing
(state it with flags, or once with edgecv annotate)."""
EPILOG = """examples:
  edgecv describe version-RFB-320.onnx
  edgecv describe ssd.tflite --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv describe`` arguments to *parser*."""
    parser.add_argument("model", help="a .tflite or .onnx model")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _settings(runner: Any) -> dict[str, Any]:
    """What a constructed task reads: head, labels, preprocessing (JSON values)."""
    out: dict[str, Any] = {}
    head = getattr(runner, "head", None)
    if head is not None:
        try:
            out["head"] = head.to_dict()
        except Exception:          # an explicit anchor array has no JSON form
            out["head"] = repr(head)
    labels = getattr(runner, "labels", None)
    out["labels"] = None if labels is None else f"{len(labels)} labels"
    options = runner.preprocessor.options
    out["preprocessing"] = options.to_dict()
    return out


def _assumed(model: Any) -> list[str]:
    """Settings a task fills in by a documented default because the model does not state them.

    (A float input's mean/std has no default: the tasks refuse it, and their readiness says so.)
    """
    notes = []
    pre = model.manifest.preprocessing
    if pre is None or pre.color is None:
        notes.append("colour not stated: RGB")
    return notes


def describe(path: str) -> dict[str, Any]:
    """The report :func:`run` prints, as plain JSON values.

    Raises:
        (everything :func:`edgecv.load` raises)
    """
    from ..errors import EdgeCVError
    from ..model import load
    from ..task_registry import TASKS
    from ..tasks import task_class

    with load(path) as model:
        manifest = model.manifest
        report: dict[str, Any] = {
            "path": str(model.path), "format": model.format,
            "inputs": [s.to_dict() for s in model.inputs], "outputs": [s.to_dict() for s in model.outputs],
            "manifest_source": manifest.source,
            "manifest": manifest.to_dict() if manifest.source != "none" else None,
            "assumed": _assumed(model), "tasks": {},
        }
        for info in TASKS:
            try:
                with task_class(info.name)(model) as runner:
                    report["tasks"][info.name] = {"ready": True, "reads": _settings(runner)}
            except EdgeCVError as exc:
                report["tasks"][info.name] = {"ready": False, "missing": " ".join(str(exc).split())}
    return report


def _text(report: dict[str, Any]) -> str:
    lines = [f"{report['path']} ({report['format']})"]
    for kind in ("inputs", "outputs"):
        for s in report[kind]:
            q = s["quantization"]
            quant = f" q=(scale {q['scale'][0]:.6g}, zero {q['zero_point'][0]})" if q else ""
            lines.append(f"  {kind[:-1]:6} {s['name']!r} {s['shape']} {s['dtype']}{quant}")
    source = report["manifest_source"]
    lines.append(f"  settings stated: {'nothing (no manifest, no TFLite metadata)' if source == 'none' else source}")
    if report["manifest"]:
        m = report["manifest"]
        labels = m.get("labels")
        lines.append(f"    task {m.get('task')}; {len(labels) if labels else 'no'} labels; preprocessing "
                     f"{m.get('preprocessing')}; outputs {m.get('outputs') or '-'}; head {m.get('head') or '-'}")
    for note in report["assumed"]:
        lines.append(f"  assumed: {note}")
    for name, task in report["tasks"].items():
        if task["ready"]:
            lines.append(f"  {name}: ready; reads {task['reads']}")
        else:
            lines.append(f"  {name}: not ready: {task['missing']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report (text or JSON); 0.

    Raises:
        (everything :func:`edgecv.load` raises)
    """
    report = describe(args.model)
    if args.json:
        print_json(report)
    else:
        print(_text(report))
    return EXIT_OK
