"""The model manifest: what a model is for and how to feed it.

A manifest travels with the model: inside ONNX ``metadata_props`` (key
``edgecv.manifest``), inside the TFLite flatbuffer as a metadata entry named
``EDGECV_MANIFEST``, or in a sidecar JSON file ``<model file>.json`` (for
example ``det.tflite.json``) which, when present, overrides the embedded one.
Standard TFLite metadata (normalisation, packed label files, box layout) is
read too and fills whatever edgecv's own manifest leaves open.

Everything is JSON; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean
from .heads import Head
from .task_registry import TASK_NAMES as TASKS
from .task_registry import TASKS as _TASK_INFOS
from .task_registry import get_task, normalize_task

__all__ = [
    "Preprocessing",
    "Manifest",
    "TASKS",
    "normalize_task",
    "read_labels",
    "parse_labels",
    "MANIFEST_KEY",
    "TFLITE_MANIFEST_NAME",
    "SCHEMA_VERSION",
]

log = logging.getLogger("edgecv")

SCHEMA_VERSION = 1
MANIFEST_KEY = "edgecv.manifest"          # ONNX metadata_props key
TFLITE_MANIFEST_NAME = "EDGECV_MANIFEST"  # TFLite metadata entry name
MAX_LABEL_FILE_BYTES = 8 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024 * 1024

_COLORS = ("rgb", "bgr", "gray")
_LAYOUTS = ("nhwc", "nchw")
_RESIZES = ("stretch", "letterbox")
_INTERPOLATIONS = ("linear", "area", "nearest", "cubic")


def _channels(value: Any, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        values: tuple[float, ...] = (float(value),)
    else:
        try:
            values = tuple(float(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"preprocessing {name} must be a number or one number per channel, got {value!r}") from exc
    if len(values) not in (1, 3) or any(v != v for v in values):
        raise ConfigError(f"preprocessing {name} must hold 1 or 3 finite numbers, got {value!r}")
    return values


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model input.

    Attributes:
        mean: per-channel mean on 0-255 pixels (1 or 3 values), or None for "not stated".
        std: per-channel std on 0-255 pixels; the model sees ``(pixel - mean) / std``.
        color: channel order the model expects: "rgb", "bgr" or "gray".
        layout: "nhwc" or "nchw"; None takes it from the input shape.
        resize: "stretch" (aspect ratio not kept) or "letterbox" (kept, padded).
        pad_value: letterbox fill, 0-255.
        interpolation: "linear", "area", "nearest" or "cubic".
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color: str = "rgb"
    layout: str | None = None
    resize: str = "stretch"
    pad_value: int = 0
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _channels(self.mean, "mean"))
        object.__setattr__(self, "std", _channels(self.std, "std"))
        if self.std is not None and any(s == 0 for s in self.std):
            raise ConfigError(f"preprocessing std must not be zero, got {self.std}")
        for name, value, allowed in (("color", self.color, _COLORS), ("resize", self.resize, _RESIZES),
                                     ("interpolation", self.interpolation, _INTERPOLATIONS)):
            if value not in allowed:
                raise ConfigError(f"preprocessing {name}={value!r} is not one of {allowed}{did_you_mean(str(value), allowed)}")
        if self.layout is not None and self.layout not in _LAYOUTS:
            raise ConfigError(f"preprocessing layout={self.layout!r} is not one of {_LAYOUTS}")
        if not isinstance(self.pad_value, int) or not 0 <= self.pad_value <= 255:
            raise ConfigError(f"preprocessing pad_value must be an int in 0..255, got {self.pad_value!r}")

    @classmethod
    def coerce(cls, value: Preprocessing | Mapping[str, Any] | None) -> Preprocessing | None:
        """Accept a Preprocessing, a dict of its fields, or None.

        Raises:
            ConfigError: unknown keys or invalid values.
        """
        if value is None or isinstance(value, Preprocessing):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"preprocessing must be a Preprocessing or a dict, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ConfigError(f"unknown preprocessing field {unknown[0]!r}{did_you_mean(unknown[0], known)}")
        return cls(**dict(value))

    def merged(self, other: Preprocessing | None) -> Preprocessing:
        """This one with the stated mean/std of *other* filled in where this one has none."""
        if other is None:
            return self
        return replace(self, mean=self.mean if self.mean is not None else other.mean,
                       std=self.std if self.std is not None else other.std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
            "color": self.color, "layout": self.layout, "resize": self.resize,
            "pad_value": self.pad_value, "interpolation": self.interpolation,
        }


@dataclass(frozen=True)
class Manifest:
    """What travels with a model.

    Attributes:
        task: canonical task name, or None when unknown.
        labels: class names, index = model output index minus ``label_offset``... see ``label_for``.
        label_offset: how many leading output classes have no label row (e.g. 1
            when the label file lacks the background row the model has).
        preprocessing: how images become the input.
        outputs: output role -> output tensor name (e.g. {"boxes": "...", "scores": "..."}).
        head: the task's typed head (:mod:`edgecv.heads`; classifier kind, score activation, anchors,
            box coder, ...), or None when nothing is stated and the task is unknown. A dict of
            settings is accepted and checked against the task's head type.
        quantization: summary of how the model was quantized.
        target: the target profile name it was converted for.
        provenance: source hash, tool versions, calibration set hash and size, ...
        source: where this manifest came from ("edgecv", "sidecar", "tflite-metadata", "arguments", "none").
    """

    task: str | None = None
    labels: tuple[str, ...] | None = None
    label_offset: int = 0
    preprocessing: Preprocessing | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    head: Head | None = None
    quantization: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    source: str = "none"

    def __post_init__(self) -> None:
        if self.task is not None:
            object.__setattr__(self, "task", normalize_task(self.task))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        if not isinstance(self.label_offset, int) or self.label_offset < 0:
            raise ConfigError(f"label_offset must be a non-negative int, got {self.label_offset!r}")
        object.__setattr__(self, "preprocessing", Preprocessing.coerce(self.preprocessing))
        object.__setattr__(self, "head", _typed_head(self.task, self.head))

    def head_as(self, head_type: type[Head]) -> Head:
        """The head when it is a *head_type*, else an empty one (nothing stated)."""
        return self.head if isinstance(self.head, head_type) else head_type()

    def label_for(self, class_index: int) -> str | None:
        """Label of model output class *class_index*, or None when it has none."""
        if self.labels is None:
            return None
        i = class_index - self.label_offset
        return self.labels[i] if 0 <= i < len(self.labels) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "labels": list(self.labels) if self.labels is not None else None,
            "label_offset": self.label_offset,
            "preprocessing": self.preprocessing.to_dict() if self.preprocessing is not None else None,
            "outputs": dict(self.outputs),
            "head": self.head.to_dict() if self.head is not None else {},
            "quantization": _plain(self.quantization),
            "target": self.target,
            "provenance": _plain(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "edgecv") -> Manifest:
        """Build from a parsed JSON object.

        Raises:
            ConfigError: not an object, newer schema, or invalid fields.
        """
        if not isinstance(data, Mapping):
            raise ConfigError("manifest must be a JSON object; regenerate it with edgecv convert")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ConfigError(f"manifest schema_version {version!r} is newer than this edgecv understands "
                              f"({SCHEMA_VERSION}); upgrade edgecv")
        known = {f.name for f in fields(cls)} - {"source"}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("outputs", "quantization", "provenance"):
            if key in kwargs and kwargs[key] is None:
                kwargs[key] = {}
            if key in kwargs and not isinstance(kwargs[key], Mapping):
                raise ConfigError(f"manifest field {key!r} must be an object")
        if kwargs.get("head") is not None and not isinstance(kwargs["head"], Mapping):
            raise ConfigError("manifest field 'head' must be an object")
        if kwargs.get("label_offset") is None:
            kwargs.pop("label_offset", None)
        return cls(**kwargs, source=source)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "edgecv") -> Manifest:
        """Parse manifest JSON.

        Raises:
            ConfigError: invalid JSON or content.
        """
        if len(text) > MAX_MANIFEST_BYTES:
            raise ConfigError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes; refusing to parse it")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"manifest is not valid JSON ({exc}); fix or delete it") from exc
        except RecursionError as exc:
            raise ConfigError("manifest JSON is nested too deeply to be a manifest; fix or delete it") from exc
        return cls.from_dict(data, source=source)

    def merged_over(self, base: Manifest) -> Manifest:
        """Fields this manifest states win; the rest come from *base*."""
        def pick(mine: Any, theirs: Any) -> Any:
            empty = mine is None or (isinstance(mine, Mapping) and not mine)
            return theirs if empty else mine
        return Manifest(
            task=pick(self.task, base.task),
            labels=pick(self.labels, base.labels),
            label_offset=self.label_offset if self.labels is not None else base.label_offset,
            preprocessing=(self.preprocessing.merged(base.preprocessing) if self.preprocessing is not None
                           else base.preprocessing),
            outputs={**dict(base.outputs), **dict(self.outputs)},
            head=_merged_head(self.head, base.head),
            quantization=pick(self.quantization, base.quantization),
            target=pick(self.target, base.target),
            provenance=pick(self.provenance, base.provenance),
            source=self.source if self.source != "none" else base.source,
        )


def _plain(value: Any) -> Any:
    """Convert mappings/sequences/numpy scalars to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _typed_head(task: str | None, head: Any) -> Head | None:
    """The manifest's head as the task's typed head (see :mod:`edgecv.heads`).

    Without a task, a dict of settings is typed by the one head type whose keys cover it.

    Raises:
        ConfigError: a head of another task, unknown keys, bad values, or settings that fit no single task.
    """
    if head is not None and not isinstance(head, Mapping):
        raise ConfigError(f"manifest head must be an object of settings, got {type(head).__name__}")
    if task is not None:
        info = get_task(task)
        if isinstance(head, Head) and not isinstance(head, info.head_type):
            raise ConfigError(f"manifest head is a {head.task} head but the task is {task!r}")
        return info.head(head)
    if head is None or isinstance(head, Head):
        return head
    if not head:
        return None
    fits = [t for t in _TASK_INFOS if set(head) <= set(t.head_type.json_keys())]
    if len(fits) != 1:
        raise ConfigError(f"manifest head settings {sorted(head)} need the task stated "
                          "(\"task\": \"detection\", ...) to be read")
    return fits[0].head(head)


def _merged_head(mine: Head | None, base: Head | None) -> Head | None:
    if mine is not None and base is not None and type(mine) is type(base):
        return mine.merged_over(base)
    return mine if mine is not None else base


def parse_labels(text: str) -> tuple[str, ...]:
    """Labels from label-file text: one per line, or ``index label`` / ``index: label`` lines.

    Blank trailing lines are ignored. Numbered files are placed at their index
    (gaps become empty strings).
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    numbered = {}
    for ln in lines:
        head, sep, rest = ln.replace(":", " ", 1).partition(" ")
        if not (sep and head.isdigit() and rest.strip()):
            numbered = {}
            break
        numbered[int(head)] = rest.strip()
    if numbered and len(numbered) == len(lines):
        size = max(numbered) + 1
        return tuple(numbered.get(i, "") for i in range(size))
    return tuple(lines)


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """Read a label file as UTF-8 text (capped at 8 MiB).

    Raises:
        ConfigError: missing, unreadable, too large or not text.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read label file {p}: {exc.strerror or exc}") from exc
    if size > MAX_LABEL_FILE_BYTES:
        raise ConfigError(f"label file {p} is {size} bytes (limit {MAX_LABEL_FILE_BYTES}); is it really a label file?")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"label file {p} is not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read label file {p}: {exc.strerror or exc}") from exc
    return parse_labels(text)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``<model file>.json``, e.g. ``det.tflite.json``."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def read_sidecar(model_path: str | os.PathLike) -> Manifest | None:
    """The sidecar manifest of *model_path*, if one exists.

    Raises:
        ConfigError: the sidecar exists but is invalid.
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ConfigError(f"manifest {path} is larger than {MAX_MANIFEST_BYTES} bytes; it is not an edgecv "
                              "manifest, remove it")
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    try:
        return Manifest.from_json(text, source="sidecar")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def write_sidecar(model_path: str | os.PathLike, manifest: Manifest, *, overwrite: bool = True) -> Path:
    """Write ``<model file>.json`` atomically and return its path."""
    from .atomic import atomic_write

    return atomic_write(sidecar_path(model_path), manifest.to_json(), overwrite=overwrite)


def from_tflite_metadata(model_bytes: bytes, metadata: Mapping[str, bytes], output_names: list[str]) -> Manifest:
    """Manifest from what a TFLite file carries: edgecv's own entry and/or standard metadata.

    Raises:
        ConfigError: edgecv's embedded manifest is invalid.
        ModelLoadError: the standard metadata names packed label files but their archive is damaged.
    """
    own = None
    if TFLITE_MANIFEST_NAME in metadata:
        own = Manifest.from_json(metadata[TFLITE_MANIFEST_NAME], source="edgecv")
    std = None
    if "TFLITE_METADATA" in metadata:
        from .errors import ModelLoadError
        from .formats.tflite_metadata import packed_files, parse_model_metadata

        try:
            md = parse_model_metadata(metadata["TFLITE_METADATA"])
        except ModelLoadError as exc:
            log.warning("ignoring unreadable standard TFLite metadata: %s", exc)
        else:  # a damaged archive of packed labels is a truncated file: raised, never silently label-less
            std = _from_standard_metadata(replace(md, files=packed_files(model_bytes, md.wanted_files)), output_names)
    if own is not None and std is not None:
        return own.merged_over(std)
    return own or std or Manifest()


_STD_ROLE_NAMES = {"location": "boxes", "locations": "boxes", "classes": "classes", "category": "classes",
                   "score": "scores", "scores": "scores", "number of detections": "count"}


def _from_standard_metadata(md: Any, output_names: list[str]) -> Manifest:
    pre = None
    head = None
    if md.inputs:
        t = md.inputs[0]
        color = "gray" if t.color_space == "grayscale" else "rgb"
        if t.mean is not None or t.std is not None:
            pre = Preprocessing(mean=t.mean, std=t.std, color=color)
        else:
            pre = Preprocessing(color=color)
    labels = None
    outputs: dict[str, str] = {}
    for i, t in enumerate(md.outputs):
        if t.label_file and t.label_file in md.files and labels is None:
            try:
                labels = parse_labels(md.files[t.label_file].decode("utf-8"))
            except UnicodeDecodeError:
                labels = None
        role = _STD_ROLE_NAMES.get(t.name.lower())
        if role is not None and i < len(output_names):
            outputs[role] = output_names[i]
        if t.box_index is not None:
            from .heads import DetectionHead

            normalized = None if t.box_coordinates is None else t.box_coordinates != "pixel"
            head = DetectionHead(box_format=tuple(t.box_index), box_normalized=normalized)
    return Manifest(labels=labels, preprocessing=pre, outputs=outputs, head=head, source="tflite-metadata")
