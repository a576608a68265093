"""Where an ONNX model's external tensor data lives, checked to stay inside the model's folder."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ModelLoadError

if TYPE_CHECKING:
    from .onnx_types import OnnxModel

__all__ = ["check_external_location", "resolve_external_data"]


def check_external_location(location: str, model_dir: str | os.PathLike[str], tensor: str = "?") -> str:
    """Absolute path of one external-data *location*, checked to stay inside *model_dir*.

    Raises:
        ModelLoadError: the location is empty, holds a NUL byte, is absolute,
            escapes the folder (``..`` or a symlink pointing out), or names a missing file.
    """
    folder = os.path.realpath(os.path.abspath(os.fspath(model_dir)))
    if not location:
        raise ModelLoadError(f"initializer '{tensor}' is marked external but names no location; re-export the model")
    if "\0" in location:
        raise ModelLoadError(f"initializer '{tensor}' names external data location {location!r} with a NUL byte; "
                             "the file is corrupt, re-export the model")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise ModelLoadError(
            f"initializer '{tensor}' points at absolute path '{location}'; external data must sit next to the "
            "model file, re-save it with a relative location"
        )
    full = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, full]) != folder:
        raise ModelLoadError(
            f"initializer '{tensor}' points at '{location}', outside the model folder {folder}; refusing to "
            "read it (re-save the model with its data files beside it)"
        )
    if not os.path.isfile(full):
        raise ModelLoadError(
            f"initializer '{tensor}' needs external data file '{location}', missing from {folder}; copy it "
            "next to the model"
        )
    return full


def resolve_external_data(model: OnnxModel, model_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Absolute paths of the external-data files *model* needs, each checked to stay inside its folder.

    Args:
        model: the parsed model.
        model_path: where the ``.onnx`` file is; locations are relative to its folder.

    Raises:
        ModelLoadError: a location is empty, absolute, escapes the model folder
            (``..`` or a symlink pointing out), or names a missing file.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(model_path)))
    paths: list[str] = []
    for ref in model.external_data():
        full = check_external_location(ref.location, folder, ref.tensor)
        if full not in paths:
            paths.append(full)
    return tuple(paths)
