"""What a benchmark feeds: seeded random tensors, or real images.

Random data has each input's own dtype and shape and is the same for every
artifact and every run (fixed seed), so compared artifacts see equal inputs.
Real images (a file, a folder, arrays) are decoded once before timing; a
model benchmark preprocesses them once with the model's own preprocessor,
a task benchmark passes them to the task (its preprocessing is timed).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConfigError
from ..image import IMAGE_SUFFIXES, as_uint8_image, read_image

__all__ = ["ImageInputs", "load_images", "random_inputs", "MAX_IMAGES", "RANDOM_SEED"]

log = logging.getLogger("edgecv")

MAX_IMAGES = 32
RANDOM_SEED = 20240607

InputsArg = Union[None, str, "os.PathLike[str]", np.ndarray, Sequence[Any]]


class ImageInputs:
    """Decoded images (HxWx3 uint8, BGR) and a description of where they came from."""

    def __init__(self, images: list[np.ndarray], description: str) -> None:
        self.images = images
        self.description = description


def _folder_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                          "point --input at an image or a folder of images")
    if len(files) > MAX_IMAGES:
        log.info("benchmark uses the first %d of %d images in %s (sorted by name)", MAX_IMAGES, len(files), folder)
    return files[:MAX_IMAGES]


def _one_image(item: Any) -> np.ndarray:
    if isinstance(item, (str, os.PathLike)):
        return read_image(item)
    return as_uint8_image(item, "bgr")[0]


def load_images(inputs: InputsArg) -> ImageInputs | None:
    """Decode the benchmark's images; None for random data.

    Args:
        inputs: None (random data), an image file, a folder of images (the
            first :data:`MAX_IMAGES` by name), an HxWx3 uint8 BGR array, or a
            sequence of arrays / image paths.

    Raises:
        ConfigError: a missing path, an undecodable image, an empty folder or list, or a wrong type.
    """
    if inputs is None:
        return None
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        if path.is_dir():
            files = _folder_images(path)
            return ImageInputs([read_image(p) for p in files], f"{path} ({len(files)} images)")
        if not path.exists():
            raise ConfigError(f"benchmark input {path} does not exist; give an image file or a folder of images")
        return ImageInputs([read_image(path)], str(path))
    if isinstance(inputs, np.ndarray):
        image = _one_image(inputs)
        return ImageInputs([image], f"array {image.shape[1]}x{image.shape[0]}")
    if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes, bytearray)):
        if len(inputs) == 0:
            raise ConfigError("benchmark inputs is an empty list; give at least one image, or None for random data")
        if len(inputs) > MAX_IMAGES:
            log.info("benchmark uses the first %d of %d images given", MAX_IMAGES, len(inputs))
        images = [_one_image(item) for item in list(inputs)[:MAX_IMAGES]]
        return ImageInputs(images, f"{len(images)} images")
    raise ConfigError(f"benchmark inputs must be None (random data), an image path, a folder, an image array or a "
                      f"list of them; got {type(inputs).__name__}")


def random_inputs(specs: Sequence[Any], *, seed: int = RANDOM_SEED) -> list[np.ndarray]:
    """Seeded random arrays of each spec's shape and dtype.

    Integers cover the dtype's full range (uint8/int8, the usual quantized
    inputs) or 0..9 for wider integer types (indices, lengths); floats are
    uniform in [-1, 1); booleans are fair coin flips.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        shape = tuple(spec.shape)
        if dtype == np.bool_:
            arrays.append(rng.integers(0, 2, size=shape).astype(np.bool_))
        elif dtype.kind in "ui":
            if dtype.itemsize == 1:
                info = np.iinfo(dtype)
                arrays.append(rng.integers(int(info.min), int(info.max) + 1, size=shape, dtype=dtype))
            else:
                arrays.append(rng.integers(0, 10, size=shape).astype(dtype))
        elif dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
        else:
            raise ConfigError(f"cannot make random data for input {spec.name!r} of dtype {dtype}; "
                              "pass real inputs")
    return arrays
