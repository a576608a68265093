"""The edgecv error tree.

Every failure edgecv reports is an :class:`EdgeCVError`. Backend exceptions
(TensorFlow, LiteRT, ONNX Runtime, OpenCV) are translated at the boundary with
``raise ... from exc`` so the original cause stays visible in the traceback.
Messages say what went wrong *and* what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "EdgeCVError",
    "ConfigError",
    "BackendNotAvailable",
    "ModelLoadError",
    "IncompatibleModelError",
    "InferenceError",
    "ConversionError",
    "CalibrationError",
    "UnsupportedOpError",
    "UnknownTargetError",
    "did_you_mean",
]


class EdgeCVError(Exception):
    """Base class of every error edgecv raises on purpose."""


class ConfigError(EdgeCVError, ValueError):
    """A bad argument, option, image or file content supplied by the caller."""


class BackendNotAvailable(EdgeCVError, ImportError):
    """A runtime, delegate or tool that the request needs is not installed."""


class ModelLoadError(EdgeCVError):
    """A model file is missing, unreadable, truncated or not a model."""


class IncompatibleModelError(EdgeCVError):
    """A model loaded fine but does not fit the task or the target."""


class InferenceError(EdgeCVError):
    """The runtime failed while running a loaded model."""


class ConversionError(EdgeCVError):
    """Converting or quantizing a model failed."""


class CalibrationError(ConversionError):
    """The calibration data set is empty, malformed or unsuitable."""


class UnsupportedOpError(ConversionError):
    """The model uses an operator the requested format or target cannot run."""


class UnknownTargetError(ConfigError, KeyError):
    """A hardware target name that edgecv does not know."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for close matches of *word*, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
