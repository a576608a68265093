"""The input pixels of tflite-support's object_detector_test, reproduced bit for bit in numpy.

Upstream decodes cats_and_dogs.jpg with stb_image (v2.2x/2.30 on x86-64) and
resizes it to the SSD's 300 x 300 with libyuv ``ARGBScale(kFilterBilinear)``.
A different JPEG decoder (OpenCV's libjpeg-turbo) differs from stb_image by
1-3 grey levels on ~2% of pixels, and the quantized SSD's box regression moves
by up to 7 px under differences that small; so the upstream comparison is only
meaningful on upstream's own pixels.

* Entropy decoding is lossless, so the quantized DCT coefficients are read with
  ``jpeglib`` (libjpeg's ``jpeg_read_coefficients``, progressive files included).
* Everything after that follows stb_image's integer arithmetic (its SSE2 kernels
  are bit-identical to its scalar ones): dequantize to int16, the "jidctint"-
  derived IDCT with 12-bit constants (negative constants truncated toward
  zero), columns then rows, bias 512 >> 10 then (65536 + 128 << 17) >> 17,
  clamp; h2v2 chroma upsampling with the 3:1 triangle filter and replicated
  edges; YCbCr -> RGB in 20-bit fixed point with the Cb term of G floored to a
  multiple of 65536.
* libyuv with integer, even steps (1200 -> 300 is 4, 600 -> 300 is 2) takes
  ``ScaleARGBDownEven``: the 2 x 2 block at source column ``4i + 1``, row ``2j``,
  averaged on x86 by two rounds of ``pavgb``: ``avg(avg(TL, BL), avg(TR, BR))``
  with ``avg(a, b) = (a + b + 1) >> 1`` (not the C code's ``(sum + 2) >> 2``).
"""

from __future__ import annotations

import numpy as np


def _f2f(x: float) -> int:
    """stb's ``(int)(x * 4096 + 0.5)`` with a float32 product: truncates toward zero."""
    return int(float(np.float32(x) * np.float32(4096)) + 0.5)


_K = {name: _f2f(v) for name, v in dict(
    a=0.5411961, b=-1.847759065, c=0.765366865, d=1.175875602, e=0.298631336, f=2.053119869,
    g=3.072711026, h=1.501321110, i=-0.899976223, j=-2.562915447, k=-1.961570560, l=-0.390180644).items()}


def _idct_1d(s0, s1, s2, s3, s4, s5, s6, s7):
    """stb's one-dimensional IDCT on int64 arrays: the even sums x0..x3 and odd terms t0..t3."""
    p1 = (s2 + s6) * _K["a"]
    t2 = p1 + s6 * _K["b"]
    t3 = p1 + s2 * _K["c"]
    t0 = (s0 + s4) * 4096
    t1 = (s0 - s4) * 4096
    x0, x3, x1, x2 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    q0, q1, q2, q3 = s7, s5, s3, s1
    p3, p4, p1, p2 = q0 + q2, q1 + q3, q0 + q3, q1 + q2
    p5 = (p3 + p4) * _K["d"]
    q0, q1, q2, q3 = q0 * _K["e"], q1 * _K["f"], q2 * _K["g"], q3 * _K["h"]
    p1 = p5 + p1 * _K["i"]
    p2 = p5 + p2 * _K["j"]
    p3 = p3 * _K["k"]
    p4 = p4 * _K["l"]
    return (x0, x1, x2, x3), (q0 + p1 + p3, q1 + p2 + p4, q2 + p2 + p3, q3 + p1 + p4)


def _butterfly(x, t, bias: int, shift: int) -> list:
    """Outputs 0..7 of one pass: (x0 + t3, x1 + t2, x2 + t1, x3 + t0, x3 - t0, x2 - t1, x1 - t2, x0 - t3)."""
    x = [v + bias for v in x]
    return [(x[0] + t[3]) >> shift, (x[1] + t[2]) >> shift, (x[2] + t[1]) >> shift, (x[3] + t[0]) >> shift,
            (x[3] - t[0]) >> shift, (x[2] - t[1]) >> shift, (x[1] - t[2]) >> shift, (x[0] - t[3]) >> shift]


def idct_blocks(coefficients: np.ndarray, quant_table: np.ndarray) -> np.ndarray:
    """uint8 pixels ``(..., 8, 8)`` of quantized coefficient blocks (natural order: [vertical, horizontal] frequency)."""
    d = (coefficients.astype(np.int32) * quant_table.astype(np.int32)).astype(np.int16).astype(np.int64)
    columns = _butterfly(*_idct_1d(*(d[..., r, :] for r in range(8))), 512, 10)          # down each column
    v = np.stack(columns, axis=-2)
    rows = _butterfly(*_idct_1d(*(v[..., :, c] for c in range(8))), 65536 + (128 << 17), 17)
    return np.clip(np.stack(rows, axis=-1), 0, 255).astype(np.uint8)


def _plane(coefficients: np.ndarray, quant_table: np.ndarray, height: int, width: int) -> np.ndarray:
    blocks = idct_blocks(coefficients, quant_table)
    rows, cols = coefficients.shape[:2]
    return blocks.transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)[:height, :width]


def upsample_h2v2(chroma: np.ndarray, height: int, width: int) -> np.ndarray:
    """stb's 2x2 chroma upsampling (``resample_row_hv_2``) of a ``(ceil(h/2), ceil(w/2))`` plane."""
    c = chroma.astype(np.int64)
    above = np.vstack([c[:1], c[:-1]])
    below = np.vstack([c[1:], c[-1:]])
    t = np.empty((2 * c.shape[0], c.shape[1]), np.int64)
    t[0::2] = 3 * c + above                      # output row 2m: near row m, far row m - 1 (clamped)
    t[1::2] = 3 * c + below                      # output row 2m + 1: far row m + 1 (clamped)
    w = t.shape[1]
    out = np.empty((t.shape[0], 2 * w), np.int64)
    out[:, 0] = (t[:, 0] + 2) >> 2
    out[:, 2:2 * w - 1:2] = (3 * t[:, 1:] + t[:, :-1] + 8) >> 4
    out[:, 1:2 * w - 2:2] = (3 * t[:, :-1] + t[:, 1:] + 8) >> 4
    out[:, 2 * w - 1] = (t[:, w - 1] + 2) >> 2
    return out[:height, :width]


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """stb's fixed-point YCbCr -> RGB (``YCbCr_to_RGB_row``); uint8 ``(h, w, 3)``."""
    y, cb, cr = (np.asarray(p, np.int64) for p in (y, cb, cr))
    cb, cr = cb - 128, cr - 128
    base = (y << 20) + (1 << 19)
    r = (base + cr * 1470208) >> 20
    g = (base - cr * 748800 + (((-cb * 360960) >> 16) << 16)) >> 20
    b = (base + cb * 1858048) >> 20
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def stb_decode_jpeg(path) -> np.ndarray:
    """RGB uint8 ``(h, w, 3)`` of a 3-component YCbCr JPEG with 4:2:0 chroma, as stb_image decodes it.

    Raises:
        ValueError: another component layout or subsampling (not needed by the tests).
    """
    import jpeglib

    image = jpeglib.read_dct(str(path))
    h, w = image.height, image.width
    factors = np.asarray(image.samp_factor).tolist()
    if image.Cb is None or factors != [[2, 2], [1, 1], [1, 1]]:
        raise ValueError(f"only 4:2:0 YCbCr JPEGs are reproduced here, got sampling {factors}")
    table = image.quant_tbl_no
    luma = _plane(image.Y, image.qt[table[0]], h, w)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    cb = upsample_h2v2(_plane(image.Cb, image.qt[table[1]], ch, cw), h, w)
    cr = upsample_h2v2(_plane(image.Cr, image.qt[table[2]], ch, cw), h, w)
    return ycbcr_to_rgb(luma, cb, cr)


def libyuv_down_even(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """libyuv ``ARGBScale(kFilterBilinear)`` for integer, even steps on x86 (``ScaleARGBRowDownEvenBox_SSE2``).

    Raises:
        ValueError: steps that are not even integers (libyuv takes other code paths then).
    """
    h, w = rgb.shape[:2]
    sx, sy = divmod(w, width), divmod(h, height)
    if sx[1] or sy[1] or sx[0] % 2 or sy[0] % 2:
        raise ValueError(f"{w}x{h} -> {width}x{height} is not an even integer downscale")
    x0 = (((sx[0] << 16) >> 1) - 32768) >> 16     # ScaleSlope's centred start, integer part
    y0 = (((sy[0] << 16) >> 1) - 32768) >> 16
    a = rgb.astype(np.int32)
    rows = y0 + sy[0] * np.arange(height)
    cols = x0 + sx[0] * np.arange(width)

    def avg(p, q):
        return (p + q + 1) >> 1

    top, bottom = a[rows], a[rows + 1]
    return avg(avg(top[:, cols], bottom[:, cols]), avg(top[:, cols + 1], bottom[:, cols + 1])).astype(np.uint8)
