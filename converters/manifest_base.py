"""What every artifact's manifest shares (task, labels, preprocessing, head, target, provenance), and one artifact's manifest.

The head is built here, once per conversion, from the caller's ``head=`` and
what the float probe shows (:func:`converters.heads.build_head`): the task's
typed head (:mod:`edgecv.heads`), which every artifact's manifest carries. With
``postprocess="decode"`` the in-graph box decoder comes with it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgecv._version import __version__ as EDGECV_VERSION
from edgecv.errors import ConversionError
from edgecv.heads import Head
from edgecv.manifest import Manifest, Preprocessing

from ._env import tool_versions
from .calibration import CalibrationSet
from .data import PreparedData
from .heads import build_head, resolve_labels
from .options import ConvertOptions
from .plan import Plan
from .source import OpenedSource

__all__ = ["ManifestBase", "manifest_base", "artifact_manifest"]


@dataclass(frozen=True)
class ManifestBase:
    """The manifest fields shared by every artifact of one conversion.

    Attributes:
        task: canonical task name.
        labels: class names, or None.
        label_offset: 1 when class 0 is an unlabelled background, else 0.
        preprocessing: how the device turns images into inputs.
        head: the task's typed head (as :func:`converters.heads.build_head` made it, decoded for
            ``postprocess="decode"``).
        target: target profile name, or None.
        provenance: source hash, kind and name, tool versions, creation time (UTC).
        transform: ``(tf, {role: tensor}) -> {role: tensor}`` added after the model in every artifact
            (in-graph box decoding), or None.
    """

    task: str
    labels: tuple[str, ...] | None
    label_offset: int
    preprocessing: Preprocessing
    head: Head
    target: str | None
    provenance: Mapping[str, Any]
    transform: Callable[[Any, dict], dict] | None = None


def manifest_base(options: ConvertOptions, source: OpenedSource, data: PreparedData,
                  target_name: str | None) -> ManifestBase:
    """Labels, head, in-graph postprocessing and provenance for every artifact.

    Raises:
        ConfigError: labels that do not fit the model's classes, unknown head settings, anchors for
            another task.
        ConversionError: ``postprocess="decode"`` for an ONNX source.
    """
    model = source.model
    labels, label_offset = resolve_labels(options.labels, options.task, data.num_classes)
    manifest_head = build_head(options.task, options.head, anchors=options.anchors, float_outputs=data.float_probe,
                               layout=model.layout)
    transform = None
    if options.postprocess == "decode":
        from .postprocess import decoded_head, decoder_for

        if model.is_onnx:
            raise ConversionError("postprocess='decode' adds TensorFlow ops and is not possible for an ONNX source; "
                                  "convert without it (the runtime decodes from the manifest's anchors)")
        transform = decoder_for(manifest_head)
        manifest_head = decoded_head(manifest_head)
    provenance = {
        "source_sha256": model.sha256, "source_kind": model.kind,
        "source_name": model.path.name if model.path is not None else model.name,
        "tools": tool_versions(), "edgecv": EDGECV_VERSION,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if transform is not None:
        provenance["postprocess"] = "decode"
    return ManifestBase(options.task, labels, label_offset, source.preprocessing, manifest_head, target_name,
                        provenance, transform)


def artifact_manifest(base: ManifestBase, plan: Plan, outputs: Mapping[str, str], extra: Mapping[str, Any], *,
                      calibration: CalibrationSet | None, calibration_method: str, per_channel: bool,
                      kept_float: Sequence[str] = (), widened: Sequence[str] = (),
                      activations: str = "int8", symmetric_activations: bool = False) -> Manifest:
    """The manifest of one artifact: *base* plus its outputs, quantization and how it was made.

    Args:
        base: the shared fields.
        plan: the artifact.
        outputs: role -> tensor name in the artifact.
        extra: provenance of this artifact (converter, opset, conversion notes).
        calibration: the calibration set (recorded for int8).
        calibration_method: ONNX int8 calibration method (TFLite's converter calibrates min/max).
        per_channel: ONNX int8 per-channel weight scales.
        kept_float: int8: the layers the fallback loop kept in float (recorded as ``quantization.kept_float``).
        widened: ONNX int8: the activations quantized over a widened range (``quantization.widened``).
        activations: int8: "int16" for 16-bit activations with 8-bit weights (``quantization.activations``).
        symmetric_activations: ONNX int8: activation zero points are 0 (``quantization.symmetric_activations``).
    """
    quant: dict[str, Any] = {"precision": plan.precision, "io_dtype": plan.io_dtype}
    if plan.precision == "int8" and calibration is not None:
        method = "minmax" if plan.format == "tflite" else calibration_method
        quant["calibration"] = calibration.summary(method)
        if plan.format == "onnx":
            quant.update({"format": "QDQ", "per_channel": per_channel, "symmetric_activations": symmetric_activations})
        quant["kept_float"] = list(kept_float)
        if widened:
            quant["widened"] = list(widened)
        if activations != "int8":
            quant["activations"], quant["io_dtype"] = activations, "float32"
    provenance = {**base.provenance, **extra, "precision": plan.precision, "format": plan.format,
                  "calibration": quant.get("calibration")}
    return Manifest(task=base.task, labels=base.labels, label_offset=base.label_offset,
                    preprocessing=base.preprocessing, head=base.head, target=base.target, outputs=dict(outputs),
                    quantization=quant, provenance=provenance)
