"""Calibration and validation inputs, preprocessed exactly as the runtime does it.

Images go through :class:`edgecv.Preprocessor`, the very code the device runs
(resize, colour order, layout, ``(x - mean) / std``), into a float32 buffer of
the source model's input shape. What comes out is what the float model sees
and what the quantizers calibrate on.

Accepted calibration data (:func:`calibration_set`):

* a folder of images (``.jpg``, ``.png``, ``.bmp``, ...; read as BGR);
* a uint8 array ``(N, H, W, 3)`` of images, any H and W (resized like the runtime does);
* a float array ``(N, *input_shape[1:])`` of tensors that are **already
  preprocessed** (the model's input layout, normalised): used as they are;
* any re-iterable (list, tuple, ...) of such images, image paths, float
  tensors ``input_shape[1:]`` / ``input_shape``, or batches of them.

Size guidance: 100-500 representative images (the device's real scenes,
lighting and sizes) calibrate well; at least ``MIN_CALIBRATION_SAMPLES``
distinct inputs are required, and fewer than 50 gets a warning.

Each input is hashed (SHA-256 of its preprocessed float32 bytes) so an
overlap between calibration and validation sets can be detected.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import CalibrationError, ConfigError, EdgeCVError
from edgecv.image import IMAGE_SUFFIXES, as_uint8_image, read_image
from edgecv.manifest import Preprocessing
from edgecv.preprocess import Preprocessor, input_affine
from edgecv.specs import TensorSpec

__all__ = [
    "CalibrationSet",
    "calibration_set",
    "Preprocess",
    "iter_inputs",
    "list_image_folder",
    "random_crops",
    "MIN_CALIBRATION_SAMPLES",
    "RECOMMENDED_CALIBRATION_SAMPLES",
]

log = logging.getLogger("edgecv.converters")

MIN_CALIBRATION_SAMPLES = 10
RECOMMENDED_CALIBRATION_SAMPLES = (100, 500)
_WARN_BELOW = 50


def random_crops(image: np.ndarray, count: int, *, aspect: float, min_scale: float = 0.3,
                 seed: int = 0) -> list[np.ndarray]:
    """*count* crops of *image* at random places and sizes: calibration images from a few photos.

    Each crop is ``min_scale``..1 of the image's width wide and ``aspect`` (height / width, e.g. 0.75 for a
    320x240 input) as high, capped at the image's height; the same *seed* gives the same crops.

    Raises:
        ConfigError: *count* < 1, *aspect* <= 0 or *min_scale* outside (0, 1].
    """
    if count < 1 or not aspect > 0 or not 0 < min_scale <= 1:
        raise ConfigError(f"random_crops needs count >= 1, aspect > 0 and 0 < min_scale <= 1 "
                          f"(got {count}, {aspect}, {min_scale})")
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    crops = []
    for _ in range(count):
        cw = max(1, int(rng.uniform(min_scale, 1.0) * w))
        ch = max(1, min(h, int(cw * aspect)))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crops.append(np.ascontiguousarray(image[y:y + ch, x:x + cw]))
    return crops


class Preprocess:
    """Image -> float32 model input, through the runtime's :class:`edgecv.Preprocessor`.

    Raises (at construction):
        IncompatibleModelError: the input is not an image tensor.
        ConfigError: mean/std do not fit the channel count.
    """

    def __init__(self, spec: TensorSpec, preprocessing: Preprocessing, color: str = "bgr") -> None:
        if color not in ("bgr", "rgb"):
            raise ConfigError(f"color must be 'bgr' or 'rgb', got {color!r}")
        self.spec = spec
        self.shape = tuple(spec.shape)
        self.color = color
        self._buffer = np.zeros(self.shape, np.float32)
        self._pre = Preprocessor(spec, self._buffer, preprocessing)
        a, b = input_affine(spec, preprocessing)
        at_0, at_255 = np.broadcast_arrays(b, 255.0 * a + b)
        self.value_range = (float(min(at_0.min(), at_255.min())), float(max(at_0.max(), at_255.max())))

    def __call__(self, image: Any) -> np.ndarray:
        """A fresh (1, ...) float32 input for one image (array or path)."""
        self._pre(image, self.color)
        return self._buffer.copy()


def list_image_folder(folder: Path) -> list[Path]:
    """Image files directly in *folder*, sorted by name.

    Raises:
        CalibrationError: not a folder.
    """
    if not folder.is_dir():
        raise CalibrationError(f"{folder} is not a folder of images")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _is_one_shot(data: Any) -> bool:
    try:
        return iter(data) is data
    except TypeError:
        return False


def iter_inputs(data: Any, pre: Preprocess, what: str) -> Iterator[np.ndarray]:
    """Yield (1, ...) float32 inputs from any accepted form of *data* (see module doc).

    Raises:
        CalibrationError: unusable data (wrong type, shape, dtype, unreadable image).
    """
    if isinstance(data, (str, os.PathLike)):
        folder = Path(data)
        if not folder.is_dir():
            raise CalibrationError(f"{what} path {folder} is not a folder; pass a folder of images, an array "
                                   "or a list of images")
        for p in list_image_folder(folder):
            try:
                yield pre(read_image(p))
            except EdgeCVError as exc:
                raise CalibrationError(f"{what} image {p}: {exc}") from exc
        return
    if isinstance(data, np.ndarray):
        yield from _iter_array(data, pre, what, top_level=True)
        return
    if _is_one_shot(data):
        raise CalibrationError(f"{what} data is a one-shot iterator (e.g. a generator); it must be re-iterable "
                               "because it is read once per artifact: pass list(...) of it, an array or a folder")
    if not isinstance(data, Iterable):
        raise CalibrationError(f"{what} data must be a folder, an array or a list of images/tensors, "
                               f"got {type(data).__name__}")
    for index, item in enumerate(data):
        if isinstance(item, (str, os.PathLike)):
            try:
                yield pre(read_image(item))
            except EdgeCVError as exc:
                raise CalibrationError(f"{what} item {index} ({item}): {exc}") from exc
        elif isinstance(item, np.ndarray):
            yield from _iter_array(item, pre, what, top_level=False, index=index)
        else:
            raise CalibrationError(f"{what} item {index} is a {type(item).__name__}; items must be numpy arrays "
                                   "or image paths")


def _iter_array(arr: np.ndarray, pre: Preprocess, what: str, *, top_level: bool, index: int | None = None) -> Iterator[np.ndarray]:
    where = what if index is None else f"{what} item {index}"
    sample_shape = pre.shape[1:]
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        if arr.ndim == 4:  # a batch of images
            if arr.shape[-1] not in (1, 3, 4):
                raise CalibrationError(f"{where}: image batch shape {arr.shape} is not (N, H, W, 3)")
            for image in arr:
                yield _image(pre, image, where)
            return
        if top_level:
            raise CalibrationError(f"{where}: a uint8 array must be a batch of images shaped (N, H, W, 3), got "
                                   f"{arr.shape}; one image is not a calibration set")
        yield _image(pre, arr, where)
        return
    if arr.dtype.kind != "f":
        raise CalibrationError(f"{where}: dtype {arr.dtype} is neither uint8 images nor float32 preprocessed "
                               "tensors")
    if arr.ndim == len(sample_shape) and arr.shape == sample_shape and not top_level:
        samples: Iterable[np.ndarray] = (arr,)
    elif arr.ndim == len(sample_shape) + 1 and arr.shape[1:] == sample_shape:
        samples = arr
    else:
        raise CalibrationError(
            f"{where}: float tensors must be shaped (N, {', '.join(map(str, sample_shape))}) (already preprocessed "
            f"for the model input {list(pre.shape)}), got {arr.shape}; pass uint8 images to have edgecv "
            "resize and normalise them")
    lo, hi = pre.value_range
    width = max(hi - lo, 1e-6)
    for sample in samples:
        x = np.asarray(sample, np.float32)[None]
        if not np.all(np.isfinite(x)):
            raise CalibrationError(f"{where}: a tensor holds NaN or infinity")
        if float(x.min()) < lo - 0.5 * width or float(x.max()) > hi + 0.5 * width:
            raise CalibrationError(
                f"{where}: preprocessed tensors span [{float(x.min()):.3g}, {float(x.max()):.3g}] but the model's "
                f"preprocessing produces [{lo:.3g}, {hi:.3g}]; pass raw uint8 images instead, or fix preprocessing= "
                "so the device feeds the same values")
        yield x


def _image(pre: Preprocess, image: np.ndarray, where: str) -> np.ndarray:
    try:
        pixels, _ = as_uint8_image(image, pre.color)
        return pre(pixels)
    except ConfigError as exc:
        raise CalibrationError(f"{where}: {exc}") from exc


def sample_hash(x: np.ndarray) -> str:
    """SHA-256 of one preprocessed float32 input."""
    return hashlib.sha256(np.ascontiguousarray(x, np.float32).tobytes()).hexdigest()


@dataclass(frozen=True)
class CalibrationSet:
    """A checked calibration set; iterate it (again and again) for (1, ...) float32 inputs.

    Attributes:
        size: number of inputs.
        distinct: number of distinct inputs.
        sha256: hash over the per-input hashes, in order.
        hashes: per-input SHA-256, for the overlap check.
    """

    data: Any
    pre: Preprocess
    size: int
    distinct: int
    sha256: str
    hashes: frozenset[str]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter_inputs(self.data, self.pre, "calibration")

    def summary(self, method: str) -> dict[str, Any]:
        """The manifest's ``quantization.calibration`` entry."""
        return {"method": method, "size": self.size, "sha256": self.sha256}


def calibration_set(data: Any, pre: Preprocess, *, min_size: int = MIN_CALIBRATION_SAMPLES) -> CalibrationSet:
    """Read *data* once through the runtime preprocessing, check it and hash it.

    Raises:
        CalibrationError: empty, wrong shape or dtype, constant (every input the
            same, or every input a single flat value), fewer than *min_size*
            distinct inputs, or not re-iterable.
    """
    if data is None:
        raise CalibrationError("full-integer int8 needs calibration data: pass calibration= a folder of 100-500 "
                               "representative images, a (N, H, W, 3) uint8 array or a list of images")
    hashes: list[str] = []
    flat = 0
    for x in iter_inputs(data, pre, "calibration"):
        hashes.append(sample_hash(x))
        if float(x.max()) == float(x.min()):
            flat += 1
    n = len(hashes)
    if n == 0:
        raise CalibrationError("the calibration set is empty (no images found); pass 100-500 representative images")
    distinct = len(set(hashes))
    if distinct == 1 or flat == n:
        raise CalibrationError(f"the calibration set is constant ({n} inputs, {distinct} distinct, {flat} of a single "
                               "value); quantization ranges learned from it would be meaningless: pass real images")
    if distinct < min_size:
        raise CalibrationError(f"the calibration set has {distinct} distinct inputs; at least {min_size} are needed "
                               f"and {RECOMMENDED_CALIBRATION_SAMPLES[0]}-{RECOMMENDED_CALIBRATION_SAMPLES[1]} "
                               "representative images are recommended")
    if distinct < _WARN_BELOW:
        log.warning("calibrating on only %d distinct inputs; %d-%d representative images give steadier int8 ranges",
                    distinct, *RECOMMENDED_CALIBRATION_SAMPLES)
    if distinct < n:
        log.warning("the calibration set holds %d duplicate inputs", n - distinct)
    total = hashlib.sha256("".join(hashes).encode("ascii")).hexdigest()
    return CalibrationSet(data, pre, n, distinct, total, frozenset(hashes))
