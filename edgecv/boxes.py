"""Box geometry: corner boxes, pairwise IoU, SSD centre-size coding and clipping.

Conventions used across edgecv:

* A *corner box* is ``x1, y1, x2, y2`` (left, top, right, bottom). Width is
  ``x2 - x1`` (no ``+1``), so a box is a region of the continuous plane.
  Inverted corners (``x2 < x1``) are read as the same region with the corners
  swapped; a box with zero width or height has area 0 and IoU 0 with anything.
* SSD heads predict *centre-size encodings* relative to anchors (priors). Two
  component orders are in use and both are supported:

  - ``order="yxhw"``: TF Object Detection API and TFLite_Detection_PostProcess.
    Encodings ``ty, tx, th, tw``; anchors ``ycenter, xcenter, h, w``; scales
    ``y_scale, x_scale, h_scale, w_scale`` (usually 10, 10, 5, 5).
  - ``order="xywh"``: torchvision SSD / UltraFace. Encodings ``tx, ty, tw, th``;
    priors ``cx, cy, w, h``; variances (centre 0.1, size 0.2), i.e. scales
    10, 10, 5, 5 in ``x, y, w, h`` order.

  Decoding: ``c = t_c / scale_c * anchor_size + anchor_c`` and
  ``size = exp(t_size / scale_size) * anchor_size``. The decoded corner boxes
  are in the units of the anchors: normalised ``[0, 1]`` image coordinates for
  the TF OD API anchors and UltraFace priors (multiply x by the image width and
  y by its height for pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, did_you_mean

__all__ = [
    "box_iou",
    "BoxCoder",
    "BoxDecoder",
    "decode_center_size",
    "encode_center_size",
    "clip_boxes",
]

ORDERS = ("yxhw", "xywh")
# column of (cx, cy, w, h) inside an encoding / anchor row, per order
_COLUMNS = {"yxhw": (1, 0, 3, 2), "xywh": (0, 1, 2, 3)}


# Coordinates beyond 2**500 (~3e150) would overflow float64 box areas; IoU does not change under uniform
# scaling, so such boxes are scaled by an exact power of two before any area is computed.
_SAFE_EXPONENT = 500


def corner_rows(boxes, *, name: str = "boxes", iou_safe: bool = False) -> np.ndarray:
    """Return *boxes* as float64 rows ``x1, y1, x2, y2`` of shape ``(4, N)``, corners normalised.

    The row layout keeps every coordinate contiguous, which is what vectorised
    box math (NMS) reads fastest. With *iou_safe*, boxes too large for float64
    areas are scaled as :func:`iou_safe_scale` does.

    Raises:
        ConfigError: not an ``(N, 4)`` real array, or a coordinate is NaN or infinite.
    """
    arr = np.asarray(boxes)
    if arr.dtype.kind not in "biuf":
        raise ConfigError(f"{name} must be a real numeric (N, 4) array of x1, y1, x2, y2, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ConfigError(f"{name} must have shape (N, 4) as x1, y1, x2, y2, got {arr.shape}; "
                          "reshape it, e.g. boxes.reshape(-1, 4)")
    cols = np.array(arr.T, dtype=np.float64, order="C")   # one contiguous copy: x1, y1, x2, y2 rows
    rows = np.empty_like(cols)
    np.minimum(cols[0:2], cols[2:4], out=rows[0:2])
    np.maximum(cols[0:2], cols[2:4], out=rows[2:4])
    # min/max propagate NaN, so two reductions check every coordinate
    hi, lo = (float(rows.max()), float(rows.min())) if rows.size else (0.0, 0.0)
    if not (math.isfinite(hi) and math.isfinite(lo)):
        bad = int(np.flatnonzero(~np.isfinite(cols).all(axis=0))[0])
        raise ConfigError(f"{name} row {bad} has a NaN or infinite coordinate {arr[bad].tolist()}; "
                          "drop or repair such boxes before calling (a NaN box cannot be ranked or compared)")
    if iou_safe and max(hi, -lo) > 2.0 ** _SAFE_EXPONENT:
        rows, = iou_safe_scale(rows)
    return rows


def iou_safe_scale(*rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays scaled together by one exact power of two so that box areas cannot overflow float64."""
    peak = max((max(float(r.max()), -float(r.min())) for r in rows if r.size), default=0.0)
    if peak <= 2.0 ** _SAFE_EXPONENT:
        return rows
    shift = math.frexp(peak)[1] - _SAFE_EXPONENT
    return tuple(np.ldexp(r, -shift) for r in rows)


def as_corner_boxes(boxes, *, name: str = "boxes") -> np.ndarray:
    """Return *boxes* as a float64 ``(N, 4)`` array with ``x1 <= x2`` and ``y1 <= y2``.

    Raises:
        ConfigError: not an ``(N, 4)`` real array, or a coordinate is NaN or infinite.
    """
    return corner_rows(boxes, name=name).T


def box_iou(a, b) -> np.ndarray:
    """Pairwise intersection over union of two sets of corner boxes.

    ``iou = inter / (area_a + area_b - inter)`` in float64, with
    ``area = (x2 - x1) * (y2 - y1)`` after normalising inverted corners; a pair
    with a zero-area box has IoU 0. This is the exact quantity :func:`edgecv.nms`
    compares with its threshold.

    Args:
        a: ``(N, 4)`` boxes ``x1, y1, x2, y2``.
        b: ``(M, 4)`` boxes ``x1, y1, x2, y2``.

    Returns:
        ``(N, M)`` float64 matrix.

    Raises:
        ConfigError: a bad shape or a NaN/infinite coordinate.
    """
    a, b = iou_safe_scale(as_corner_boxes(a, name="a"), as_corner_boxes(b, name="b"))
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = (area_a[:, None] + area_b[None, :]) - inter
    valid = (area_a[:, None] > 0) & (area_b[None, :] > 0)
    out = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=valid)
    return out


def _check_order(order: str) -> str:
    if order not in ORDERS:
        raise ConfigError(f"unknown box order {order!r}{did_you_mean(str(order), ORDERS)}; use 'yxhw' "
                          "(TF Object Detection API / TFLite_Detection_PostProcess) or 'xywh' (torchvision / UltraFace)")
    return order


def _positive_quad(values, what: str) -> tuple[float, float, float, float]:
    try:
        quad = tuple(float(v) for v in values)
    except TypeError as exc:
        raise ConfigError(f"{what} must be 4 numbers, got {values!r}") from exc
    if len(quad) != 4 or not all(np.isfinite(q) and q > 0 for q in quad):
        raise ConfigError(f"{what} must be 4 finite numbers > 0, got {values!r}")
    return quad  # type: ignore[return-value]


@dataclass(frozen=True)
class BoxCoder:
    """Centre-size box coding of an SSD head (serialisable into the model manifest).

    Attributes:
        order: component order of encodings and anchors, ``"yxhw"`` (TF OD API)
            or ``"xywh"`` (torchvision / UltraFace).
        scales: divisors of the four encoding components, in *order*'s order
            (TF's ``y_scale, x_scale, h_scale, w_scale`` for ``"yxhw"``). A
            variance ``v`` is the scale ``1 / v``.
    """

    order: str = "yxhw"
    scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)

    def __post_init__(self) -> None:
        _check_order(self.order)
        object.__setattr__(self, "scales", _positive_quad(self.scales, "BoxCoder scales"))

    @classmethod
    def from_variances(cls, center_variance: float = 0.1, size_variance: float = 0.2, *,
                       order: str = "xywh") -> BoxCoder:
        """The torchvision / UltraFace convention: centre and size variances.

        Raises:
            ConfigError: a variance is not a finite number > 0, or an unknown order.
        """
        cv, sv = float(center_variance), float(size_variance)
        if not (np.isfinite(cv) and np.isfinite(sv) and cv > 0 and sv > 0):
            raise ConfigError(f"variances must be finite and > 0, got center={center_variance!r}, size={size_variance!r}")
        return cls(order=order, scales=(1.0 / cv, 1.0 / cv, 1.0 / sv, 1.0 / sv))

    def to_dict(self) -> dict:
        return {"type": "center_size", "order": self.order, "scales": list(self.scales)}

    @classmethod
    def from_dict(cls, data: dict) -> BoxCoder:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: not a centre-size coder description.
        """
        if not isinstance(data, dict) or data.get("type", "center_size") != "center_size":
            raise ConfigError(f"box coder must be a dict with type 'center_size', got {data!r}")
        unknown = set(data) - {"type", "order", "scales"}
        if unknown:
            raise ConfigError(f"unknown box coder fields {sorted(unknown)}; expected 'type', 'order', 'scales'")
        return cls(order=data.get("order", "yxhw"), scales=tuple(data.get("scales", (10.0, 10.0, 5.0, 5.0))))


def _coder_from(scales, variances, order: str) -> BoxCoder:
    if scales is not None and variances is not None:
        raise ConfigError("pass either scales= (TF: 10, 10, 5, 5) or variances= (torchvision: 0.1, 0.2), not both")
    if variances is not None:
        var = tuple(float(v) for v in np.ravel(variances))
        if len(var) == 2:
            return BoxCoder.from_variances(var[0], var[1], order=order)
        if len(var) == 4 and all(np.isfinite(v) and v > 0 for v in var):
            return BoxCoder(order=order, scales=tuple(1.0 / v for v in var))
        raise ConfigError(f"variances must be (center, size) or 4 finite numbers > 0, got {variances!r}")
    if scales is not None:
        return BoxCoder(order=order, scales=tuple(scales))
    return BoxCoder(order=order)


def _check_anchors(anchors) -> np.ndarray:
    arr = np.asarray(anchors)
    if arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] != 4:
        raise ConfigError(f"anchors must be a real (N, 4) array, got shape {arr.shape} dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ConfigError("anchors contain NaN or infinite values; regenerate them from the AnchorSpec")
    return arr


class BoxDecoder:
    """Decodes SSD centre-size encodings against fixed anchors without per-call allocation.

    Anchor-derived terms and scratch buffers are computed once; :meth:`decode`
    then writes into a preallocated ``(N, 4)`` float32 array. The arithmetic is
    done in float64 and rounded to float32 once per centre and half-size, as
    TFLite_Detection_PostProcess does, so decoded boxes match that op's.

    Args:
        anchors: ``(N, 4)`` anchors in *coder*'s order (``ycenter, xcenter, h, w``
            for ``"yxhw"``, ``cx, cy, w, h`` for ``"xywh"``).
        coder: the :class:`BoxCoder`; TF OD API ``yxhw`` with scales 10, 10, 5, 5 by default.

    Raises:
        ConfigError: bad anchors.
    """

    def __init__(self, anchors, coder: BoxCoder | None = None) -> None:
        self.coder = coder if coder is not None else BoxCoder()
        a = _check_anchors(anchors)
        cxc, cyc, wc, hc = _COLUMNS[self.coder.order]
        sx, sy, sw, sh = (self.coder.scales[c] for c in (cxc, cyc, wc, hc))
        self.num_anchors = a.shape[0]
        self._cols = (cxc, cyc, wc, hc)
        self._ax, self._ay = a[:, cxc].copy(), a[:, cyc].copy()
        self._scales = (sx, sy, sw, sh)
        self._aw, self._ah = a[:, wc].copy(), a[:, hc].copy()
        self._half_aw, self._half_ah = 0.5 * self._aw, 0.5 * self._ah
        n = self.num_anchors
        self._t64 = np.empty(n, np.float64)
        self._c32 = np.empty(n, np.float32)
        self._h32 = np.empty(n, np.float32)
        self._out = np.empty((n, 4), np.float32)
        self._pairs: tuple[np.ndarray, ...] | None = None   # (k, 2) forms for row decodes, made on first use

    def decode(self, encodings, out: np.ndarray | None = None, *, rows=None) -> np.ndarray:
        """Decode encodings into corner boxes ``x1, y1, x2, y2`` (float32, anchor units).

        Args:
            encodings: float array of shape ``(..., 4)`` holding ``N`` rows in the
                coder's order, e.g. ``(1, N, 4)`` or ``(1, N, 1, 4)`` as SSD models emit;
                with *rows*, one row per entry of *rows*.
            out: optional ``(N, 4)`` (with *rows*: ``(len(rows), 4)``) float32 C-contiguous
                array to write into; without it the decoder's own buffer is returned, valid
                until the next call (with *rows*: a new array).
            rows: optional integer anchor indices: decode only these anchors (the
                candidates of a frame), bit for bit as a full decode would.

        Raises:
            ConfigError: wrong size, an integer (still quantized) array, a bad *out*,
                or *rows* outside the anchors.
        """
        enc = np.asarray(encodings)
        if enc.dtype.kind != "f":
            raise ConfigError(f"encodings must be floating point, got {enc.dtype}; dequantize the model output first "
                              "(edgecv.dequantize, or (q - zero_point) * scale)")
        if rows is not None:
            return self._decode_rows(enc, rows, out)
        n = self.num_anchors
        if enc.size != 4 * n or enc.shape[-1:] != (4,):
            raise ConfigError(f"encodings of shape {enc.shape} do not hold {n} rows of 4 values "
                              "(one per anchor); check the anchors and the model output")
        enc = enc.reshape(n, 4)
        if out is None:
            out = self._out
        elif (not isinstance(out, np.ndarray) or out.shape != (n, 4) or out.dtype != np.float32
              or not out.flags.writeable):
            raise ConfigError(f"out must be a writable float32 array of shape ({n}, 4)")
        cxc, cyc, wc, hc = self._cols
        sx, sy, sw, sh = self._scales
        t, c32, h32 = self._t64, self._c32, self._h32
        for col_c, col_s, scale_c, scale_s, a_c, a_size, half_a, lo, hi in (
                (cxc, wc, sx, sw, self._ax, self._aw, self._half_aw, 0, 2),
                (cyc, hc, sy, sh, self._ay, self._ah, self._half_ah, 1, 3)):
            # centre = t_c / s_c * a_size + a_c, in float64, rounded once to float32
            # (cast by copying first: a mixed-dtype ufunc would allocate a cast buffer)
            np.copyto(t, enc[:, col_c])
            np.divide(t, scale_c, out=t)
            np.multiply(t, a_size, out=t)
            np.add(t, a_c, out=t)
            c32[...] = t
            # half size = 0.5 * exp(t_s / s_s) * a_size
            np.copyto(t, enc[:, col_s])
            np.divide(t, scale_s, out=t)
            np.exp(t, out=t)
            np.multiply(t, half_a, out=t)
            h32[...] = t
            np.subtract(c32, h32, out=out[:, lo])
            np.add(c32, h32, out=out[:, hi])
        return out

    def _decode_rows(self, enc: np.ndarray, rows, out: np.ndarray | None) -> np.ndarray:
        """:meth:`decode` of the anchors *rows* only: x and y handled together as ``(k, 2)`` arrays.

        The same float64 operations in the same order as the full decode, so
        the result is bit-identical; about half the numpy calls, which is what
        a frame with few candidates pays for.
        """
        idx = np.asarray(rows)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ConfigError(f"rows must be a 1-D integer array of anchor indices, got shape {idx.shape} "
                              f"dtype {idx.dtype}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_anchors):
            raise ConfigError(f"rows must index the {self.num_anchors} anchors (0..{self.num_anchors - 1})")
        k = idx.size
        if enc.size != 4 * k or enc.shape[-1:] != (4,):
            raise ConfigError(f"encodings of shape {enc.shape} do not hold {k} rows of 4 values "
                              "(one per entry of rows)")
        if out is not None and (not isinstance(out, np.ndarray) or out.shape != (k, 4) or out.dtype != np.float32
                                or not out.flags.writeable):
            raise ConfigError(f"out must be a writable float32 array of shape ({k}, 4)")
        return self.decode_rows_checked(enc.reshape(k, 4), idx, out)

    def decode_rows_checked(self, enc: np.ndarray, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``decode(enc, out, rows=idx)`` for arguments already checked (``(k, 4)`` float encodings, valid rows)."""
        if out is None:
            out = np.empty((idx.size, 4), np.float32)
        if self._pairs is None:
            cxc, cyc, wc, hc = self._cols
            sx, sy, sw, sh = self._scales
            self._pairs = (np.array([cxc, cyc]), np.array([wc, hc]), np.array([sx, sy]), np.array([sw, sh]),
                           np.stack([self._ax, self._ay], 1), np.stack([self._aw, self._ah], 1),
                           np.stack([self._half_aw, self._half_ah], 1))
        centre_cols, size_cols, centre_scales, size_scales, a_centre, a_size, half_a = self._pairs
        t = enc.take(centre_cols, axis=1).astype(np.float64)
        t /= centre_scales
        t *= a_size.take(idx, axis=0)
        t += a_centre.take(idx, axis=0)
        c32 = t.astype(np.float32)
        t = enc.take(size_cols, axis=1).astype(np.float64)
        t /= size_scales
        np.exp(t, out=t)
        t *= half_a.take(idx, axis=0)
        h32 = t.astype(np.float32)
        np.subtract(c32, h32, out=out[:, :2])
        np.add(c32, h32, out=out[:, 2:])
        return out


def decode_center_size(encodings, anchors, *, scales=None, variances=None, order: str = "yxhw",
                       out: np.ndarray | None = None) -> np.ndarray:
    """Decode SSD centre-size encodings into corner boxes ``x1, y1, x2, y2``.

    One-shot form of :class:`BoxDecoder` (which a detector keeps to decode every
    frame without allocating). Output is float32 in the anchors' units
    (normalised image coordinates for TF OD API anchors and UltraFace priors).

    Args:
        encodings: ``(..., 4)`` float array with one row per anchor, in *order*.
        anchors: ``(N, 4)`` anchors in *order* (``ycenter, xcenter, h, w`` or ``cx, cy, w, h``).
        scales: divisors per component in *order*'s order; default 10, 10, 5, 5.
        variances: instead of scales: ``(center, size)`` such as ``(0.1, 0.2)``,
            or 4 values; scale = 1 / variance.
        order: ``"yxhw"`` (TF OD API) or ``"xywh"`` (torchvision / UltraFace).
        out: optional ``(N, 4)`` float32 array to write into.

    Raises:
        ConfigError: bad shapes, both scales and variances, non-positive scales.
    """
    # a throwaway decoder: its own output buffer is not shared with anyone
    return BoxDecoder(anchors, _coder_from(scales, variances, order)).decode(encodings, out=out)


def encode_center_size(boxes, anchors, *, scales=None, variances=None, order: str = "yxhw") -> np.ndarray:
    """Encode corner boxes against anchors: the inverse of :func:`decode_center_size`.

    Returns ``(N, 4)`` float64 encodings in *order*. Used to build training
    targets and to test decoders by round trip.

    Raises:
        ConfigError: bad shapes, a box or anchor with zero or negative size.
    """
    coder = _coder_from(scales, variances, order)
    a = _check_anchors(anchors)
    b = as_corner_boxes(boxes)
    if b.shape[0] != a.shape[0]:
        raise ConfigError(f"{b.shape[0]} boxes but {a.shape[0]} anchors; encode one box per anchor")
    cxc, cyc, wc, hc = _COLUMNS[coder.order]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if (w <= 0).any() or (h <= 0).any() or (a[:, wc] <= 0).any() or (a[:, hc] <= 0).any():
        raise ConfigError("boxes and anchors must have width and height > 0 to be encoded (log of the size ratio)")
    cx, cy = (b[:, 0] + b[:, 2]) * 0.5, (b[:, 1] + b[:, 3]) * 0.5
    enc = np.empty_like(b)
    enc[:, cxc] = (cx - a[:, cxc]) / a[:, wc] * coder.scales[cxc]
    enc[:, cyc] = (cy - a[:, cyc]) / a[:, hc] * coder.scales[cyc]
    enc[:, wc] = np.log(w / a[:, wc]) * coder.scales[wc]
    enc[:, hc] = np.log(h / a[:, hc]) * coder.scales[hc]
    return enc


def clip_boxes(boxes, *, width: float = 1.0, height: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Clip corner boxes to the window ``[0, width] x [0, height]``.

    Defaults clip normalised boxes to the unit square; pass the image size in
    pixels for pixel boxes. ``out`` may be *boxes* itself (in place).

    Raises:
        ConfigError: not an ``(N, 4)`` float array, or a window size that is not > 0.
    """
    arr = np.asarray(boxes)
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind != "f":
        raise ConfigError(f"boxes must be a float (N, 4) array, got shape {arr.shape} dtype {arr.dtype}")
    if not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
        raise ConfigError(f"clip window must have width and height > 0, got {width!r} x {height!r}")
    if out is None:
        out = np.empty_like(arr)
    elif not isinstance(out, np.ndarray) or out.shape != arr.shape or not out.flags.writeable:
        raise ConfigError(f"out must be a writable array of shape {arr.shape}")
    np.clip(arr[:, 0::2], 0.0, width, out=out[:, 0::2])
    np.clip(arr[:, 1::2], 0.0, height, out=out[:, 1::2])
    return out
