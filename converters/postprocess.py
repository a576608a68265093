"""Optional in-graph detection post-processing for TensorFlow sources.

By default a raw SSD is exported as it is (box encodings + class logits) and
its anchors and box coder travel in the manifest: the runtime decodes and
runs NMS (:class:`edgecv.tasks.Detector`). With ``postprocess="decode"`` the
decoding and the score activation are added to the graph instead, so the
artifact outputs ``boxes`` as normalised ``x1, y1, x2, y2`` and ``scores`` as
probabilities (the manifest's "decoded" form; NMS still runs in the runtime).
In-graph NMS is not produced: TensorFlow's NMS ops are not TFLite builtins
(they need Flex, which full-integer and Edge TPU targets cannot run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from edgecv.errors import ConversionError
from edgecv.heads import DetectionHead

__all__ = ["POSTPROCESS", "decoder_for", "decoded_head"]

POSTPROCESS = ("none", "decode")
_CENTRE_SIZE_COLUMNS = {"yxhw": (1, 0, 3, 2), "xywh": (0, 1, 2, 3)}   # positions of cx, cy, w, h


def decoder_for(head: DetectionHead) -> Callable[[Any, dict], dict]:
    """A function ``(tf, {"boxes": enc, "scores": s}) -> {"boxes": xyxy, "scores": p}`` for a raw-SSD head.

    Raises:
        ConversionError: the head is not a raw SSD head with anchors and a box coder.
    """
    if head.form != "raw" or head.anchors is None or head.box_coder is None:
        raise ConversionError("postprocess='decode' needs raw SSD outputs with anchors= and a box coder; this "
                              f"detector's head is form {head.form!r}")
    coder = head.box_coder
    anchors = head.anchors.generate(coder.order).astype(np.float32)
    cx_i, cy_i, w_i, h_i = _CENTRE_SIZE_COLUMNS[coder.order]
    scales = [float(s) for s in coder.scales]
    activation = head.score_activation or "none"

    def decode(tf: Any, outputs: dict) -> dict:
        enc = tf.reshape(outputs["boxes"], [tf.shape(outputs["boxes"])[0], -1, 4])
        a = tf.constant(anchors[None])
        cx = enc[..., cx_i] / scales[cx_i] * a[..., w_i] + a[..., cx_i]
        cy = enc[..., cy_i] / scales[cy_i] * a[..., h_i] + a[..., cy_i]
        w = tf.exp(enc[..., w_i] / scales[w_i]) * a[..., w_i]
        h = tf.exp(enc[..., h_i] / scales[h_i]) * a[..., h_i]
        boxes = tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)
        scores = outputs["scores"]
        if activation == "sigmoid":
            scores = tf.sigmoid(scores)
        elif activation == "softmax":
            scores = tf.nn.softmax(scores, axis=-1)
        return {**outputs, "boxes": boxes, "scores": scores}

    return decode


def decoded_head(head: DetectionHead) -> DetectionHead:
    """The manifest head of the same detector after in-graph decoding."""
    return replace(head, anchors=None, box_coder=None, form="decoded", box_format="xyxy", box_normalized=True,
                   score_activation="none")
