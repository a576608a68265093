"""Is this model of the task's family? Checks that refuse a pose model as a segmenter or a classifier as
an embedder, instead of returning a meaningless mask or vector.

- a segmentation output is a per-pixel map: at least 4x4 cells, at the input's aspect ratio
  (within a factor of 2); MoveNet's ``[1, 1, 17, 3]`` keypoints are not;
- an embedding is not a probability vector: an output quantized like one (scale 1/256 with
  the zero point at the type's lowest value), or whose values on a probe image are
  non-negative and sum to 1, is a classifier's.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import IncompatibleModelError
from ..specs import TensorSpec

__all__ = ["check_segmentation_map", "quantized_as_probabilities", "check_not_probabilities", "probe_image"]

_MIN_CELLS = 4
_ASPECT_SLACK = 2.0


def probe_image(height: int = 240, width: int = 320) -> np.ndarray:
    """A deterministic photo-like HxWx3 uint8 image (colour gradients) for probe runs."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                     (xx + yy) * 255 // max(1, width + height - 2)], axis=2).astype(np.uint8)


def check_segmentation_map(spec: TensorSpec, map_hw: tuple[int, int], input_hw: tuple[int, int]) -> None:
    """Refuse a mask output that is not a per-pixel map of the input.

    Raises:
        IncompatibleModelError: fewer than 4 cells on a side, or another aspect ratio than the input's.
    """
    (h, w), (ih, iw) = map_hw, input_hw
    aspect_off = abs(math.log((h / w) / (ih / iw))) if min(h, w, ih, iw) > 0 else math.inf
    if min(h, w) < _MIN_CELLS or aspect_off > math.log(_ASPECT_SLACK):
        raise IncompatibleModelError(
            f"Segmenter: output {spec.name!r}{list(spec.shape)} is a {h}x{w} grid, not a per-pixel map of the "
            f"{ih}x{iw} input (a segmentation output is [1,H,W,C], [1,C,H,W] or [1,H,W] at the input's aspect "
            "ratio); this looks like a keypoint, detection or classification model: use the matching task")


def quantized_as_probabilities(spec: TensorSpec) -> bool:
    """Whether an integer output is quantized like a softmax (scale 1/256, zero point at the lowest value)."""
    q = spec.quantization
    if q is None or spec.np_dtype.kind not in "ui" or not q.per_tensor:
        return False
    lowest = int(np.iinfo(spec.np_dtype).min)
    return abs(float(q.scale[0]) * 256.0 - 1.0) < 1e-3 and int(q.zero_point[0]) == lowest


def check_not_probabilities(spec: TensorSpec, vector: np.ndarray | None) -> None:
    """Refuse an embedding output that holds class probabilities.

    Args:
        spec: the output.
        vector: its values on a probe image, or None when no probe ran.

    Raises:
        IncompatibleModelError: quantized as probabilities, or non-negative values summing to 1.
    """
    why = None
    if quantized_as_probabilities(spec):
        why = f"it is quantized as probabilities (scale {spec.quantization.scale[0]:.6g})"
    elif vector is not None and vector.size > 2 and float(vector.min()) >= 0.0 and abs(
            float(vector.sum(dtype=np.float64)) - 1.0) < 1e-2:
        why = "on a probe image its values are non-negative and sum to 1"
    if why is not None:
        raise IncompatibleModelError(
            f"Embedder: output {spec.name!r}{list(spec.shape)} holds class probabilities, not an embedding: {why}. "
            "This is a classifier: use edgecv.Classifier (or name another output with output=...)")
