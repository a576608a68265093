"""A deterministic synthetic "shapes" data set that serves all four tasks.

Every image holds one *main* shape (35-60 % of the image side) and up to
``max_objects - 1`` smaller ones (15-30 %), not overlapping, rotated by up to
+-17 degrees, drawn with OpenCV in one of six colours on a smooth noisy
background. Each image carries:

* ``labels``: the class of the main shape (classification);
* ``boxes`` / ``box_classes``: every shape's box in pixels (detection);
* ``masks``: a class-id mask, 0 = background, ``class + 1`` = shape (segmentation);
* ``identities``: ``class * len(COLORS) + colour`` of the main shape (embedding:
  images of one identity vary in position, size, rotation, shade and background).

Images are BGR uint8 (OpenCV's order, edgecv's default). The same ``seed``
gives the same data on every machine: only numpy's ``default_rng`` and
OpenCV's integer drawing are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecv.errors import ConfigError

__all__ = ["ShapesDataset", "make_dataset", "CLASS_NAMES", "COLORS", "NUM_IDENTITIES"]

CLASS_NAMES = ("circle", "square", "triangle", "cross")
# BGR, well separated so an identity survives the +-20 shade jitter
COLORS = ((40, 40, 220), (40, 200, 40), (220, 60, 40), (40, 220, 230), (220, 40, 220), (230, 220, 60))
NUM_IDENTITIES = len(CLASS_NAMES) * len(COLORS)


@dataclass(frozen=True)
class ShapesDataset:
    """Images and every kind of annotation for them (see module doc).

    Attributes:
        images: (N, S, S, 3) uint8 BGR.
        labels: (N,) int64 class of the main shape.
        boxes: per image a (k, 4) float32 array of x1, y1, x2, y2 pixel corners.
        box_classes: per image a (k,) int64 array of shape classes.
        masks: (N, S, S) uint8, 0 background, class + 1 inside a shape.
        identities: (N,) int64 identity of the main shape.
        class_names: names of the shape classes.
        seed: the seed it was made with.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: tuple[np.ndarray, ...]
    box_classes: tuple[np.ndarray, ...]
    masks: np.ndarray
    identities: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    seed: int = 0

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        """Image side in pixels."""
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> ShapesDataset:
        """The images at *indices* (with their annotations)."""
        idx = np.arange(len(self))[indices] if isinstance(indices, slice) else np.asarray(indices, np.int64)
        return ShapesDataset(self.images[idx], self.labels[idx], tuple(self.boxes[i] for i in idx),
                             tuple(self.box_classes[i] for i in idx), self.masks[idx], self.identities[idx],
                             self.class_names, self.seed)

    def to_validation_set(self) -> Any:
        """All annotations as a :class:`converters.ValidationSet` (BGR images)."""
        from .validate import ValidationSet

        return ValidationSet(tuple(self.images), labels=tuple(int(v) for v in self.labels), boxes=self.boxes,
                             box_classes=self.box_classes, masks=tuple(self.masks),
                             identities=tuple(int(v) for v in self.identities), color="bgr")

    def split(self, first: int) -> tuple[ShapesDataset, ShapesDataset]:
        """``(first images, the rest)``.

        Raises:
            ConfigError: *first* outside 1..N-1.
        """
        if not 0 < first < len(self):
            raise ConfigError(f"split point {first} must be between 1 and {len(self) - 1}")
        return self.subset(slice(0, first)), self.subset(slice(first, None))


def _polygon(kind: int, cx: float, cy: float, r: float, angle: float) -> list[np.ndarray]:
    """Filled polygons of one shape (circles are handled separately)."""
    def rotate(points: np.ndarray) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        rot = points @ np.array([[c, s], [-s, c]])
        return np.round(rot + (cx, cy)).astype(np.int32)

    if kind == 1:  # square
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * r * 0.75
        return [rotate(pts)]
    if kind == 2:  # triangle
        t = np.array([np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3])
        pts = np.stack([np.cos(t), -np.sin(t)], axis=1) * r
        return [rotate(pts)]
    w = 0.3 * r  # cross: two bars
    bar = np.array([[-r, -w], [r, -w], [r, w], [-r, w]], np.float64)
    return [rotate(bar), rotate(bar[:, ::-1].copy())]


def _draw(cv2, canvas: np.ndarray, mask: np.ndarray, kind: int, cx: float, cy: float, r: float,
          angle: float, color: tuple[int, int, int], value: int) -> None:
    if kind == 0:
        center, radius = (int(round(cx)), int(round(cy))), int(round(r))
        cv2.circle(canvas, center, radius, color, -1, cv2.LINE_AA)
        cv2.circle(mask, center, radius, value, -1, cv2.LINE_8)
        return
    for poly in _polygon(kind, cx, cy, r, angle):  # one call per polygon: overlaps stay filled
        cv2.fillPoly(canvas, [poly], color, cv2.LINE_AA)
        cv2.fillPoly(mask, [poly], value, cv2.LINE_8)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(50, 150, 3)
    tilt = rng.uniform(-40, 40, (2, 3))
    ramp = np.linspace(-0.5, 0.5, size)
    img = base + ramp[:, None, None] * tilt[0] + ramp[None, :, None] * tilt[1]
    img = img + rng.normal(0.0, 6.0, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def make_dataset(n: int, seed: int = 0, size: int = 64, *, max_objects: int = 3) -> ShapesDataset:
    """Make *n* images of *size* x *size* pixels, deterministic for a given *seed*.

    Args:
        n: number of images (>= 1).
        seed: random seed.
        size: image side in pixels (32-1024).
        max_objects: shapes per image, 1 (main shape only) to 6.

    Raises:
        ConfigError: an argument out of range.
    """
    from edgecv.image import import_cv2

    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or not 32 <= size <= 1024:
        raise ConfigError(f"size must be an int in 32..1024, got {size!r}")
    if not isinstance(max_objects, int) or not 1 <= max_objects <= 6:
        raise ConfigError(f"max_objects must be an int in 1..6, got {max_objects!r}")
    cv2 = import_cv2()
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    labels = np.zeros(n, np.int64)
    identities = np.zeros(n, np.int64)
    all_boxes: list[np.ndarray] = []
    all_classes: list[np.ndarray] = []
    for i in range(n):
        canvas = _background(rng, size)
        mask = masks[i]
        boxes: list[np.ndarray] = []
        classes: list[int] = []
        count = int(rng.integers(1, max_objects + 1))
        for k in range(count):
            main = k == 0
            kind = int(rng.integers(len(CLASS_NAMES)))
            color_index = int(rng.integers(len(COLORS)))
            for _attempt in range(20):
                r = rng.uniform(0.175, 0.30) * size if main else rng.uniform(0.075, 0.15) * size
                cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
                angle = float(rng.uniform(-0.3, 0.3)) if kind != 0 else 0.0
                own = np.zeros((size, size), np.uint8)
                _draw(cv2, np.zeros((size, size, 3), np.uint8), own, kind, cx, cy, r, angle, (1, 1, 1), 1)
                ys, xs = np.nonzero(own)
                if xs.size == 0:
                    continue
                box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
                if all(_box_iou(box, b) < 0.05 for b in boxes):
                    break
            else:
                continue  # no free spot for an extra shape
            shade = np.clip(np.asarray(COLORS[color_index]) + rng.integers(-20, 21, 3), 0, 255)
            _draw(cv2, canvas, mask, kind, cx, cy, r, angle, tuple(int(v) for v in shade), kind + 1)
            boxes.append(box)
            classes.append(kind)
            if main:
                labels[i] = kind
                identities[i] = kind * len(COLORS) + color_index
        images[i] = canvas
        all_boxes.append(np.stack(boxes).astype(np.float32))
        all_classes.append(np.asarray(classes, np.int64))
    return ShapesDataset(images, labels, tuple(all_boxes), tuple(all_classes), masks, identities, CLASS_NAMES, seed)
