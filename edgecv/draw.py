"""Drawing helpers: detection boxes with labels and scores, segmentation masks (OpenCV, imported lazily).

Every function returns a new HxWx3 uint8 image in the colour order of the
input (``color="bgr"`` by default) and leaves the input untouched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ConfigError
from .image import as_uint8_image, import_cv2

__all__ = ["color_palette", "draw_detections", "draw_mask"]


def color_palette(num_colors: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``(num_colors, 3)`` uint8 RGB, stable for every class id.

    Class id bits are interleaved into the high bits of R, G and B, so
    neighbouring ids get clearly different colours (0 is black).

    Raises:
        ConfigError: *num_colors* below 1.
    """
    if not isinstance(num_colors, int) or num_colors < 1:
        raise ConfigError(f"num_colors must be a positive int, got {num_colors!r}")
    ids = np.arange(num_colors, dtype=np.int64)
    palette = np.zeros((num_colors, 3), np.int64)
    value = ids.copy()
    for shift in range(7, -1, -1):
        for channel in range(3):
            palette[:, channel] |= ((value >> channel) & 1) << shift
        value >>= 3
    return palette.astype(np.uint8)


def _in_order(rgb: np.ndarray, color: str) -> np.ndarray:
    return rgb if color == "rgb" else rgb[..., ::-1]


def _detections_of(result_or_detections: Any) -> Iterable[Any]:
    return getattr(result_or_detections, "detections", result_or_detections)


def draw_detections(image: Any, result_or_detections: Any, *, color: str = "bgr", thickness: int = 2,
                    font_scale: float = 0.5, show_scores: bool = True) -> np.ndarray:
    """Boxes with ``label score`` captions, one stable colour per class id; non-finite boxes are skipped.

    Args:
        image: HxWx3 uint8 array or path (a path is read as BGR).
        result_or_detections: a :class:`DetectionResult` or an iterable of :class:`Detection`.
        color: channel order of *image*.

    Raises:
        ConfigError: unusable image or arguments.
    """
    if thickness < 1:
        raise ConfigError(f"thickness must be >= 1, got {thickness!r}")
    cv2 = import_cv2()
    pixels, color = as_uint8_image(image, color)
    canvas = np.ascontiguousarray(pixels).copy()
    palette = _in_order(color_palette(256), color)
    for det in _detections_of(result_or_detections):
        box = det.box
        if not all(math.isfinite(float(v)) for v in (box.x1, box.y1, box.x2, box.y2)):
            continue  # a NaN or infinite box (a broken model) has nowhere to be drawn
        colour = tuple(int(v) for v in palette[(int(det.class_id) + 1) % 256])
        p1 = (int(round(box.x1)), int(round(box.y1)))
        p2 = (int(round(box.x2)), int(round(box.y2)))
        cv2.rectangle(canvas, p1, p2, colour, thickness, cv2.LINE_AA)
        name = det.label if det.label is not None else str(det.class_id)
        caption = f"{name} {det.score:.2f}" if show_scores else name
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 2, top + th + base + 2), colour, -1)
        luminance = 0.299 * colour[2 if color == "bgr" else 0] + 0.587 * colour[1] + 0.114 * colour[0 if color == "bgr" else 2]
        ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
        cv2.putText(canvas, caption, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1,
                    cv2.LINE_AA)
    return canvas


def draw_mask(image: Any, mask: np.ndarray, *, alpha: float = 0.5, color: str = "bgr",
              background: int | None = 0, palette: np.ndarray | None = None) -> np.ndarray:
    """Blend a class-id mask over *image*: ``out = (1 - alpha) * image + alpha * colour[class]``.

    Args:
        image: HxWx3 uint8 array or path.
        mask: HxW integer class ids, same size as the image.
        alpha: 0 (image only) .. 1 (colours only).
        background: class id left unblended (None blends every class).
        palette: ``(N, 3)`` uint8 RGB colours per class id; default :func:`color_palette`.

    Raises:
        ConfigError: size mismatch, bad alpha, non-integer mask or ids beyond the palette.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha must be in 0..1, got {alpha!r}")
    pixels, color = as_uint8_image(image, color)
    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype.kind not in "ui":
        raise ConfigError("mask must be an HxW integer numpy array of class ids")
    if mask.shape != pixels.shape[:2]:
        raise ConfigError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                          f"{pixels.shape[1]}x{pixels.shape[0]}; segment this image or resize the mask with nearest-neighbour")
    colours = color_palette(256) if palette is None else np.asarray(palette, np.uint8)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ConfigError("palette must be an (N, 3) array of RGB colours")
    if mask.size and int(mask.max()) >= colours.shape[0]:
        raise ConfigError(f"mask holds class id {int(mask.max())} but the palette has {colours.shape[0]} colours")
    cv2 = import_cv2()
    painted = _in_order(colours, color)[mask]
    blended = cv2.addWeighted(pixels, 1.0 - float(alpha), painted, float(alpha), 0.0)
    if background is not None:
        keep = mask == background
        blended[keep] = pixels[keep]
    return blended
