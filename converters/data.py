"""The data stage: calibration and validation sets read through the runtime preprocessing, their overlap, and a float probe.

The probe is a few preprocessed inputs run through the float source: what its
outputs look like (probabilities or logits, unit vectors, the class count)
decides the manifest head's defaults and checks the label count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgecv.errors import CalibrationError

from .calibration import CalibrationSet, Preprocess, calibration_set
from .options import ConvertOptions
from .plan import PlanSet
from .source import OpenedSource
from .validate import ValidationSet, preprocess_validation, validation_set

__all__ = ["PreparedData", "prepare_data", "PROBE_SAMPLES"]

#: Preprocessed inputs the float probe looks at.
PROBE_SAMPLES = 8


@dataclass(frozen=True)
class PreparedData:
    """What the data stage read and checked.

    Attributes:
        calibration: the calibration set, or None when no artifact needs one (only full-integer int8 does).
        validation: the held-out validation set, or None (artifacts are then not validated).
        validation_inputs: the validation images preprocessed for the float source, ``(N, *input_shape[1:])``
            float32, or None.
        float_probe: role -> float source outputs on a few inputs ``(n, ...)``.
        num_classes: classes the float model tells (classification scores, segmentation logits), or None.
        notes: what was not used or is optimistic, for the report.
    """

    calibration: CalibrationSet | None
    validation: ValidationSet | None
    validation_inputs: np.ndarray | None
    float_probe: Mapping[str, np.ndarray]
    num_classes: int | None
    notes: tuple[str, ...] = ()


def prepare_data(options: ConvertOptions, source: OpenedSource, plans: PlanSet) -> PreparedData:
    """Read the calibration set when an artifact needs it, the validation set, refuse overlap, probe the float model.

    Raises:
        CalibrationError: unusable calibration data, or calibration inputs in the validation set
            without ``allow_overlap``.
        ConfigError: unusable validation data.
        ConversionError: the float source failed to run on the probe.
    """
    notes: list[str] = []
    calib = None
    if any(p.needs_calibration for p in plans.plans):
        calib = calibration_set(options.calibration, source.preprocess, min_size=options.min_calibration)
    elif options.calibration is not None:
        notes.append("calibration data not used: no artifact needs it (only full-integer int8 does)")
    vs: ValidationSet | None = None
    val_inputs = None
    if options.validation is not None:
        vs = validation_set(options.validation, color=options.color)
        val_inputs, val_hashes = preprocess_validation(vs, source.preprocess)
        if calib is not None:
            notes += _overlap_notes(calib, val_hashes, options.allow_overlap)
    else:
        notes.append("no validation set: artifacts were not validated (pass validation= held-out images)")
    probe = probe_inputs(source.preprocess, calib, val_inputs)
    float_probe = source.model.predict(probe, source.roles)
    num_classes = _num_classes(options.task, float_probe, source.model.layout)
    return PreparedData(calib, vs, val_inputs, float_probe, num_classes, tuple(notes))


def _overlap_notes(calib: CalibrationSet, val_hashes: frozenset[str], allow_overlap: bool) -> list[str]:
    """Refuse validation inputs that are calibration inputs too, unless allowed (then say so).

    Raises:
        CalibrationError: an overlap without *allow_overlap*.
    """
    shared = calib.hashes & val_hashes
    if shared and not allow_overlap:
        raise CalibrationError(
            f"{len(shared)} of the {len(val_hashes)} distinct validation inputs are also in the calibration "
            "set; validation must be held out or its figures are optimistic. Use separate images, or pass "
            "allow_overlap=True to accept that")
    if shared:
        return [f"{len(shared)} validation inputs are also calibration inputs (allow_overlap=True): "
                "int8 figures are optimistic"]
    return []


def probe_inputs(pre: Preprocess, calib: CalibrationSet | None, val_inputs: np.ndarray | None) -> np.ndarray:
    """A few preprocessed inputs to look at the float outputs (probabilities? unit vectors?).

    The first validation inputs, else the first calibration inputs, else two seeded random images.
    """
    if val_inputs is not None:
        return val_inputs[:PROBE_SAMPLES]
    if calib is not None:
        probes = []
        for x in calib:
            probes.append(x[0])
            if len(probes) == PROBE_SAMPLES:
                break
        return np.stack(probes)
    rng = np.random.default_rng(0)
    h, w = (pre.shape[1], pre.shape[2]) if pre.spec.layout != "nchw" else (pre.shape[2], pre.shape[3])
    return np.stack([pre(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))[0] for _ in range(2)])


def _num_classes(task: str, float_outputs: Mapping[str, np.ndarray], layout: str) -> int | None:
    if task == "classification" and "scores" in float_outputs:
        return int(float_outputs["scores"].shape[-1])
    if task == "segmentation" and "mask" in float_outputs and float_outputs["mask"].ndim == 4:
        return int(float_outputs["mask"].shape[-1 if layout == "nhwc" else 1])
    return None
