"""Semantic segmentation: a class-id mask at the original image size, per-class areas, overlay."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, IncompatibleModelError
from ..heads import SegmentationHead
from ..image import import_cv2
from ..manifest import Preprocessing
from ..model import Model
from ..preprocess import ImageTransform
from .base import Task, describe_outputs, find_output, resolve_labels
from .family import check_segmentation_map
from .results import ClassArea, SegmentationResult

__all__ = ["Segmenter", "class_areas"]

_HIST_BLOCK_PIXELS = 1 << 23  # float32 histogram counts stay exact below 2**24 per block


def class_areas(mask: np.ndarray, num_bins: int | None = None) -> np.ndarray:
    """Pixel count per class id of an integer mask (int64 array, length ``max id + 1`` or *num_bins*).

    uint8 masks are counted with OpenCV's histogram in row blocks (no
    per-pixel temporary); other integer masks with ``np.bincount``.

    Raises:
        ConfigError: a non-integer or negative mask.
    """
    if mask.dtype.kind not in "ui":
        raise ConfigError(f"mask must hold integer class ids, got dtype {mask.dtype}")
    if mask.dtype == np.uint8 and mask.ndim == 2 and mask.size:
        cv2 = import_cv2()
        counts = np.zeros(256, np.int64)
        rows = max(1, _HIST_BLOCK_PIXELS // max(1, mask.shape[1]))
        for start in range(0, mask.shape[0], rows):
            block = mask[start:start + rows]
            hist = cv2.calcHist([block], [0], None, [256], [0, 256])
            counts += hist.reshape(-1).astype(np.int64)
        size = int(np.flatnonzero(counts)[-1]) + 1 if counts.any() else 0
        n = max(size, num_bins or 0)
        return counts[:n] if n <= 256 else np.concatenate([counts, np.zeros(n - 256, np.int64)])
    if mask.size and int(mask.min()) < 0:
        raise ConfigError("mask holds negative class ids")
    return np.bincount(mask.ravel(), minlength=num_bins or 0).astype(np.int64)


class Segmenter(Task):
    """Label every pixel.

    Reads two output forms: per-class logits or probabilities ``[1, H, W, C]``
    (NHWC) or ``[1, C, H, W]`` (NCHW), arg-maxed here into a preallocated
    mask; or class ids ``[1, H, W]`` from an ArgMax inside the model. The mask
    is mapped back to the original image (letterbox padding removed) with
    nearest-neighbour resizing (pixel-centre exact: ``cv2.INTER_NEAREST_EXACT``).

    Args:
        model_or_path: an :class:`edgecv.Model` or a model file path.
        labels: class names (sequence) or a label file path; default the manifest's.
        label_offset: leading classes without a label row (see :func:`edgecv.tasks.base.resolve_labels`).
        layout: "nhwc" or "nchw" for 4-D logits; None: the manifest head's ``layout``,
            else the axis whose size equals the label count when exactly one does,
            else the model input's layout.
        output: output tensor name or role, when the model has several outputs and no manifest role "mask".
        target, backend, num_threads, preprocessing: as for :class:`edgecv.tasks.Classifier`.

    ``segment(image, color="bgr")`` returns a :class:`SegmentationResult`
    whose ``mask`` is a new HxW array per call (uint8 when the class count is
    known and at most 256, else int32).

    Not thread-safe: one Segmenter per thread.

    Raises (at construction):
        IncompatibleModelError: no output of a supported shape (expected vs found outputs named), or
            an output that is not a per-pixel map of the input (a pose model, see :mod:`edgecv.tasks.family`).
        ConfigError: bad options or labels; a float input whose mean/std neither the model nor the
            arguments state.
    """

    task_name = "segmentation"
    task_title = "Segmenter"

    def __init__(self, model_or_path: Model | str | os.PathLike, *, labels: Sequence[str] | str | os.PathLike | None = None,
                 label_offset: int | None = None, layout: str | None = None, output: str | int | None = None,
                 target: Any = None, backend: str | None = None, num_threads: int | None = None,
                 preprocessing: Preprocessing | dict | None = None) -> None:
        if layout is not None and layout not in ("nhwc", "nchw"):
            raise ConfigError(f"layout must be 'nhwc' or 'nchw', got {layout!r}")
        super().__init__(model_or_path, target=target, backend=backend, num_threads=num_threads,
                         preprocessing=preprocessing)
        try:
            self._setup(labels, label_offset, layout, output)
            self._require_stated()
        except BaseException:
            self._close_owned()
            raise

    def _setup(self, labels, label_offset, layout, output) -> None:
        model = self.model
        expected = "a mask output: logits [1,H,W,C] / [1,C,H,W] (C >= 2) or class ids [1,H,W] (integer)"
        self._out = find_output(model, "mask", task="Segmenter", expected=expected, name=output)
        spec = model.outputs[self._out]
        shape = spec.shape
        head = model.manifest.head_as(SegmentationHead)     # checked when the manifest was read
        if len(shape) == 3 and shape[0] == 1 and spec.np_dtype.kind in "ui":
            self.output_form = "class_ids"
            self.num_classes: int | None = None
            h, w = shape[1], shape[2]
            self.labels, self.label_offset = resolve_labels(labels, label_offset, model.manifest, None,
                                                            model.warn)
            if self.labels is not None:
                self.num_classes = len(self.labels) + self.label_offset
        elif len(shape) == 4 and shape[0] == 1 and (spec.np_dtype.kind == "f" or spec.quantization is not None):
            # float logits, or quantized (int8/uint8) logits that Model.invoke dequantizes
            self.output_form = "logits"
            provisional, _ = resolve_labels(labels, label_offset, model.manifest, None, lambda message: None)
            if layout is None:
                layout = head.layout
            if layout is None and provisional is not None:
                n = len(provisional)
                fits = [lay for lay, c in (("nhwc", shape[3]), ("nchw", shape[1]))
                        if c in (n, n + 1)]
                layout = fits[0] if len(fits) == 1 else None
            if layout is None:
                layout = self.preprocessor.layout
            if layout not in ("nhwc", "nchw"):
                raise ConfigError(f"layout must be 'nhwc' or 'nchw', got {layout!r}")
            c, h, w = (shape[3], shape[1], shape[2]) if layout == "nhwc" else (shape[1], shape[2], shape[3])
            if c < 2:
                raise IncompatibleModelError(f"Segmenter: expected {expected}; found outputs {describe_outputs(model)}")
            self.num_classes = int(c)
            self.labels, self.label_offset = resolve_labels(labels, label_offset, model.manifest,
                                                            self.num_classes, model.warn)
        else:
            raise IncompatibleModelError(f"Segmenter: expected {expected}; found outputs {describe_outputs(model)}")
        self.layout = layout if self.output_form == "logits" else None
        check_segmentation_map(spec, (int(h), int(w)), (self.preprocessor.height, self.preprocessor.width))
        self.mask_height, self.mask_width = int(h), int(w)
        small = np.uint8 if self.num_classes is not None and self.num_classes <= 256 else np.int32
        self.mask_dtype = np.dtype(small)
        self._ids = np.zeros((h, w), np.intp) if self.output_form == "logits" else None
        self._small = np.zeros((h, w), small)

    def _label(self, class_id: int) -> str | None:
        if self.labels is None:
            return None
        i = class_id - self.label_offset
        return self.labels[i] if 0 <= i < len(self.labels) else None

    def _small_mask(self, out: np.ndarray) -> np.ndarray:
        if self.output_form == "logits":
            logits = out[0]
            np.argmax(logits, axis=2 if self.layout == "nhwc" else 0, out=self._ids)
            np.copyto(self._small, self._ids, casting="unsafe")
        else:
            ids = out[0]
            if self.mask_dtype == np.uint8 and int(ids.max()) > 255:
                raise IncompatibleModelError(f"Segmenter: the model produced class id {int(ids.max())} but its "
                                             f"labels list {self.num_classes} classes; pass the right labels")
            np.copyto(self._small, ids, casting="unsafe")
        return self._small

    def _to_original(self, small: np.ndarray, t: ImageTransform) -> np.ndarray:
        cv2 = import_cv2()
        sy = self.mask_height / t.input_height
        sx = self.mask_width / t.input_width
        valid = small
        if t.pad_x or t.pad_y:
            y0 = int(round(t.pad_y * sy))
            x0 = int(round(t.pad_x * sx))
            y1 = int(round((t.pad_y + t.src_height * t.scale_y) * sy))
            x1 = int(round((t.pad_x + t.src_width * t.scale_x) * sx))
            valid = small[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        mask = np.empty((t.src_height, t.src_width), small.dtype)
        if valid.shape == mask.shape:
            np.copyto(mask, valid)
            return mask
        result = cv2.resize(valid, (t.src_width, t.src_height), dst=mask, interpolation=cv2.INTER_NEAREST_EXACT)
        if result is not mask:
            np.copyto(mask, result)
        return mask

    def segment(self, image: Any, *, color: str = "bgr") -> SegmentationResult:
        """Segment one image (HxWx3 uint8 array or path; *color* is its channel order).

        Raises:
            ConfigError: unusable image.
            InferenceError: the runtime failed, or this object is in use by another thread.
        """
        with self._exclusive():
            transform, outputs, t0, t1, t2 = self._forward(image, color)
            mask = self._to_original(self._small_mask(outputs[self._out]), transform)
            counts = class_areas(mask)
            total = float(mask.size)
            areas = [ClassArea(i, self._label(i), int(n), int(n) / total) for i, n in enumerate(counts.tolist()) if n]
            areas.sort(key=lambda a: (-a.pixels, a.class_id))
            timing = self._timing(t0, t1, t2)
        return SegmentationResult(mask, tuple(areas), self.labels,
                                  timing)

    __call__ = segment

    def overlay(self, image: Any, mask: np.ndarray, alpha: float = 0.5, *, color: str = "bgr",
                background: int | None = 0) -> np.ndarray:
        """A copy of *image* with the mask's classes blended in (see :func:`edgecv.draw.draw_mask`)."""
        from ..draw import draw_mask

        return draw_mask(image, mask, alpha=alpha, color=color, background=background)
