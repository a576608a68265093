"""Images in: validate, read from disk, and bring to 8-bit colour.

Accepted without conversion: HxWx3 uint8 (the fast path). Converted, and
documented as such: HxW or HxWx1 grayscale (replicated to 3 channels), HxWx4
with alpha (alpha dropped), uint16 (scaled by 1/257 to 0-255).
Refused with :class:`ConfigError`: float and other dtypes (scale them to
uint8 yourself: the intended range is ambiguous), zero-size images, other
shapes, and images larger than ``MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import BackendNotAvailable, ConfigError

__all__ = ["read_image", "as_uint8_image", "import_cv2", "COLORS", "MAX_IMAGE_PIXELS"]

COLORS = ("bgr", "rgb")
MAX_IMAGE_PIXELS = 20_000 * 20_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def import_cv2():
    """Import OpenCV lazily.

    Raises:
        BackendNotAvailable: OpenCV is not installed.
    """
    try:
        import cv2
    except ImportError as exc:
        raise BackendNotAvailable("OpenCV is needed for image input; pip install opencv-python-headless") from exc
    return cv2


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as HxWx3 uint8 BGR (alpha dropped, 16-bit scaled, grayscale expanded).

    Raises:
        ConfigError: file missing, unreadable or not a decodable image.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"image {p} does not exist")
    cv2 = import_cv2()
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise ConfigError(f"cannot read image {p}: {exc.strerror or exc}") from exc
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV's decoding limit
        raise ConfigError(f"cannot decode image {p}: it is corrupt or larger than OpenCV decodes "
                          f"({str(exc).strip().splitlines()[-1]})") from exc
    if image is None:
        raise ConfigError(f"cannot decode image {p}; is it a JPEG/PNG/BMP file and not truncated?")
    return as_uint8_image(image, "bgr")[0]


def as_uint8_image(image: object, color: str = "bgr") -> tuple[np.ndarray, str]:
    """Validate *image* and return ``(HxWx3 uint8 array, color)``.

    The fast path (HxWx3 uint8) returns the array itself with no copy. A path
    is read with :func:`read_image` and is BGR whatever *color* says.

    Raises:
        ConfigError: wrong type, dtype, shape, colour name, or zero-size / too large.
    """
    if color not in COLORS:
        raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if isinstance(image, (str, os.PathLike)):
        return read_image(image), "bgr"
    if not isinstance(image, np.ndarray):
        raise ConfigError(f"image must be a numpy array or a file path, got {type(image).__name__}")
    # shape and size first, so nothing is converted (or allocated) for an image that will be refused
    if image.size == 0:
        raise ConfigError(f"image is empty (shape {image.shape})")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise ConfigError(f"image shape {image.shape} is not HxW, HxWx1, HxWx3 or HxWx4")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ConfigError(f"image {image.shape[1]}x{image.shape[0]} exceeds {MAX_IMAGE_PIXELS} pixels")
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image, color                       # the fast path: no copy
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ConfigError(f"image dtype {image.dtype} is not supported; pass uint8 pixels 0-255 "
                          f"(e.g. np.clip(img * 255, 0, 255).astype(np.uint8) for 0-1 floats)")
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3]), color
    if image.ndim == 3 and image.shape[2] == 3:
        return image, color
    cv2 = import_cv2()
    gray = image[:, :, 0] if image.ndim == 3 else image
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2BGR), color
