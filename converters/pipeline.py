"""``converters.convert``: source model -> quantized, validated TFLite / ONNX artifacts with manifests.

:func:`convert` runs these stages, each in its own module, over typed state:

1. options: check the arguments (:mod:`converters.options`);
2. plan: decide the artifacts, then name them and their destinations, refusing
   existing files unless ``overwrite=True`` (:mod:`converters.plan`);
3. source: open the source, map its outputs to roles, fix its preprocessing (:mod:`converters.source`);
   TFLite artifacts of ONNX sources start from onnx2tf's translation (:mod:`converters.onnx_translate`);
4. data: read calibration and validation data through the runtime preprocessing,
   refuse overlap between them, probe the float model (:mod:`converters.data`);
   then what every manifest shares: labels, head, provenance (:mod:`converters.manifest_base`);
5. build every artifact into a hidden staging folder inside ``output_dir``
   (:mod:`converters.staging` removes first those of conversions that were killed on this host),
   each with its manifest embedded (TFLite metadata ``EDGECV_MANIFEST`` /
   ONNX ``metadata_props["edgecv.manifest"]``), Edge TPU compile included (:mod:`converters.build`);
6. validate: run each through its edgecv task on the validation set and score it
   against the float model (:mod:`converters.evaluation`); then each int8 artifact's per-layer error
   and coverage, and the float fallback loop for those that miss the budget (:mod:`converters.fallback`);
7. report (:func:`converters.conversion_report.compose_report`);
8. publish: only then move the files into ``output_dir`` (:mod:`converters.publish`, ``edgecv.atomic``).
   Any failure before that leaves ``output_dir`` as it was; existing files are
   never replaced unless ``overwrite=True``.

:func:`converters.context.conversion_context` holds the state the build, validate,
report and publish stages share (staging folder and source exports included);
:func:`converters.build.build_artifact` and :func:`converters.evaluation.validate_artifact`
work on one artifact and may be called again within the same context.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from edgecv.heads import Head
from edgecv.manifest import Preprocessing

from .build import build_artifacts
from .calibration import MIN_CALIBRATION_SAMPLES
from .context import conversion_context
from .conversion_report import ConversionResult, compose_report
from .data import prepare_data
from .evaluation import validate_artifacts
from .fallback import improve_int8
from .manifest_base import manifest_base
from .options import DEFAULT_BUDGET_POINTS, DEFAULT_MAX_FLOAT_SHARE, check_options
from .plan import name_plans, plan_conversion
from .publish import output_folder, publish
from .source import open_source

__all__ = ["convert", "DEFAULT_BUDGET_POINTS"]


def convert(model: Any, *, task: str, target: Any = "cpu", precision: str | Sequence[str] | None = None,
            calibration: Any = None, validation: Any = None, labels: Sequence[str] | str | os.PathLike | None = None,
            preprocessing: Preprocessing | Mapping[str, Any] | None = None, anchors: Any = None,
            output_dir: str | os.PathLike = "edgecv-out", overwrite: bool = False,
            formats: str | Sequence[str] | None = None, io_dtype: str | None = None,
            head: Head | Mapping[str, Any] | None = None, outputs: Mapping[str, str | int] | None = None,
            name: str | None = None, color: str = "bgr", calibration_method: str = "minmax",
            per_channel: bool = True, allow_overlap: bool = False, accuracy_budget: float = DEFAULT_BUDGET_POINTS,
            opset: int | None = None, input_shape: tuple[int, ...] | None = None,
            custom_objects: Mapping[str, Any] | None = None, postprocess: str = "none",
            min_calibration: int = MIN_CALIBRATION_SAMPLES, write_report: bool = True, float_fallback: bool = True,
            max_float_share: float = DEFAULT_MAX_FLOAT_SHARE) -> ConversionResult:
    """Quantize and export *model* for a target, validate every artifact, and write them atomically.

    Args:
        model: a ``keras.Model``, a ``.keras``/``.h5`` file, a SavedModel folder, or an ``.onnx`` file
            (its TFLite artifacts need onnx2tf: :mod:`converters.onnx_translate`).
        task: "classification", "detection", "segmentation" or "embedding" (or classify/detect/segment/embed).
        target: a target name or ``targets.Target`` (its recipes decide formats, precisions and I/O types),
            or None to build exactly the *precision* x *formats* asked for.
        precision: one or several of "fp32", "fp16", "dynamic", "int8"; None: all of the target's
            (target=None: all four).
        calibration: for int8: a folder of images, a (N, H, W, 3) uint8 image array, a float array of
            already-preprocessed inputs (N, *input shape), or a list of images / paths / tensors (see
            :mod:`converters.calibration`). 100-500 representative images; at least *min_calibration*.
        validation: held-out images with optional ground truth: a :class:`ValidationSet`, a
            ``ShapesDataset``, a dict of ValidationSet fields, a folder, an image array or a list of images.
            Must not overlap the calibration set (checked by content hash) unless *allow_overlap*.
        labels: class names (sequence or label file), stored in the manifest.
        preprocessing: an :class:`edgecv.Preprocessing` or its dict (mean/std on 0-255 pixels, color, resize): how
            the device makes inputs (manifest; calibration and validation too). Default: (x - 127.5) / 127.5, RGB.
        anchors: detection with raw SSD outputs: an ``edgecv.anchors.AnchorSpec``; stored in the manifest
            and decoded by the runtime (box coder: TF OD API scales 10, 10, 5, 5 unless ``head`` says otherwise).
        output_dir: folder for the artifacts (created if missing).
        overwrite: replace existing files of the same names. formats: narrow to "tflite" and/or "onnx".
        io_dtype: input/output type of full-integer TFLite int8: "uint8" (Coral), "int8" or "float32".
        head: the task's typed head (:mod:`edgecv.heads`) or its dict, e.g. ``{"score_threshold": 0.7}``. outputs:
            ``{role: source output name or index}`` when the source's output names do not say it.
        name: stem of the artifact file names (default: the source's name). color: "bgr" or "rgb" array images.
        calibration_method: ONNX int8: "minmax", "entropy", "percentile" or "auto" (all tried, the best on
            validation kept); TFLite's converter calibrates min/max.
        per_channel: ONNX int8: per-channel weight scales.
        allow_overlap: accept calibration images in the validation set (figures will be optimistic).
        accuracy_budget: allowed drop of the primary metric, in points, for the recommendation (default 1).
        opset: ONNX opset for TF sources (default 17). input_shape: (H, W, C) for a dynamic input size.
        custom_objects: custom Keras layers for loading ``.keras``/``.h5`` files.
        postprocess: detection with raw SSD outputs: "none" (default: raw outputs, anchors in the manifest,
            decoded by the runtime) or "decode" (box decoding and score activation added to the graph, TensorFlow
            sources only; see :mod:`converters.postprocess`). In-graph NMS is not produced.
        min_calibration: fewest distinct calibration inputs accepted. write_report: also write the report JSON.
        float_fallback: an int8 artifact that misses the budget gets its worst layers kept in float, step by step,
            until the budget holds (:mod:`converters.fallback`); False: the per-layer error is only reported.
        max_float_share: that loop's cap: at most this share of the quantized layers in float (0..1).

    Returns:
        A :class:`ConversionResult` (``.artifacts``, ``.report``).

    Raises:
        ConfigError: a bad argument (unknown task, precision, format, I/O type, head key; output folder
            not writable; an existing file without overwrite=True).
        UnknownTargetError: unknown target name.
        CalibrationError: empty, malformed, constant or too small calibration set, or overlap with validation.
        UnsupportedOpError: an op the requested precision/format cannot express (named).
        ConversionError: the conversion failed otherwise (onnx2tf too); BackendNotAvailable: onnx2tf is missing.
        ModelLoadError: the source model cannot be read.
    """
    options = check_options(**locals())           # the first statement: locals() holds exactly the arguments
    started = time.perf_counter()
    plans, target_name, plan_notes = plan_conversion(options)
    with output_folder(options.output_dir) as out:
        source = open_source(options)
        plan_set = name_plans(plans, target_name, plan_notes, stem=source.stem, output_dir=out, options=options)
        data = prepare_data(options, source, plan_set)
        manifest = manifest_base(options, source, data, target_name)
        with conversion_context(options, source, plan_set, data, manifest) as ctx:
            staged = build_artifacts(ctx)
            baseline, reports = validate_artifacts(ctx, staged)
            staged, reports = improve_int8(ctx, staged, reports, baseline)
            report = compose_report(ctx, staged, reports, baseline.primary_metric, started_s=started)
            return publish(ctx, staged, report)
