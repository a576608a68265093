"""Object detection with SSD-style models, in the three output forms they come in.

- ``"postprocess"``: the four outputs of TFLite_Detection_PostProcess (boxes,
  classes, scores, count): boxes already decoded and suppressed in-model.
- ``"decoded"``: per-anchor boxes (already decoded) + per-anchor class scores: NMS here.
- ``"raw"``: per-anchor box encodings + class scores + an anchor set and a
  box coder: decoded here (:class:`edgecv.boxes.BoxDecoder`), then NMS.

Output roles are identified by the manifest (``Manifest.outputs``), by the
``outputs=`` argument, by the TFLite_Detection_PostProcess naming pattern
(``X``, ``X:1``, ``X:2``, ``X:3`` = boxes, classes, scores, count), or by
outputs literally named after their role ("boxes", "scores", "classes",
"count") -- never by guessing from tensor sizes.

Class ids follow TFLite_Detection_PostProcess: the background column (if any)
is removed, so the first real class is 0 in every form. The settings are one
:class:`edgecv.heads.DetectionHead` (arguments over the manifest over
:data:`DEFAULTS`); the per-form post-processing lives in
:mod:`edgecv.tasks.detection_heads`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..boxes import BoxDecoder
from ..errors import ConfigError, IncompatibleModelError
from ..heads import BOX_FORMATS, DETECTION_FORMS, SCORE_ACTIVATIONS, DetectionHead
from ..labels import is_placeholder
from ..manifest import Preprocessing
from ..model import Model
from ..preprocess import ImageTransform
from ..suppression import dequantize
from ..task_registry import get_task
from .base import Task, describe_outputs, resolve_labels
from .detection_heads import (
    DenseHead,
    PostprocessHead,
    anchors_from,
    box_coder_from,
    is_quantized,
    stored_quantization,
)
from .results import Box, Detection, DetectionResult
from .sanity import detection_warnings, missing_detection_settings

__all__ = ["Detector", "DenseHead", "PostprocessHead", "FORMS", "ROLES", "SCORE_ACTIVATIONS", "box_coder_from",
           "anchors_from"]

log = logging.getLogger("edgecv")

FORMS = DETECTION_FORMS
ROLES = get_task("detection").roles
#: what the Detector assumes for what neither the arguments nor the manifest state
DEFAULTS = DetectionHead(score_threshold=0.5, iou_threshold=0.5, max_detections=100, box_normalized=True)
#: Rows of the box buffer when the model's outputs have no fixed size (it grows with the frames).
_FIRST_BUFFER_ROWS = 1024
_FORM_ROLES = {"postprocess": ROLES, "decoded": ("boxes", "scores"), "raw": ("boxes", "scores")}


# --------------------------------------------------------------------------- the task

def _postprocess_pattern(names: Sequence[str]) -> dict[str, str] | None:
    present = set(names)
    for base in names:
        if all(f"{base}:{i}" in present for i in (1, 2, 3)):
            return {"boxes": base, "classes": f"{base}:1", "scores": f"{base}:2", "count": f"{base}:3"}
    return None


def _checked_outputs(outputs: Any) -> Mapping[str, str] | None:
    """The ``outputs=`` argument: a role -> output name mapping over the Detector's roles.

    Raises:
        ConfigError: not a mapping, or an unknown role.
    """
    if outputs is None:
        return None
    if not isinstance(outputs, Mapping):
        raise ConfigError(f"outputs must be a dict of role -> output name, got {type(outputs).__name__}")
    unknown = [r for r in outputs if r not in ROLES]
    if unknown:
        raise ConfigError(f"unknown output role {unknown[0]!r}; roles are {ROLES}")
    return outputs


class Detector(Task):
    """Find objects: boxes in original-image pixels, scores, class ids and labels.

    Args:
        model_or_path: an :class:`edgecv.Model` or a model file path.
        labels: class names (sequence) or a label file path; default the manifest's.
            Index 0 is the first real class (background removed, as
            TFLite_Detection_PostProcess numbers them).
        score_threshold: keep ``score >= score_threshold`` (the rule of every edgecv task);
            None: manifest head, else 0.5.
        iou_threshold: NMS suppresses IoU ``> iou_threshold``; None: manifest head, else 0.5.
        max_detections: at most this many; None: manifest head, else 100.
        anchors: for raw outputs: an :class:`edgecv.anchors.AnchorSpec` (generated in the
            box coder's order), its dict, or an ``(N, 4)`` array already in the box coder's
            order; None: the manifest head's.
        box_coder: for raw outputs: an :class:`edgecv.boxes.BoxCoder` or a dict
            (see :func:`box_coder_from`); None: the manifest head's (required then).
        class_agnostic: one NMS across classes (each anchor keeps its best class)
            instead of per-class NMS. Not used by the postprocess form (NMS ran in-model).
        label_offset: leading class ids without a label row.
        outputs: role -> output name, e.g. ``{"boxes": "boxes", "scores": "scores"}``;
            overrides the manifest's roles.
        form: "postprocess", "decoded" or "raw"; None: the manifest head's, else
            "postprocess" when boxes/classes/scores/count are identified, "raw" when
            anchors are known; boxes + scores without anchors need it stated (ConfigError).
        score_activation: "sigmoid", "softmax" or "none" for decoded/raw scores; None:
            the manifest head's; when neither states it the Detector refuses to guess (ConfigError).
        background_class: score column that is background (e.g. 0), or ``"none"``
            (:data:`edgecv.heads.NO_BACKGROUND`: every column is a class); None: the manifest
            head's ``background_class``; when neither states it and the scores have two or more
            columns, the Detector refuses to guess (ConfigError naming what the model shows).
        box_format: "xyxy" or "yxyx" for decoded/postprocess boxes; None: the manifest
            head (``box_format`` or TFLite metadata ``box_index``), else "yxyx" for the
            postprocess op (its documented output); decoded boxes need it stated (ConfigError).
            Raw outputs need none: the box coder fixes their layout.
        box_normalized: whether decoded/postprocess boxes are 0..1 of the input (True) or
            input pixels; None: the manifest head, else True.
        head: the same settings as one :class:`edgecv.heads.DetectionHead` (or its dict), as the
            CLI builds them from its flags; a keyword above wins over it, and it wins over the manifest.
        target, backend, num_threads, preprocessing: as for :class:`edgecv.tasks.Classifier`.

    The settings in effect are ``detector.head`` (a DetectionHead: arguments over the
    manifest over the defaults in :data:`DEFAULTS`).

    ``detect(image, color="bgr")`` returns a :class:`DetectionResult`; boxes are
    mapped back through the resize/letterbox to original pixels, clipped to the
    image; boxes that fall entirely outside the image are dropped.

    One Detector per video stream: with ``max_detections`` below the number of candidates, the
    decoded and raw forms remember from each frame how deep in the score ranking NMS found
    its last kept box, and at a low score threshold a score cut, and the next frame starts
    there (:class:`edgecv.tasks.detection_heads.DenseHead`). It only saves time: every frame's
    detections are exactly those of a fresh Detector, whatever the previous frame was.

    Not thread-safe: one Detector per thread.

    Settings the first frame's outputs contradict (a softmax over scores that already sum to 1,
    normalized boxes far outside 0..1, ...) are warned about in ``detector.model.warnings`` and
    the log (:mod:`edgecv.tasks.sanity`). Labels are checked against the number of classes
    (for the postprocess op, its num_classes option); ``???`` rows are classes without
    a label (see :mod:`edgecv.labels`).

    Raises (at construction):
        IncompatibleModelError: outputs that fit none of the forms (expected vs found outputs named).
        ConfigError: bad options or labels; a result-changing setting (form, background_class,
            score_activation, box_format of decoded boxes, a float input's mean/std) that neither the model
            nor the arguments state (one error naming them all).
    """

    task_name = "detection"
    task_title = "Detector"

    def __init__(self, model_or_path: Model | str | os.PathLike, *, labels: Sequence[str] | str | os.PathLike | None = None,
                 score_threshold: float | None = None, iou_threshold: float | None = None,
                 max_detections: int | None = None, anchors: Any = None, box_coder: Any = None,
                 class_agnostic: bool = False, label_offset: int | None = None,
                 outputs: Mapping[str, str] | None = None, form: str | None = None,
                 score_activation: str | None = None, background_class: int | str | None = None,
                 box_format: str | None = None, box_normalized: bool | None = None,
                 head: DetectionHead | Mapping[str, Any] | None = None, target: Any = None,
                 backend: str | None = None, num_threads: int | None = None,
                 preprocessing: Preprocessing | dict | None = None) -> None:
        keywords = DetectionHead(form=form, anchors=anchors, box_coder=box_coder, box_format=box_format,
                                 box_normalized=box_normalized, score_activation=score_activation,
                                 background_class=background_class, score_threshold=score_threshold,
                                 iou_threshold=iou_threshold, max_detections=max_detections)
        stated = keywords.merged_over(DetectionHead.from_dict(head))
        outputs = _checked_outputs(outputs)
        super().__init__(model_or_path, target=target, backend=backend, num_threads=num_threads,
                         preprocessing=preprocessing)
        try:
            self._setup(stated, labels, label_offset, outputs, bool(class_agnostic))
        except BaseException:
            self._close_owned()
            raise

    # -- construction ------------------------------------------------------------
    def _roles(self, outputs: Mapping[str, str] | None) -> dict[str, int]:
        model = self.model
        names = [s.name for s in model.outputs]
        mapping = {**dict(model.manifest.outputs), **dict(outputs or {})}
        mapping = {k: v for k, v in mapping.items() if k in ROLES}
        if not mapping:
            mapping = _postprocess_pattern(names) or {r: r for r in ROLES if r in names}
        roles = {}
        for role, name in mapping.items():
            if name not in names:
                raise IncompatibleModelError(f"Detector: output {name!r} (role {role!r}) not found; found outputs "
                                             f"{describe_outputs(model)}")
            roles[role] = names.index(name)
        return roles

    def _setup(self, stated: DetectionHead, labels, label_offset, outputs, class_agnostic: bool) -> None:
        model = self.model
        head = stated.merged_over(model.manifest.head_as(DetectionHead)).merged_over(DEFAULTS)
        self.score_threshold = head.score_threshold
        self.iou_threshold = head.iou_threshold
        self.max_detections = head.max_detections
        self.class_agnostic = class_agnostic
        roles = self._roles(outputs)
        self._roles_found = roles
        self.form = self._form(head, roles)
        if self.form == "postprocess":
            self._require_stated()          # (decoded/raw: one error with the head's unstated settings)
        # unstated: the postprocess op's documented yxyx; the raw decoder's xyxy (decoded boxes must state it)
        columns = head.box_columns or BOX_FORMATS["yxyx" if self.form == "postprocess" else "xyxy"]
        self.box_normalized = head.box_normalized
        if self.form == "postprocess":
            self._head: Any = PostprocessHead(columns)
            self._out = tuple(roles[r] for r in ROLES)
            self.num_classes: int | None = None
            rows = self._head.check_outputs(*(model.outputs[i] for i in self._out))
        else:
            rows = self._setup_dense(roles, head, columns)
        self.head = replace(head, form=self.form, box_format=columns)
        if self.num_classes is None:
            from .postprocess_classes import postprocess_num_classes

            self.num_classes = postprocess_num_classes(model)
        self.labels, self.label_offset = resolve_labels(labels, label_offset, model.manifest, self.num_classes,
                                                        model.warn)
        self._checked = self.form == "postprocess"    # the first dense frame is checked (sanity.py)
        # sized by what one frame can return (never from max_detections alone: 10**9 would be 30 GiB); grown in
        # _to_result if per-class NMS returns one box for several classes
        self._mapped = np.zeros((max(1, min(self.max_detections, rows if rows > 0 else _FIRST_BUFFER_ROWS)), 4),
                                np.float64)

    def _form(self, head: DetectionHead, roles: Mapping[str, int]) -> str:
        """The output form: stated, else told by the roles found (and whether anchors are known).

        Raises:
            IncompatibleModelError: the outputs do not have the roles the form needs.
        """
        form = head.form
        if form is None:
            if set(ROLES) <= set(roles):
                form = "postprocess"
            elif {"boxes", "scores"} <= set(roles):
                form = "raw" if head.anchors is not None else "decoded"
        if form is None or not set(_FORM_ROLES[form]) <= set(roles):
            wanted = (f"form {form!r} needs outputs with roles {_FORM_ROLES[form]}" if form is not None else
                      "outputs boxes + scores (decoded or raw SSD, with anchors for raw) or boxes, classes, scores, "
                      "count (TFLite_Detection_PostProcess)")
            found = {r: self.model.outputs[i].name for r, i in roles.items()}
            raise IncompatibleModelError(
                f"Detector: expected {wanted}; found outputs {describe_outputs(self.model)} with roles {found}; "
                "map them with outputs={'boxes': ..., 'scores': ...} or a manifest")
        return form

    def _decoder(self, head: DetectionHead, num_boxes: int) -> BoxDecoder:
        """The raw form's decoder from the head's anchors and box coder.

        Raises:
            ConfigError: anchors or box coder missing.
            IncompatibleModelError: the anchors do not match the model's box count.
        """
        if head.anchors is None:
            raise ConfigError("raw SSD outputs need anchors: pass anchors=AnchorSpec(...) or an (N, 4) array, "
                              "or convert the model with its anchors in the manifest")
        if head.box_coder is None:
            raise ConfigError("raw SSD outputs need a box coder: pass box_coder=BoxCoder(order='yxhw', "
                              "scales=(10, 10, 5, 5)) (TF OD API) or BoxCoder.from_variances(0.1, 0.2) (UltraFace)")
        priors = anchors_from(head.anchors, head.box_coder.order)
        if priors.shape[0] != num_boxes:
            raise IncompatibleModelError(f"Detector: {priors.shape[0]} anchors but the model outputs {num_boxes} "
                                         "boxes; check the anchor spec against the model")
        return BoxDecoder(priors, head.box_coder)

    def _setup_dense(self, roles: Mapping[str, int], head: DetectionHead, columns: tuple[int, ...]) -> int:
        model = self.model
        bspec, sspec = model.outputs[roles["boxes"]], model.outputs[roles["scores"]]
        if bspec.shape[-1:] != (4,) or len(sspec.shape) < 2:
            raise IncompatibleModelError(f"Detector: expected boxes [1, N, 4] and scores [1, N, C]; found outputs "
                                         f"{describe_outputs(model)}")
        n = int(np.prod(bspec.shape[:-1]))
        c = int(sspec.shape[-1])
        if int(np.prod(sspec.shape[:-1])) != n:
            raise IncompatibleModelError(f"Detector: boxes output has {n} rows but scores output "
                                         f"{list(sspec.shape)} does not; found outputs {describe_outputs(model)}")
        missing = self.unstated + missing_detection_settings(head, c, head.anchors is not None)
        if missing:
            raise self._unstated_error(missing, f"outputs {describe_outputs(model)}, so the scores output "
                                                f"{sspec.name!r} has {c} column(s) per box")
        decoder = self._decoder(head, n) if self.form == "raw" else None
        self._head = DenseHead(n, c, score_activation=head.score_activation, background_class=head.background_column,
                               decoder=decoder, box_columns=columns, class_agnostic=self.class_agnostic)
        self._out = (roles["boxes"], roles["scores"])
        # 8/16-bit outputs with one scale are read as stored: thresholds on the integers, candidates dequantized
        quant = (stored_quantization(bspec), stored_quantization(sspec))
        readable = all(q is not None or not is_quantized(spec) for q, spec in zip(quant, (bspec, sspec)))
        self._dequantize = not readable or head.score_activation == "softmax"
        self._quant = (None, None) if self._dequantize else quant
        self.num_classes = self._head.num_classes
        return n

    # -- running -----------------------------------------------------------------
    def _label(self, class_id: int) -> str | None:
        if self.labels is None:
            return None
        i = class_id - self.label_offset
        label = self.labels[i] if 0 <= i < len(self.labels) else None
        return None if is_placeholder(label) else label

    def _check_first_frame(self, outputs: tuple[np.ndarray, ...]) -> None:
        """Warn (``model.warnings`` and the log) about settings the first frame's outputs contradict."""
        self._checked = True
        arrays = []
        for index, q in zip(self._out, self._quant):
            a = outputs[index]
            arrays.append(np.asarray(a, np.float32) if q is None else dequantize(a, q))
        head = self._head
        decode = None if head.decoder is None else head.decoder.decode_rows_checked
        for message in detection_warnings(arrays[0].reshape(-1, 4), arrays[1].reshape(head.num_anchors, -1),
                                          self.head, background_column=head.background_class, decode=decode):
            self.model.warn(message)

    def _raw_detections(self, outputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.form == "postprocess":
            b, c, s, n = (outputs[i] for i in self._out)
            return self._head.run(b, c, s, n, score_threshold=self.score_threshold,
                                  max_detections=self.max_detections)
        return self._head.run(outputs[self._out[0]], outputs[self._out[1]], score_threshold=self.score_threshold,
                              iou_threshold=self.iou_threshold, max_detections=self.max_detections,
                              box_quantization=self._quant[0], score_quantization=self._quant[1])

    def _to_result(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                   t: ImageTransform) -> list[Detection]:
        k = boxes.shape[0]
        if k == 0:
            return []
        if k > self._mapped.shape[0]:
            self._mapped = np.zeros((k, 4), np.float64)
        mapped = t.boxes_to_original(boxes, normalized=self.box_normalized, out=self._mapped[:k])
        # inverted corners from the model are normalised, as NMS does (min/max per axis, in place)
        for lo, hi in ((0, 2), (1, 3)):
            swap = mapped[:, lo] > mapped[:, hi]
            if swap.any():
                mapped[swap, lo], mapped[swap, hi] = mapped[swap, hi], mapped[swap, lo].copy()
        detections = []
        for (x1, y1, x2, y2), score, cls in zip(mapped.tolist(), scores.tolist(), classes.tolist()):
            if x2 <= x1 or y2 <= y1:
                continue  # entirely outside the image (e.g. in the letterbox padding)
            detections.append(Detection(Box(x1, y1, x2, y2), score, cls, self._label(cls)))
        return detections

    def detect(self, image: Any, *, color: str = "bgr") -> DetectionResult:
        """Detect objects in one image (HxWx3 uint8 array or path; *color* is its channel order).

        Raises:
            ConfigError: unusable image.
            InferenceError: the runtime failed, or this object is in use by another thread.
            IncompatibleModelError: scores turned out not to be probabilities (see ``score_activation``).
        """
        with self._exclusive():
            transform, outputs, t0, t1, t2 = self._forward(image, color)
            if not self._checked:
                self._check_first_frame(outputs)
            boxes, scores, classes = self._raw_detections(outputs)
            detections = self._to_result(boxes, scores, classes, transform)
            timing = self._timing(t0, t1, t2)
        return DetectionResult(tuple(detections), transform.src_width, transform.src_height,
                               timing)

    __call__ = detect
