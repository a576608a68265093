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

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgecv.errors import ConfigError, ConversionError

__all__ = ["POSTPROCESS", "decoder_for", "decoded_head"]

POSTPROCESS = ("none", "decode")
_CENTRE_SIZE_COLUMNS = {"yxhw": (1, 0, 3, 2), "xywh": (0, 1, 2, 3)}   # positions of cx, cy, w, h


def decoder_for(head: Mapping[str, Any]) -> Callable[[Any, dict], dict]:
    """A function ``(tf, {"boxes": enc, "scores": s}) -> {"boxes": xyxy, "scores": p}`` for a raw-SSD head.

    Raises:
        ConversionError: the head is not a raw SSD head with anchors and a box coder.
        ConfigError: anchors or box coder that do not parse.
    """
    from edgecv.anchors import AnchorSpec
    from edgecv.tasks.detector import box_coder_from

    if head.get("form") != "raw" or head.get("anchors") is None or head.get("box_coder") is None:
        raise ConversionError("postprocess='decode' needs raw SSD outputs with anchors= and a box coder; this "
                              f"detector's head is form {head.get('form')!r}")
    coder = box_coder_from(head["box_coder"])
    anchors = AnchorSpec.from_dict(dict(head["anchors"])).generate(coder.order).astype(np.float32)
    cx_i, cy_i, w_i, h_i = _CENTRE_SIZE_COLUMNS[coder.order]
    scales = [float(s) for s in coder.scales]
    activation = head.get("score_activation", "none")
    if activation not in ("sigmoid", "softmax", "none"):
        raise ConfigError(f"score_activation {activation!r} is not 'sigmoid', 'softmax' or 'none'")

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


def decoded_head(head: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest head of the same detector after in-graph decoding."""
    out = {k: v for k, v in head.items() if k not in ("anchors", "box_coder")}
    out.update({"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none"})
    return out
