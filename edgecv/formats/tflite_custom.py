"""Checks on the options of TFLite custom ops that a runtime trusts (TFLite_Detection_PostProcess).

The options are a FlexBuffers map (:mod:`edgecv.formats.flexbuffer`). A NaN
box scale or threshold makes the op return NaN boxes that every consumer then
trips over; a huge ``max_detections`` sizes its outputs. Refused with
:class:`~edgecv.errors.ModelLoadError` when the model is parsed.
"""

from __future__ import annotations

import math

from .flatbuffer import FlatbufferReader
from .flexbuffer import read_flexbuffer_map

__all__ = ["MAX_POSTPROCESS_DETECTIONS", "MAX_POSTPROCESS_CLASSES", "check_custom_options"]

#: Largest ``max_detections`` / ``num_classes`` accepted in TFLite_Detection_PostProcess options.
MAX_POSTPROCESS_DETECTIONS = 100_000
MAX_POSTPROCESS_CLASSES = 100_000

_POSITIVE_FLOATS = ("y_scale", "x_scale", "h_scale", "w_scale")
_INT_RANGES = {"max_detections": (1, MAX_POSTPROCESS_DETECTIONS), "num_classes": (1, MAX_POSTPROCESS_CLASSES),
               "max_classes_per_detection": (1, MAX_POSTPROCESS_CLASSES),
               "detections_per_class": (0, MAX_POSTPROCESS_DETECTIONS)}


def check_custom_options(fb: FlatbufferReader, op: int, opcode: str, graph: int) -> dict | None:
    """Options of a TFLite_Detection_PostProcess op (other custom ops are left to their runtime): checked, and
    returned as ``{key: scalar}`` (None for other ops).

    Raises:
        ModelLoadError: the options are damaged, a float is NaN or infinite, a box scale is not positive,
            the IoU threshold is outside 0..1, or a count is outside its range.
    """
    if opcode != "TFLite_Detection_PostProcess":
        return None
    where = f"{opcode} in subgraph {graph}"
    vec = fb.bytes_vector(op, 5)
    raw = bytes(fb.data[vec[0]:vec[0] + vec[1]]) if vec is not None else b""
    options = read_flexbuffer_map(raw, what=f"{fb.what}: options of {where}")
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise fb._fail(f"{where} has option {key} = {value}; its options must be finite numbers")
    for key in _POSITIVE_FLOATS:
        value = options.get(key)
        if value is not None and not value > 0:
            raise fb._fail(f"{where} has box scale {key} = {value}; it must be positive")
    iou = options.get("nms_iou_threshold")
    if iou is not None and not 0.0 <= iou <= 1.0:
        raise fb._fail(f"{where} has nms_iou_threshold {iou}; it must be between 0 and 1")
    for key, (low, high) in _INT_RANGES.items():
        value = options.get(key)
        if value is not None and (isinstance(value, float) or not low <= value <= high):
            raise fb._fail(f"{where} has {key} = {value}; it must be an integer between {low} and {high}")
    return options
