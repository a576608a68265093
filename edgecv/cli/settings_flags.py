"""The model-settings flags ``edgecv annotate`` and ``edgecv run`` share, and ``--config FILE``.

The flags mirror the Python keywords in kebab case (``--background-class`` is
``background_class=``); ``--config`` holds the same keys (snake case) in a JSON or TOML
file, and a flag wins over the file. :func:`collect` gathers what was stated;
:func:`settings_manifest` turns it, for one loaded model, into a partial
:class:`edgecv.manifest.Manifest` (anchor presets are sized from the model's input).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..heads import BOX_FORMATS, DETECTION_FORMS, NO_BACKGROUND, SCORE_ACTIVATIONS
from .common import comma_floats

__all__ = ["add_settings_arguments", "collect", "settings_manifest", "ANCHOR_PRESETS", "BOX_CODER_PRESETS",
           "KEYS"]

ANCHOR_PRESETS = ("ultraface", "tf-ssd")
BOX_CODER_PRESETS = {"tf": {"convention": "tf", "scales": [10.0, 10.0, 5.0, 5.0]},
                     "ultraface": {"convention": "center_variance", "variances": [0.1, 0.2]}}
_PRE_KEYS = ("mean", "std", "color", "layout")
_HEAD_KEYS = ("form", "background_class", "score_activation", "box_format", "box_normalized", "anchors",
              "box_coder", "score_threshold", "iou_threshold", "max_detections")
#: every key ``--config`` may hold
KEYS = ("task", "labels", "outputs", "box_scales", "box_variances") + _PRE_KEYS + _HEAD_KEYS


def _background(text: str) -> int | str:
    if text.strip().lower() in ("none", "null"):
        return NO_BACKGROUND
    if text.strip().isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"--background-class takes a column index (e.g. 0) or none, got {text!r}")


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _roles(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        role, sep, name = part.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise argparse.ArgumentTypeError(f"--outputs takes ROLE=NAME pairs, e.g. boxes=boxes,scores=scores; "
                                             f"got {text!r}")
        out[role.strip()] = name.strip()
    return out


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the settings flags (labels, preprocessing, outputs, detection head, ``--config``) to *parser*."""
    group = parser.add_argument_group("model settings (override what the model states; see edgecv describe)")
    group.add_argument("--config", help="JSON or TOML file with the same settings as keys (snake case)")
    group.add_argument("--labels", help="label file (one label per line; see the README's label-file rule)")
    group.add_argument("--mean", type=comma_floats, help="per-channel mean on 0-255 pixels, e.g. 127 or 123.7,116.3,103.5")
    group.add_argument("--std", type=comma_floats, help="per-channel std on 0-255 pixels, e.g. 128")
    group.add_argument("--color", choices=("rgb", "bgr", "gray"), help="channel order the model expects")
    group.add_argument("--layout", choices=("nhwc", "nchw"), help="input layout")
    group.add_argument("--outputs", type=_roles, help="output roles, e.g. boxes=boxes,scores=scores")
    group.add_argument("--form", choices=DETECTION_FORMS, help="detect: output form")
    group.add_argument("--background-class", type=_background,
                       help="detect: score column that is background (e.g. 0), or none (every column is a class)")
    group.add_argument("--score-activation", choices=SCORE_ACTIVATIONS, help="detect: activation of the scores")
    group.add_argument("--box-format", choices=tuple(BOX_FORMATS), help="detect: corner order of decoded boxes")
    group.add_argument("--box-normalized", type=_boolean, metavar="{true,false}",
                       help="detect: decoded boxes are 0..1 of the input (true) or input pixels (false)")
    group.add_argument("--anchors", help=f"detect, raw form: a preset ({', '.join(ANCHOR_PRESETS)}; sized from the "
                                         "model input) or a JSON file holding an AnchorSpec dict")
    group.add_argument("--box-coder", choices=tuple(BOX_CODER_PRESETS),
                       help="detect, raw form: tf (yxhw, scales 10,10,5,5) or ultraface (variances 0.1,0.2)")
    group.add_argument("--box-scales", type=comma_floats, help="detect, raw form: TF box coder scales, e.g. 10,10,5,5")
    group.add_argument("--box-variances", type=comma_floats,
                       help="detect, raw form: centre and size variances, e.g. 0.1,0.2")
    group.add_argument("--score-threshold", type=float, help="minimum score to report")
    group.add_argument("--iou-threshold", type=float, help="detect: NMS IoU threshold")
    group.add_argument("--max-detections", type=int, help="detect: at most this many detections per image")


def _read_config(path: str) -> dict[str, Any]:
    """The settings in a JSON or TOML file (by suffix; anything else is tried as JSON).

    Raises:
        ConfigError: unreadable, not an object, or an unknown key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from exc
    try:
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError as exc:   # Python < 3.11
                raise ConfigError(f"config file {p}: TOML needs Python 3.11 or newer (tomllib); write the same keys "
                                  "as a .json file") from exc
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, RecursionError) as exc:       # RecursionError: nesting deeper than the parser goes
        raise ConfigError(f"config file {p} is not valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'}: "
                          f"{exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold an object of settings")
    for key in data:
        if key not in KEYS:
            raise ConfigError(f"config file {p}: unknown setting {key!r}{did_you_mean(str(key), KEYS)}; "
                              f"settings: {', '.join(KEYS)}")
    base = p.parent
    if isinstance(data.get("labels"), str):
        data["labels"] = str(base / data["labels"])
    if isinstance(data.get("anchors"), str) and data["anchors"] not in ANCHOR_PRESETS:
        data["anchors"] = str(base / data["anchors"])
    return data


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """The settings stated by ``--config`` and the flags (flags win), by keyword name; unstated ones left out.

    Raises:
        ConfigError: a bad config file.
    """
    stated = _read_config(args.config) if getattr(args, "config", None) else {}
    for key in KEYS:
        value = getattr(args, key, None)
        if value is not None and key != "task":
            stated[key] = value
    return stated


def _anchors(value: Any, input_width: int, input_height: int) -> Any:
    """An AnchorSpec from a preset name, a JSON file holding its dict, or the dict itself.

    Raises:
        ConfigError: an unknown preset, an unreadable file, or a spec that is not one.
    """
    from ..anchors import AnchorSpec

    if isinstance(value, Mapping):
        return AnchorSpec.from_dict(dict(value))
    if value == "ultraface":
        return AnchorSpec.ultraface(input_width)
    if value == "tf-ssd":
        # the TF Object Detection API's ssd_anchor_generator on MobileNet features: stride 16, then
        # five layers each half the size (19, 10, 5, 3, 2, 1 at 300x300: 1917 anchors)
        maps = []
        height, width = max(1, -(-input_height // 16)), max(1, -(-input_width // 16))
        for _ in range(6):
            maps.append((height, width))
            height, width = max(1, -(-height // 2)), max(1, -(-width // 2))
        return AnchorSpec.ssd(tuple(maps))
    path = Path(str(value))
    if not path.is_file():
        raise ConfigError(f"--anchors {value!r} is neither a preset ({', '.join(ANCHOR_PRESETS)}) nor a file"
                          f"{did_you_mean(str(value), ANCHOR_PRESETS)}")
    try:
        return AnchorSpec.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"anchors file {path} does not hold an AnchorSpec dict: {exc}") from exc


def _box_coder(stated: Mapping[str, Any]) -> Any:
    """The box coder dict from ``box_coder`` (preset or dict), ``box_scales`` or ``box_variances``.

    Raises:
        ConfigError: more than one given, or an unknown preset.
    """
    given = [k for k in ("box_coder", "box_scales", "box_variances") if stated.get(k) is not None]
    if len(given) > 1:
        raise ConfigError(f"give one of --box-coder, --box-scales, --box-variances, not {' and '.join(given)}")
    if not given:
        return None
    value = stated[given[0]]
    if given[0] == "box_scales":
        return {"convention": "tf", "scales": list(value)}
    if given[0] == "box_variances":
        return {"convention": "center_variance", "variances": list(value)}
    if isinstance(value, str):
        if value not in BOX_CODER_PRESETS:
            raise ConfigError(f"unknown box coder {value!r}{did_you_mean(value, tuple(BOX_CODER_PRESETS))}; "
                              f"presets: {', '.join(BOX_CODER_PRESETS)}")
        return dict(BOX_CODER_PRESETS[value])
    return value


def settings_manifest(task: str, stated: Mapping[str, Any], model: Any) -> Any:
    """A partial :class:`Manifest` of the *stated* settings for *task*, sized for *model*'s first input.

    Raises:
        ConfigError: a bad value (checked by the manifest and the typed head).
    """
    from ..manifest import Manifest, read_labels
    from ..task_registry import get_task

    info = get_task(task)
    labels = stated.get("labels")
    if isinstance(labels, str):
        labels = read_labels(labels)
    pre = {k: stated[k] for k in _PRE_KEYS if stated.get(k) is not None} or None
    head = {k: stated[k] for k in _HEAD_KEYS if k in stated and k not in ("anchors", "box_coder")}
    coder = _box_coder(stated)
    if coder is not None:
        head["box_coder"] = coder
    if stated.get("anchors") is not None:
        size = model.preprocessor(0, pre).width, model.preprocessor(0, pre).height
        head["anchors"] = _anchors(stated["anchors"], *size)
    if info.name != "detection":
        head.pop("score_threshold", None)   # a keyword of the other tasks (edgecv run passes it), not a head field
    extra = [k for k in head if k not in info.head_type.allowed_keys()]
    if extra:
        raise ConfigError(f"setting(s) {', '.join(extra)} do not apply to task {info.name!r}")
    if head.get("background_class") == NO_BACKGROUND:
        head["background_class"] = None     # JSON null: every column is a class
    return Manifest(task=info.name, labels=labels, preprocessing=pre, outputs=dict(stated.get("outputs") or {}),
                    head=head or None, source="arguments")
