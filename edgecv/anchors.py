"""Anchor (prior) generation for SSD-style detectors, as data that travels in the model manifest.

Two generators are covered:

* ``kind="ssd"``: the TF Object Detection API ``ssd_anchor_generator``
  (``multiple_grid_anchor_generator.create_ssd_anchors`` + ``tile_anchors``).
  Layer scales are spaced linearly from ``min_scale`` to ``max_scale``
  (``s_i = min + (max - min) * i / (L - 1)``, then 1.0 appended), each layer
  places one box per aspect ratio ``a`` with height ``s / sqrt(a)`` and width
  ``s * sqrt(a)`` (times the base anchor size), plus, when
  ``interpolated_scale_aspect_ratio > 0``, one box of scale
  ``sqrt(s_i * s_{i+1})`` with that aspect ratio. With
  ``reduce_boxes_in_lowest_layer`` the first layer has exactly
  ``(0.1, 1.0), (s_0, 2.0), (s_0, 0.5)``. Centres are
  ``(i + 0.5) / grid`` unless strides / offsets (pixels) are given.
  Rows are ordered layer, then y, then x, then box spec, and come out as
  ``ycenter, xcenter, h, w`` (normalised), the layout of the ``anchors``
  tensor TFLite_Detection_PostProcess consumes.
* ``kind="min_sizes"``: explicit per-layer box sizes in pixels, as UltraFace
  and other RFB/SSD face detectors from PyTorch use. Centres
  ``((i + 0.5) / fw, (j + 0.5) / fh)``, sizes ``(m / image_width, m / image_height)``,
  rows ordered layer, then row j, then column i, then size; each value clamped
  to ``[0, 1]`` when ``clip``. Output ``cx, cy, w, h`` (normalised).

Feature maps are always given as ``(height, width)`` pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .boxes import ORDERS
from .checks import check_int, is_int
from .errors import ConfigError, did_you_mean

__all__ = ["AnchorSpec", "generate_anchors", "ANCHOR_KINDS"]

ANCHOR_KINDS = ("ssd", "min_sizes")

_SSD_FIELDS = ("min_scale", "max_scale", "scales", "aspect_ratios", "interpolated_scale_aspect_ratio",
               "reduce_boxes_in_lowest_layer", "base_anchor_size", "anchor_strides", "anchor_offsets")
_MIN_SIZE_FIELDS = ("min_sizes", "clip")

# UltraFace (Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB, vision/ssd/config/fd_config.py):
# input width -> (input height, feature map widths, feature map heights)
_ULTRAFACE_SIZES = {
    128: (96, (16, 8, 4, 2), (12, 6, 3, 2)),
    160: (120, (20, 10, 5, 3), (15, 8, 4, 2)),
    320: (240, (40, 20, 10, 5), (30, 15, 8, 4)),
    480: (360, (60, 30, 15, 8), (45, 23, 12, 6)),
    640: (480, (80, 40, 20, 10), (60, 30, 15, 8)),
    1280: (960, (160, 80, 40, 20), (120, 60, 30, 15)),
}
_ULTRAFACE_MIN_SIZES = ((10.0, 16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0, 192.0, 256.0))


def _floats(values, what: str, *, positive: bool = True) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a sequence of numbers, got {values!r}") from exc
    if not all(math.isfinite(v) and (v > 0 or not positive) for v in out):
        raise ConfigError(f"{what} must hold finite numbers{' > 0' if positive else ''}, got {values!r}")
    return out


def _pairs(values, what: str, *, integer: bool) -> tuple[tuple, ...]:
    try:
        out = tuple(tuple(v) for v in values)
    except TypeError as exc:
        raise ConfigError(f"{what} must be a sequence of (height, width) pairs, got {values!r}") from exc
    if not out or any(len(p) != 2 for p in out):
        raise ConfigError(f"{what} must be a non-empty sequence of (height, width) pairs, got {values!r}")
    if integer:
        if not all(is_int(v) and v > 0 for p in out for v in p):
            raise ConfigError(f"{what} must hold positive integers, got {values!r}")
        return tuple((int(a), int(b)) for a, b in out)
    return tuple(_floats(p, what, positive=False) for p in out)  # type: ignore[misc]


@dataclass(frozen=True)
class AnchorSpec:
    """How a detector's anchors are generated; see the module docstring for the formulas.

    Build one with :meth:`ssd` or :meth:`from_min_sizes` (or a preset such as
    :meth:`ssd_mobilenet_v1_300`, :meth:`ultraface`), store it with
    :meth:`to_dict`, rebuild it with :meth:`from_dict`, and get the anchors with
    :meth:`generate`.

    Attributes:
        kind: ``"ssd"`` or ``"min_sizes"``.
        feature_maps: ``(height, width)`` of each layer's grid, finest first.
        image_width, image_height: network input size in pixels (needed for
            ``min_sizes``; for ``ssd`` only with strides/offsets or a non-square input).
        min_scale, max_scale, scales, aspect_ratios, interpolated_scale_aspect_ratio,
        reduce_boxes_in_lowest_layer, base_anchor_size (height, width),
        anchor_strides, anchor_offsets ((y, x) pixels per layer): the TF OD API
            ``ssd_anchor_generator`` fields (``kind="ssd"``).
        min_sizes: box sizes in pixels per layer; clip: clamp values to [0, 1]
            (``kind="min_sizes"``).

    Raises:
        ConfigError: an unknown kind, a field of the other kind, or bad values.
    """

    kind: str
    feature_maps: tuple[tuple[int, int], ...]
    image_width: int | None = None
    image_height: int | None = None
    # kind="ssd"
    min_scale: float = 0.2
    max_scale: float = 0.95
    scales: tuple[float, ...] | None = None
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = True
    base_anchor_size: tuple[float, float] = (1.0, 1.0)
    anchor_strides: tuple[tuple[float, float], ...] | None = None
    anchor_offsets: tuple[tuple[float, float], ...] | None = None
    # kind="min_sizes"
    min_sizes: tuple[tuple[float, ...], ...] | None = None
    clip: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ANCHOR_KINDS:
            raise ConfigError(f"unknown anchor kind {self.kind!r}{did_you_mean(str(self.kind), ANCHOR_KINDS)}; "
                              f"use one of {', '.join(ANCHOR_KINDS)}")
        set_ = object.__setattr__
        set_(self, "feature_maps", _pairs(self.feature_maps, "feature_maps", integer=True))
        for name in ("image_width", "image_height"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1, expected="a positive integer number of pixels")
        if (self.image_width is None) != (self.image_height is None):
            raise ConfigError("give both image_width and image_height, or neither")
        default = AnchorSpec.__dataclass_fields__
        other = _MIN_SIZE_FIELDS if self.kind == "ssd" else _SSD_FIELDS
        stray = [n for n in other if getattr(self, n) != default[n].default]
        if stray:
            raise ConfigError(f"fields {stray} do not apply to kind={self.kind!r}; remove them")
        if self.kind == "ssd":
            self._check_ssd()
        else:
            self._check_min_sizes()

    def _check_ssd(self) -> None:
        set_ = object.__setattr__
        layers = len(self.feature_maps)
        if self.scales is not None:
            scales = _floats(self.scales, "scales")
            if len(scales) != layers:
                raise ConfigError(f"scales has {len(scales)} values for {layers} feature maps; give one per layer")
            set_(self, "scales", scales)
        else:
            lo, hi = _floats((self.min_scale, self.max_scale), "min_scale/max_scale")
            if layers == 1:
                raise ConfigError("one feature map cannot interpolate min_scale..max_scale; pass scales=(s,)")
            set_(self, "min_scale", lo)
            set_(self, "max_scale", hi)
        set_(self, "aspect_ratios", _floats(self.aspect_ratios, "aspect_ratios"))
        if not self.aspect_ratios:
            raise ConfigError("aspect_ratios must not be empty")
        isar = float(self.interpolated_scale_aspect_ratio)
        if not math.isfinite(isar) or isar < 0:
            raise ConfigError(f"interpolated_scale_aspect_ratio must be >= 0 (0 disables it), got {isar!r}")
        set_(self, "interpolated_scale_aspect_ratio", isar)
        base = _floats(self.base_anchor_size, "base_anchor_size")
        if len(base) != 2:
            raise ConfigError(f"base_anchor_size must be (height, width), got {self.base_anchor_size!r}")
        set_(self, "base_anchor_size", base)
        if not isinstance(self.reduce_boxes_in_lowest_layer, (bool, np.bool_)):
            raise ConfigError(f"reduce_boxes_in_lowest_layer must be True or False, got {self.reduce_boxes_in_lowest_layer!r}")
        set_(self, "reduce_boxes_in_lowest_layer", bool(self.reduce_boxes_in_lowest_layer))
        for name in ("anchor_strides", "anchor_offsets"):
            v = getattr(self, name)
            if v is None:
                continue
            pairs = _pairs(v, name, integer=False)
            if len(pairs) != layers:
                raise ConfigError(f"{name} has {len(pairs)} pairs for {layers} feature maps; give one (y, x) per layer")
            if self.image_width is None:
                raise ConfigError(f"{name} are in pixels: give image_width and image_height too")
            set_(self, name, pairs)

    def _check_min_sizes(self) -> None:
        if self.image_width is None:
            raise ConfigError("kind='min_sizes' needs image_width and image_height (pixels)")
        if self.min_sizes is None:
            raise ConfigError("kind='min_sizes' needs min_sizes: box sizes in pixels per feature map")
        try:
            sizes = tuple(_floats(level, "min_sizes") for level in self.min_sizes)
        except TypeError as exc:
            raise ConfigError(f"min_sizes must be a sequence of per-layer size lists, got {self.min_sizes!r}") from exc
        if len(sizes) != len(self.feature_maps) or not all(sizes):
            raise ConfigError(f"min_sizes needs one non-empty size list per feature map ({len(self.feature_maps)})")
        object.__setattr__(self, "min_sizes", sizes)
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ConfigError(f"clip must be True or False, got {self.clip!r}")
        object.__setattr__(self, "clip", bool(self.clip))

    # ----------------------------------------------------------------- constructors

    @classmethod
    def ssd(cls, feature_maps, **options) -> AnchorSpec:
        """A TF OD API ``ssd_anchor_generator`` spec; *options* are the ``kind="ssd"`` fields."""
        return cls(kind="ssd", feature_maps=feature_maps, **options)

    @classmethod
    def from_min_sizes(cls, feature_maps, min_sizes, *, image_width: int, image_height: int,
                       clip: bool = True) -> AnchorSpec:
        """Explicit per-layer box sizes in pixels (UltraFace style)."""
        return cls(kind="min_sizes", feature_maps=feature_maps, min_sizes=min_sizes,
                   image_width=image_width, image_height=image_height, clip=clip)

    @classmethod
    def ssd_mobilenet_v1_300(cls) -> AnchorSpec:
        """SSD MobileNet v1 COCO (300x300): 6 layers 19..1, scales 0.2..0.95, 1917 anchors."""
        return cls.ssd(((19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)))

    @classmethod
    def ultraface(cls, width: int = 320) -> AnchorSpec:
        """UltraFace priors for an input *width* of 128, 160, 320, 480, 640 or 1280 (4420 priors at 320).

        Raises:
            ConfigError: an input size UltraFace does not define.
        """
        if width not in _ULTRAFACE_SIZES:
            raise ConfigError(f"UltraFace defines input widths {sorted(_ULTRAFACE_SIZES)}, not {width!r}")
        height, fws, fhs = _ULTRAFACE_SIZES[width]
        return cls.from_min_sizes(tuple(zip(fhs, fws)), _ULTRAFACE_MIN_SIZES, image_width=width, image_height=height)

    # ----------------------------------------------------------------- facts

    @property
    def order(self) -> str:
        """Component order of :meth:`generate` by default: ``yxhw`` (ssd) or ``xywh`` (min_sizes)."""
        return "yxhw" if self.kind == "ssd" else "xywh"

    def layer_box_specs(self) -> list[list[tuple[float, float]]]:
        """``(scale, aspect_ratio)`` pairs per layer (``kind="ssd"``)."""
        if self.kind != "ssd":
            raise ConfigError("layer_box_specs applies to kind='ssd'")
        layers = len(self.feature_maps)
        if self.scales is not None:
            scales = list(self.scales) + [1.0]
        else:
            scales = [self.min_scale + (self.max_scale - self.min_scale) * i / (layers - 1)
                      for i in range(layers)] + [1.0]
        specs = []
        for layer in range(layers):
            scale, scale_next = scales[layer], scales[layer + 1]
            if layer == 0 and self.reduce_boxes_in_lowest_layer:
                specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
                continue
            boxes = [(scale, ar) for ar in self.aspect_ratios]
            if self.interpolated_scale_aspect_ratio > 0:
                boxes.append((math.sqrt(scale * scale_next), self.interpolated_scale_aspect_ratio))
            specs.append(boxes)
        return specs

    @property
    def num_anchors(self) -> int:
        if self.kind == "ssd":
            per = [len(s) for s in self.layer_box_specs()]
        else:
            per = [len(s) for s in self.min_sizes]  # type: ignore[union-attr]
        return sum(h * w * n for (h, w), n in zip(self.feature_maps, per))

    # ----------------------------------------------------------------- generation

    def generate(self, order: str | None = None) -> np.ndarray:
        """The anchors as a float32 ``(N, 4)`` array in *order* (default :attr:`order`).

        Raises:
            ConfigError: an unknown order.
        """
        if order is not None and order not in ORDERS:
            raise ConfigError(f"unknown anchor order {order!r}{did_you_mean(str(order), ORDERS)}; use 'yxhw' or 'xywh'")
        cy, cx, h, w = self._ssd() if self.kind == "ssd" else self._min_sizes()
        cols = (cy, cx, h, w) if (order or self.order) == "yxhw" else (cx, cy, w, h)
        return np.stack(cols, axis=1).astype(np.float32)

    def _ssd(self) -> tuple[np.ndarray, ...]:
        if self.image_width is not None:
            im_h, im_w = float(self.image_height), float(self.image_width)
        else:
            im_h = im_w = 1.0
        min_dim = min(im_h, im_w)
        base_h = self.base_anchor_size[0] * min_dim / im_h
        base_w = self.base_anchor_size[1] * min_dim / im_w
        out: list[list[np.ndarray]] = [[], [], [], []]
        for layer, ((gh, gw), specs) in enumerate(zip(self.feature_maps, self.layer_box_specs())):
            if self.anchor_strides is not None:
                stride = (self.anchor_strides[layer][0] / im_h, self.anchor_strides[layer][1] / im_w)
            else:
                stride = (1.0 / gh, 1.0 / gw)
            if self.anchor_offsets is not None:
                offset = (self.anchor_offsets[layer][0] / im_h, self.anchor_offsets[layer][1] / im_w)
            else:
                offset = (0.5 * stride[0], 0.5 * stride[1])
            scales = np.array([s for s, _ in specs])
            ratio_sqrt = np.sqrt(np.array([a for _, a in specs]))
            heights = scales / ratio_sqrt * base_h
            widths = scales * ratio_sqrt * base_w
            ys = np.arange(gh) * stride[0] + offset[0]
            xs = np.arange(gw) * stride[1] + offset[1]
            n = len(specs)
            # order: y, then x, then box spec
            out[0].append(np.repeat(ys, gw * n))
            out[1].append(np.tile(np.repeat(xs, n), gh))
            out[2].append(np.tile(heights, gh * gw))
            out[3].append(np.tile(widths, gh * gw))
        return tuple(np.concatenate(c) for c in out)  # type: ignore[return-value]

    def _min_sizes(self) -> tuple[np.ndarray, ...]:
        out: list[list[np.ndarray]] = [[], [], [], []]
        for (fh, fw), sizes in zip(self.feature_maps, self.min_sizes):  # type: ignore[arg-type]
            n = len(sizes)
            m = np.asarray(sizes)
            out[0].append(np.repeat((np.arange(fh) + 0.5) / fh, fw * n))           # cy: row j
            out[1].append(np.tile(np.repeat((np.arange(fw) + 0.5) / fw, n), fh))   # cx: column i
            out[2].append(np.tile(m / self.image_height, fh * fw))                # h
            out[3].append(np.tile(m / self.image_width, fh * fw))                 # w
        cols = tuple(np.concatenate(c) for c in out)
        if self.clip:
            cols = tuple(np.clip(c, 0.0, 1.0) for c in cols)
        return cols

    # ----------------------------------------------------------------- manifest

    def to_dict(self) -> dict:
        """JSON-ready dict holding the fields that apply to :attr:`kind`."""
        keep = ("kind", "feature_maps", "image_width", "image_height") + (
            _SSD_FIELDS if self.kind == "ssd" else _MIN_SIZE_FIELDS)
        out = {}
        for name in keep:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> AnchorSpec:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: not a dict, unknown keys, or invalid values.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"anchor spec must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown anchor spec fields {unknown}; known: {sorted(known)}")
        if "kind" not in data or "feature_maps" not in data:
            raise ConfigError("anchor spec needs 'kind' and 'feature_maps'")
        kwargs = dict(data)
        for name in ("feature_maps", "scales", "aspect_ratios", "base_anchor_size", "anchor_strides",
                     "anchor_offsets", "min_sizes"):
            v = kwargs.get(name)
            if isinstance(v, list):
                kwargs[name] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**kwargs)


def generate_anchors(spec: AnchorSpec | dict, order: str | None = None) -> np.ndarray:
    """Anchors of *spec* (an :class:`AnchorSpec` or its dict) as float32 ``(N, 4)``; see :meth:`AnchorSpec.generate`."""
    if isinstance(spec, dict):
        spec = AnchorSpec.from_dict(spec)
    if not isinstance(spec, AnchorSpec):
        raise ConfigError(f"spec must be an AnchorSpec or its dict, got {type(spec).__name__}")
    return spec.generate(order)
