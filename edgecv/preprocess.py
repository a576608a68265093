"""Image -> model input, written straight into the input buffer.

One :class:`Preprocessor` is built per model input. Per frame it resizes
(stretch or letterbox), converts colour order and layout, normalises
``(x - mean) / std`` and quantizes to the input's scale and zero point, with
no allocation proportional to the image. When normalisation and quantization
cancel (the usual uint8 model fed with raw pixels), it resizes directly into
the input tensor and does no arithmetic at all; for int8 inputs that expect
``pixel - 128`` it flips the sign bit instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, IncompatibleModelError
from .image import as_uint8_image, import_cv2
from .manifest import Preprocessing
from .specs import TensorSpec

__all__ = ["Preprocessor", "ImageTransform", "input_affine"]

log = logging.getLogger("edgecv")

_INTERP_CODES = {"linear": 1, "cubic": 2, "area": 3, "nearest": 0}  # cv2.INTER_*


@dataclass(frozen=True)
class ImageTransform:
    """Where the original image landed inside the model input.

    ``input_x = original_x * scale_x + pad_x`` (pixels), likewise for y.
    """

    src_width: int
    src_height: int
    input_width: int
    input_height: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int

    def boxes_to_original(self, boxes: np.ndarray, *, normalized: bool, out: np.ndarray | None = None) -> np.ndarray:
        """Map (N,4) x1,y1,x2,y2 boxes from input space back to original pixels, clipped to the image.

        Args:
            boxes: corner boxes in input pixels, or in 0-1 of the input size when ``normalized``.
            out: optional float array of the same shape to write into.
        """
        res = np.empty(boxes.shape, np.float64) if out is None else out
        sx = self.input_width if normalized else 1.0
        sy = self.input_height if normalized else 1.0
        np.multiply(boxes[:, 0::2], sx / self.scale_x, out=res[:, 0::2])
        np.multiply(boxes[:, 1::2], sy / self.scale_y, out=res[:, 1::2])
        if self.pad_x:
            res[:, 0::2] -= self.pad_x / self.scale_x
        if self.pad_y:
            res[:, 1::2] -= self.pad_y / self.scale_y
        np.clip(res[:, 0::2], 0.0, float(self.src_width), out=res[:, 0::2])
        np.clip(res[:, 1::2], 0.0, float(self.src_height), out=res[:, 1::2])
        return res

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def input_affine(spec: TensorSpec, options: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``a, b`` such that the stored input value is ``pixel * a + b`` before rounding.

    For quantized inputs the stored value is ``real / scale + zero_point`` with
    ``real = (pixel - mean) / std``. A quantized input without stated
    mean/std is fed raw pixels (``a = 1, b = 0``): that is what uint8 models
    with (scale, zero point) chosen to cancel their normalisation expect. A float
    input without them gets ``(pixel - 127.5) / 127.5`` here (``Model.preprocess``);
    the tasks refuse to run such a model (:func:`edgecv.tasks.sanity.missing_preprocessing`).
    """
    stated = options.mean is not None or options.std is not None
    mean = np.asarray(options.mean if options.mean is not None else (0.0 if spec.np_dtype.kind in "ui" else 127.5,),
                      np.float64)
    std = np.asarray(options.std if options.std is not None else (1.0 if spec.np_dtype.kind in "ui" else 127.5,),
                     np.float64)
    if spec.np_dtype.kind in "ui" and spec.quantization is not None:
        if not stated:
            return np.ones(1), np.zeros(1)
        q = spec.quantization
        if not q.per_tensor:
            raise IncompatibleModelError(f"input {spec.name!r} is quantized per channel; edgecv feeds per-tensor inputs only")
        scale, zp = float(q.scale[0]), float(q.zero_point[0])
        if scale <= 0:
            raise IncompatibleModelError(f"input {spec.name!r} has quantization scale {scale}; the model is corrupt")
        a = 1.0 / (std * scale)
        return a, zp - mean * a
    return 1.0 / std, -mean / std


class Preprocessor:
    """Writes images into one model input buffer.

    Raises (at construction):
        IncompatibleModelError: the input is not a rank-4 image tensor with 1 or 3 channels.
    """

    def __init__(self, spec: TensorSpec, buffer: np.ndarray, options: Preprocessing | None = None) -> None:
        self.spec = spec
        self.buffer = buffer
        self.options = options if options is not None else Preprocessing()
        layout = self.options.layout or spec.layout or "nhwc"
        if buffer.ndim != 4 or buffer.shape[0] != 1:
            raise IncompatibleModelError(
                f"input {spec.name!r} has shape {tuple(buffer.shape)}; an image input must be [1,H,W,C] or [1,C,H,W]")
        if layout == "nhwc":
            _, self.height, self.width, self.channels = buffer.shape
            self._target = buffer[0]
        else:
            _, self.channels, self.height, self.width = buffer.shape
            self._target = buffer[0].transpose(1, 2, 0)  # HWC view of the CHW buffer
        if self.channels not in (1, 3):
            raise IncompatibleModelError(f"input {spec.name!r} has {self.channels} channels; edgecv feeds 1 or 3")
        self.layout = layout
        self.model_color = "gray" if self.channels == 1 else ("bgr" if self.options.color == "bgr" else "rgb")
        a, b = input_affine(spec, self.options)
        self._a = np.broadcast_to(a, (self.channels,)).astype(np.float32) if a.size in (1, self.channels) else None
        self._b = np.broadcast_to(b, (self.channels,)).astype(np.float32) if b.size in (1, self.channels) else None
        if self._a is None or self._b is None:
            raise ConfigError(f"mean/std have {max(a.size, b.size)} values but input {spec.name!r} has {self.channels} channels")
        dtype = buffer.dtype
        self._mode = self._choose_mode(dtype, a, b)
        self._interp = _INTERP_CODES[self.options.interpolation]
        self._scratch = np.zeros((self.height, self.width, self.channels), np.uint8)
        self._float = (np.zeros((self.height, self.width, self.channels), np.float32)
                       if self._mode == "affine" and dtype != np.float32 else None)
        self._uniform = bool(np.all(self._a == self._a[0]) and np.all(self._b == self._b[0]))
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            self._lo, self._hi = float(info.min), float(info.max)
        self._geometry: tuple[int, int] | None = None
        self._transform: ImageTransform | None = None
        log.debug("preprocessor for %s: mode=%s layout=%s color=%s", spec.name, self._mode, layout, self.model_color)

    @staticmethod
    def _choose_mode(dtype: np.dtype, a: np.ndarray, b: np.ndarray) -> str:
        deviation = float(np.max(np.abs(a - 1.0)) * 255.0)
        if dtype == np.uint8 and deviation + float(np.max(np.abs(b))) <= 1.0 + 1e-6:
            return "copy"
        if dtype == np.int8 and deviation + float(np.max(np.abs(b + 128.0))) <= 1.0 + 1e-6:
            return "signflip"
        return "affine"

    @property
    def mode(self) -> str:
        """"copy" (raw pixels), "signflip" (int8 = pixel - 128) or "affine" (arithmetic)."""
        return self._mode

    def _geometry_for(self, src_w: int, src_h: int) -> ImageTransform:
        if self.options.resize == "letterbox":
            scale = min(self.width / src_w, self.height / src_h)
            new_w = max(1, min(self.width, int(round(src_w * scale))))
            new_h = max(1, min(self.height, int(round(src_h * scale))))
            pad_x, pad_y = (self.width - new_w) // 2, (self.height - new_h) // 2
            return ImageTransform(src_w, src_h, self.width, self.height, new_w / src_w, new_h / src_h, pad_x, pad_y)
        return ImageTransform(src_w, src_h, self.width, self.height, self.width / src_w, self.height / src_h, 0, 0)

    def _fill_padding(self) -> None:
        value = self.options.pad_value
        self._scratch[...] = value
        if self._mode == "copy":
            self._target[...] = value
        elif self._mode == "signflip":
            self._target.view(np.uint8)[...] = value ^ 0x80

    def __call__(self, image: object, color: str = "bgr") -> ImageTransform:
        """Write *image* into the input buffer and return where it landed.

        Args:
            image: HxWx3 uint8 array (other forms per :func:`edgecv.image.as_uint8_image`) or a path.
            color: channel order of *image*: "bgr" (OpenCV) or "rgb".

        Raises:
            ConfigError: the image cannot be used.
        """
        cv2 = import_cv2()
        pixels, color = as_uint8_image(image, color)
        src_h, src_w = pixels.shape[:2]
        if self._geometry != (src_w, src_h):
            self._transform = self._geometry_for(src_w, src_h)
            self._geometry = (src_w, src_h)
            if self._transform.pad_x or self._transform.pad_y:
                self._fill_padding()
        t = self._transform
        new_w = int(round(src_w * t.scale_x)) if t.pad_x or t.pad_y else self.width
        new_h = int(round(src_h * t.scale_y)) if t.pad_x or t.pad_y else self.height
        rows = slice(t.pad_y, t.pad_y + new_h)
        cols = slice(t.pad_x, t.pad_x + new_w)
        swap = self.channels == 3 and color != self.model_color
        direct = (self._mode == "copy" and self.layout == "nhwc" and not swap and self.channels == 3)
        dst = self._target[rows, cols] if direct else self._scratch[rows, cols]
        src = pixels
        if self.channels == 1:
            src = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY)
            dst = dst[:, :, 0]
        self._resize(cv2, src, dst, new_w, new_h)
        if swap:
            region = self._scratch[rows, cols]
            cv2.cvtColor(region, cv2.COLOR_BGR2RGB, dst=region)
        if direct:
            return t
        if self._mode == "copy":
            np.copyto(self._target, self._scratch)
        elif self._mode == "signflip":
            np.bitwise_xor(self._scratch[rows, cols], 0x80, out=self._target.view(np.uint8)[rows, cols])
        else:
            self._affine()
        return t

    def _resize(self, cv2, src: np.ndarray, dst: np.ndarray, new_w: int, new_h: int) -> None:
        if src.shape[0] == new_h and src.shape[1] == new_w:
            np.copyto(dst, src)
            return
        out = cv2.resize(src, (new_w, new_h), dst=dst, interpolation=self._interp)
        if out is not dst and not np.shares_memory(out, dst):
            np.copyto(dst, out)

    def _affine(self) -> None:
        # Cast once, then scale/shift with plain scalars (per channel when they differ): numpy's
        # uint8 x per-channel-array path is buffered and several times slower.
        target = self._target
        f = self._float if self._float is not None else target
        np.copyto(f, self._scratch, casting="unsafe")
        if self._uniform:
            np.multiply(f, self._a[0], out=f)
            np.add(f, self._b[0], out=f)
        else:
            for c in range(self.channels):
                plane = f[:, :, c]
                np.multiply(plane, self._a[c], out=plane)
                np.add(plane, self._b[c], out=plane)
        if f is target:
            return
        if target.dtype.kind in "ui":
            np.rint(f, out=f)
            np.clip(f, self._lo, self._hi, out=f)
        np.copyto(target, f, casting="unsafe")
