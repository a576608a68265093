"""Non-maximum suppression: exact greedy NMS, class-aware, and Soft-NMS (:func:`edgecv.nms`, :func:`edgecv.soft_nms`).

Semantics (each one is tested):

* Boxes are corner boxes ``x1, y1, x2, y2`` (see :mod:`edgecv.boxes`); inverted
  corners are normalised; IoU is computed in float64 as
  ``inter / (area_i + area_j - inter)`` and is 0 when either box has zero area.
* A box is a candidate when its score is finite and ``score > score_threshold``
  (float64 comparison); NaN and infinite scores are dropped, never picked.
* Candidates are visited by descending score; equal scores keep the lower
  index first (stable). A candidate is suppressed when its IoU with an already
  kept box is ``> iou_threshold``: exactly greedy NMS as in ``cv2.dnn.NMSBoxes``
  and ``tf.image.non_max_suppression``.
* ``class_ids`` makes it class-aware: boxes of different classes never
  suppress each other. There is no loop over classes and no coordinate offset
  trick, so large coordinates lose no precision.
* ``max_output`` keeps the first ``max_output`` kept indices.
* Results are int64 indices into the input, ordered by descending score;
  empty input gives an empty int64 array.
* NaN or infinite box coordinates raise :class:`ConfigError`.

Where the references differ: OpenCV gives two zero-area boxes an overlap of 1
(edgecv and TensorFlow: 0), does not normalise inverted corners, and both
OpenCV and TensorFlow compare scores and IoU in float32 (thresholds rounded to
float32). On boxes with positive area and float32-representable thresholds
the three agree.

Modules, one job each:

* :mod:`.api`: :func:`nms` and :func:`soft_nms`, their argument checks and the Soft-NMS loop;
* :mod:`.candidates`: score thresholds in float64 and on quantized scores as stored
  (:func:`scores_above`, :func:`quantized_threshold`, :func:`dequantize`);
* :mod:`.ranking`: the rank order and the prefix of it that top-k NMS examines first;
* :mod:`.greedy`: hard NMS on checked inputs (:func:`hard_nms_checked`, the Detector's
  per-frame entry), choosing one of the strategies below;
* :mod:`.kernels`: the IoU arithmetic all strategies share, the dense block and the
  Python-float path for a few boxes;
* :mod:`.grouped`: independent groups of boxes (detector output);
* :mod:`.blocked`: rounds of dense blocks with a centre index (sparse scenes).
"""

from .api import NMS_METHODS, nms, soft_nms
from .candidates import dequantize, greater_f64, quantization_pair, quantized_threshold, scores_above
from .greedy import hard_nms_checked
from .ranking import IndexedBoxes, prefix_horizon

__all__ = ["nms", "soft_nms", "scores_above", "quantized_threshold", "dequantize", "greater_f64", "NMS_METHODS",
           "quantization_pair", "hard_nms_checked", "IndexedBoxes", "prefix_horizon"]
