"""Typed task heads: the task-specific part of a model manifest (``Manifest.head``).

One frozen dataclass per task. Every field is optional: ``None`` means "not
stated", so a head is also a partial set of settings that
:meth:`Head.merged_over` lays over another (arguments over the manifest,
the manifest over TFLite metadata). Values are checked once, here, when a
head is made: an unknown key is a :class:`ConfigError` with a did-you-mean, a
threshold outside 0..1 or a bad name is refused.

A head reads like the manifest's JSON object too (a read-only mapping of the
stated fields in their JSON form: ``head["form"]``, ``head.get("anchors")``),
and :meth:`Head.to_dict` / :meth:`Head.from_dict` convert between the two.
The converters write heads, the tasks read them, the CLI builds them from
flags.

Raises (at construction): ConfigError.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from .checks import check_fraction, check_int
from .errors import ConfigError, did_you_mean

__all__ = [
    "Head", "ClassificationHead", "DetectionHead", "SegmentationHead", "EmbeddingHead",
    "NO_BACKGROUND", "DETECTION_FORMS", "SCORE_ACTIVATIONS", "BOX_FORMATS", "CLASSIFIER_KINDS", "HEAD_OUTPUTS",
    "LAYOUTS", "parse_anchors", "parse_box_coder", "box_coder_json",
]

#: ``background_class`` stated as "every score column is a class" (JSON ``null``).
NO_BACKGROUND = "none"
DETECTION_FORMS = ("postprocess", "decoded", "raw")
SCORE_ACTIVATIONS = ("sigmoid", "softmax", "none")
#: positions of (x1, y1, x2, y2) in a box row, by name
BOX_FORMATS = {"xyxy": (0, 1, 2, 3), "yxyx": (1, 0, 3, 2)}
CLASSIFIER_KINDS = ("multiclass", "multilabel", "binary")
HEAD_OUTPUTS = ("probabilities", "logits")
LAYOUTS = ("nhwc", "nchw")


def _choice(head: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{head} head {name} must be one of {allowed}, got {value!r}"
                          f"{did_you_mean(str(value), allowed)}")


def _unit_number(head: str, name: str, value: Any) -> float | None:
    """A number in 0..1 as float (None stays None).

    Raises:
        ConfigError: not a number (bools included), NaN, or outside 0..1.
    """
    return None if value is None else check_fraction(value, f"{head} head {name}")


def _flag(head: str, name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{head} head {name} must be true or false, got {value!r}")


class Head(Mapping):
    """Base of the task heads: JSON conversion, merging, and the read-only mapping view."""

    task: ClassVar[str] = ""

    # -- JSON form ---------------------------------------------------------------
    def _json_value(self, name: str, value: Any) -> Any:
        """The JSON form of one stated field (subclasses convert typed values)."""
        return value

    def to_dict(self) -> dict[str, Any]:
        """The stated fields as plain JSON values (what the manifest stores)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = self._json_value(f.name, value)
        return out

    @classmethod
    def allowed_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Head | None) -> Head:
        """A head from its manifest JSON object (or a head of this type, returned as is).

        Raises:
            ConfigError: not an object, an unknown key (with a did-you-mean), or a bad value.
        """
        if data is None:
            return cls()
        if isinstance(data, cls):
            return data
        if isinstance(data, Head):
            raise ConfigError(f"a {data.task} head cannot be used as a {cls.task} head")
        if not isinstance(data, Mapping):
            raise ConfigError(f"the {cls.task} head must be an object of settings, got {type(data).__name__}")
        allowed = cls.json_keys()
        for key in data:
            if key not in allowed:
                raise ConfigError(f"unknown {cls.task} head setting {key!r}{did_you_mean(str(key), allowed)}; "
                                  f"allowed: {', '.join(cls.allowed_keys())}")
        return cls(**cls._typed_fields(data))

    @classmethod
    def json_keys(cls) -> tuple[str, ...]:
        return cls.allowed_keys()

    @classmethod
    def _typed_fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's keywords for a JSON object (null means not stated; __post_init__ parses values)."""
        return {k: v for k, v in data.items() if v is not None}

    def merged_over(self, base: Head | None) -> Head:
        """This head's stated fields over *base*'s (a head of another task is ignored)."""
        if base is None or type(base) is not type(self):
            return self
        stated = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **stated)

    # -- read-only mapping of the JSON form -----------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        stated = ", ".join(f"{k}={v!r}" for k, v in ((f.name, getattr(self, f.name)) for f in fields(self))
                           if v is not None)
        return f"{type(self).__name__}({stated})"


@dataclass(frozen=True, eq=False, repr=False)
class ClassificationHead(Head):
    """Classifier settings.

    Attributes:
        kind: "multiclass" (softmax), "multilabel" (independent sigmoids) or "binary" (one yes/no score).
        output: "probabilities" (activation already applied in the model) or "logits".
    """

    task: ClassVar[str] = "classification"
    kind: str | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        _choice("classification", "kind", self.kind, CLASSIFIER_KINDS)
        _choice("classification", "output", self.output, HEAD_OUTPUTS)


@dataclass(frozen=True, eq=False, repr=False)
class SegmentationHead(Head):
    """Segmenter settings.

    Attributes:
        output: "probabilities" or "logits" (per-class scores; the argmax is the same).
        layout: "nhwc" or "nchw" of 4-D per-class outputs.
    """

    task: ClassVar[str] = "segmentation"
    output: str | None = None
    layout: str | None = None

    def __post_init__(self) -> None:
        _choice("segmentation", "output", self.output, HEAD_OUTPUTS)
        _choice("segmentation", "layout", self.layout, LAYOUTS)


@dataclass(frozen=True, eq=False, repr=False)
class EmbeddingHead(Head):
    """Embedder settings.

    Attributes:
        l2_normalized: the model's vectors already have unit L2 length.
    """

    task: ClassVar[str] = "embedding"
    l2_normalized: bool | None = None

    def __post_init__(self) -> None:
        _flag("embedding", "l2_normalized", self.l2_normalized)


@dataclass(frozen=True, eq=False, repr=False)
class DetectionHead(Head):
    """Detector settings (see :class:`edgecv.Detector` for how each is used).

    Attributes:
        form: "postprocess" (TFLite_Detection_PostProcess outputs), "decoded" (boxes + scores, NMS here)
            or "raw" (box encodings + scores, decoded here against anchors).
        anchors: raw form: an :class:`edgecv.AnchorSpec` (in the manifest as its dict); at run time
            also an ``(N, 4)`` array in the box coder's order (which cannot be stored in a manifest).
        box_coder: raw form: an :class:`edgecv.BoxCoder`.
        box_format: decoded/postprocess boxes: "xyxy", "yxyx", or the positions of (x1, y1, x2, y2)
            in a box row as 4 ints (TFLite metadata ``box_index``).
        box_normalized: decoded/postprocess boxes are 0..1 of the input (True) or input pixels (False).
        score_activation: "sigmoid", "softmax" or "none" for decoded/raw scores.
        background_class: the score column that is background, or :data:`NO_BACKGROUND` ("none")
            when every column is a class.
        score_threshold: keep detections with ``score >= score_threshold`` (0..1).
        iou_threshold: NMS suppresses boxes with IoU ``> iou_threshold`` (0..1).
        max_detections: at most this many detections per image (int >= 1).
    """

    task: ClassVar[str] = "detection"
    form: str | None = None
    anchors: Any = None
    box_coder: Any = None
    box_format: str | tuple[int, int, int, int] | None = None
    box_normalized: bool | None = None
    score_activation: str | None = None
    background_class: int | str | None = None
    score_threshold: float | None = None
    iou_threshold: float | None = None
    max_detections: int | None = None

    def __post_init__(self) -> None:
        _choice("detection", "form", self.form, DETECTION_FORMS)
        _choice("detection", "score_activation", self.score_activation, SCORE_ACTIVATIONS)
        _flag("detection", "box_normalized", self.box_normalized)
        for name in ("score_threshold", "iou_threshold"):
            object.__setattr__(self, name, _unit_number("detection", name, getattr(self, name)))
        if self.max_detections is not None:
            object.__setattr__(self, "max_detections", check_int(self.max_detections, "detection head max_detections",
                                                                 minimum=1, expected="a positive int"))
        bg = self.background_class
        if bg is not None and bg != NO_BACKGROUND and (isinstance(bg, bool) or not isinstance(bg, int) or bg < 0):
            raise ConfigError(f"detection head background_class must be a column index >= 0 or "
                              f"{NO_BACKGROUND!r} (every column is a class), got {bg!r}")
        object.__setattr__(self, "box_format", _box_format(self.box_format))
        object.__setattr__(self, "anchors", parse_anchors(self.anchors))
        object.__setattr__(self, "box_coder", parse_box_coder(self.box_coder))

    @property
    def box_columns(self) -> tuple[int, int, int, int] | None:
        """Positions of (x1, y1, x2, y2) in a box row, or None when the box format is not stated."""
        if self.box_format is None:
            return None
        return BOX_FORMATS[self.box_format] if isinstance(self.box_format, str) else self.box_format

    @property
    def background_column(self) -> int | None:
        """The background score column, or None (none stated, or every column is a class)."""
        return None if self.background_class in (None, NO_BACKGROUND) else int(self.background_class)

    # -- JSON form ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.background_class == NO_BACKGROUND:
            out["background_class"] = None          # JSON null: every column is a class
        return out

    def _json_value(self, name: str, value: Any) -> Any:
        if name == "anchors":
            to_dict = getattr(value, "to_dict", None)
            if not callable(to_dict):
                raise ConfigError("an explicit anchor array cannot travel in the manifest; give an "
                                  "edgecv.AnchorSpec instead")
            return to_dict()
        if name == "box_coder":
            return box_coder_json(value)
        if name == "box_format" and isinstance(value, tuple):
            return list(value)
        return value

    @classmethod
    def json_keys(cls) -> tuple[str, ...]:
        return cls.allowed_keys() + ("box_index", "box_coordinates")   # TFLite metadata spellings

    @classmethod
    def _typed_fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        out = super()._typed_fields({k: v for k, v in data.items() if k not in ("box_index", "box_coordinates")})
        if "background_class" in data and data["background_class"] is None:
            out["background_class"] = NO_BACKGROUND
        if "box_format" not in out and data.get("box_index") is not None:
            out["box_format"] = data["box_index"]
        if "box_normalized" not in out and data.get("box_coordinates") is not None:
            out["box_normalized"] = data["box_coordinates"] != "pixel"
        return out


def _box_format(value: Any) -> str | tuple[int, int, int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        _choice("detection", "box_format", value, tuple(BOX_FORMATS))
        return value
    try:
        cols = tuple(int(c) for c in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"detection head box_format must be 'xyxy', 'yxyx' or 4 column positions, "
                          f"got {value!r}") from exc
    if sorted(cols) != [0, 1, 2, 3]:
        raise ConfigError(f"box columns must be a permutation of 0..3, got {list(cols)}")
    named = next((name for name, c in BOX_FORMATS.items() if c == cols), None)
    return named or cols   # type: ignore[return-value]


def parse_anchors(value: Any) -> Any:
    """An AnchorSpec from itself or its dict, or a checked float64 ``(N, 4)`` array (in the box coder's order).

    Raises:
        ConfigError: anything else, or an array with NaN / infinite values.
    """
    if value is None or hasattr(value, "generate"):
        return value
    if isinstance(value, Mapping):
        from .anchors import AnchorSpec

        return AnchorSpec.from_dict(dict(value))
    import numpy as np

    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"anchors must be an edgecv.AnchorSpec, its dict or an (N, 4) array, "
                          f"got {type(value).__name__}") from exc
    if arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
        raise ConfigError(f"anchors must be an AnchorSpec or an (N, 4) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigError("anchors contain NaN or infinite values")
    return arr.astype(np.float64)


def parse_box_coder(value: Any) -> Any:
    """A BoxCoder from itself or a manifest dict (``{"convention": "tf" | "center_variance", ...}`` or its to_dict).

    Raises:
        ConfigError: anything else, including numbers that are not numbers.
    """
    if value is None:
        return None
    from .boxes import BoxCoder

    if isinstance(value, BoxCoder):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"box_coder must be an edgecv.BoxCoder or a dict, got {type(value).__name__}")
    try:
        return _box_coder_from_dict(dict(value))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"box_coder {dict(value)!r} is not a box coder ({exc}); e.g. {{'convention': 'tf', "
                          "'scales': [10, 10, 5, 5]}} or {'convention': 'center_variance', "
                          "'variances': [0.1, 0.2]}") from exc


def _box_coder_from_dict(data: dict[str, Any]) -> Any:
    from .boxes import BoxCoder

    convention = data.pop("convention", None)
    if convention is None:
        return BoxCoder.from_dict(data)
    allowed = {"tf": {"scales"}, "center_variance": {"variances"}}
    if convention not in allowed:
        raise ConfigError(f"unknown box coder convention {convention!r}; use 'tf' or 'center_variance'")
    unknown = set(data) - allowed[convention]
    if unknown:
        raise ConfigError(f"unknown box coder fields {sorted(unknown)} for convention {convention!r}")
    if convention == "tf":
        return BoxCoder(order="yxhw", scales=tuple(data.get("scales", (10.0, 10.0, 5.0, 5.0))))
    variances = tuple(data.get("variances", (0.1, 0.2)))
    if len(variances) != 2:
        raise ConfigError(f"center_variance box coder needs variances [center, size], got {list(variances)}")
    return BoxCoder.from_variances(float(variances[0]), float(variances[1]), order="xywh")


def box_coder_json(coder: Any) -> dict[str, Any]:
    """The manifest form of a BoxCoder: the TF or centre-variance convention when it is one, else its to_dict()."""
    from .boxes import BoxCoder

    if coder.order == "yxhw":
        return {"convention": "tf", "scales": list(coder.scales)}
    s = coder.scales
    if coder.order == "xywh" and s[0] == s[1] and s[2] == s[3]:
        variances = [1.0 / s[0], 1.0 / s[2]]
        if all(math.isfinite(v) for v in variances) and BoxCoder.from_variances(*variances) == coder:
            return {"convention": "center_variance", "variances": variances}
    return coder.to_dict()
