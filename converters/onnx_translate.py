"""The translate stage of ONNX sources for TFLite artifacts: onnx2tf turns the ONNX graph into a TensorFlow SavedModel.

onnx2tf runs in its own Python (it pins TensorFlow, numpy and onnx versions that
do not co-install with the workstation environment), as a subprocess, in a
temporary working folder that holds a copy of the model (onnx2tf simplifies
its input in place; the user's file is never touched). Its SavedModel
(``-tb tf_converter -osd``) is the hand-over point: it reproduces the ONNX
outputs to ~1e-7 and edgecv's own TFLite path (:mod:`converters.tflite_export`,
calibrated through the manifest preprocessing) reads it in the workstation's
TensorFlow. onnx2tf 2.6.9 makes no network access (checked with the network
namespace removed); nothing is downloaded.

The translated graph takes NHWC images (onnx2tf turns NCHW inputs into NHWC)
and names its outputs its own way (``output_0``, ``Identity``...), in its own
order. :func:`match_outputs` maps each output role onto a translated output by
comparing values with the ONNX outputs on probe inputs (never names or sizes),
transposing NHWC back to the ONNX layout where onnx2tf moved the channels.

Where onnx2tf is (:func:`find_onnx2tf`): ``EDGECV_ONNX2TF`` (the ``onnx2tf``
executable, or the folder of its environment), else the repository's tool
environment ``.venv-onnx2tf`` (``make onnx2tf``), else ``onnx2tf`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import BackendNotAvailable, ConversionError

__all__ = ["Onnx2tfTool", "find_onnx2tf", "require_onnx2tf", "Translation", "translate_onnx", "match_outputs",
           "OutputMatch", "TranslatedModel", "translated_saved_model", "nhwc_shape", "tflite_input", "ENV_VAR", "TOOL_ENV", "INSTALL_HINT"]

#: The setting that says where onnx2tf is: its executable, or the folder of its environment.
ENV_VAR = "EDGECV_ONNX2TF"
#: The repository's tool environment, made by ``make onnx2tf``.
TOOL_ENV = Path(__file__).resolve().parents[1] / ".venv-onnx2tf"
#: How to get the tool environment (the command works from a clone of the repository).
INSTALL_HINT = ("run `make onnx2tf` in the edgecv repository (a Python 3.12 environment .venv-onnx2tf from "
                "requirements-onnx2tf.txt), or install it anywhere: `python3.12 -m venv ~/onnx2tf && "
                "~/onnx2tf/bin/pip install 'onnx2tf[tensorflow]==2.6.9'`, then set EDGECV_ONNX2TF=~/onnx2tf")
#: What works without onnx2tf: the targets that run the ONNX model itself (the Edge TPU has no such route).
ONNX_ROUTE = ("convert it for an ONNX Runtime target instead: formats='onnx' with target 'cpu', 'rpi4' or 'rpi5', "
              "or a 'jetson-*' target (the Coral Edge TPU runs TFLite only)")
#: Largest translation error accepted when matching an output, relative to the output's largest magnitude.
MATCH_RTOL = 1e-3
#: Seconds one onnx2tf run may take.
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Onnx2tfTool:
    """Where onnx2tf was found.

    Attributes:
        executable: the ``onnx2tf`` command.
        how: which setting found it ("EDGECV_ONNX2TF", "tool environment" or "PATH").
    """

    executable: Path
    how: str

    @property
    def bin_dir(self) -> Path:
        """The folder of the executable (its environment's ``bin``: onnxsim is run from there too)."""
        return self.executable.parent

    def version(self) -> str | None:
        """onnx2tf's version as its own Python reports it, or None when that Python cannot tell."""
        python = self.bin_dir / "python"
        if not python.exists():
            return None
        try:
            done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('onnx2tf'))"],
                                  capture_output=True, text=True, errors="replace", timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() or None if done.returncode == 0 else None


def find_onnx2tf() -> Onnx2tfTool | None:
    """onnx2tf from ``EDGECV_ONNX2TF``, else the repository's ``.venv-onnx2tf``, else PATH; None when absent.

    Raises:
        BackendNotAvailable: ``EDGECV_ONNX2TF`` is set but names no onnx2tf executable.
    """
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting:
        path = Path(setting).expanduser()
        exe = path / "bin" / "onnx2tf" if path.is_dir() else path
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            raise BackendNotAvailable(f"{ENV_VAR}={setting} names no onnx2tf executable (looked for {exe}); point it "
                                      f"at the onnx2tf command or its environment's folder, or unset it. To get "
                                      f"onnx2tf: {INSTALL_HINT}")
        return Onnx2tfTool(exe, ENV_VAR)
    exe = TOOL_ENV / "bin" / "onnx2tf"
    if exe.is_file() and os.access(exe, os.X_OK):
        return Onnx2tfTool(exe, "tool environment")
    found = shutil.which("onnx2tf")
    return Onnx2tfTool(Path(found), "PATH") if found else None


def require_onnx2tf() -> Onnx2tfTool:
    """:func:`find_onnx2tf`, refusing its absence.

    Raises:
        BackendNotAvailable: onnx2tf is not installed where edgecv looks, with how to install it.
    """
    tool = find_onnx2tf()
    if tool is None:
        raise BackendNotAvailable("TFLite from an ONNX model needs onnx2tf (it translates the graph to TensorFlow), "
                                  f"which is not installed: {INSTALL_HINT}. Or {ONNX_ROUTE}")
    return tool


@dataclass(frozen=True)
class OutputMatch:
    """One output role mapped onto the translated graph.

    Attributes:
        name: the translated output.
        to_nchw: onnx2tf moved the channels last: transpose NHWC -> NCHW to get the ONNX layout back.
        max_abs_diff: largest difference to the ONNX output on the probe inputs (output units).
    """

    name: str
    to_nchw: bool
    max_abs_diff: float


@dataclass(frozen=True)
class Translation:
    """onnx2tf's SavedModel of one ONNX source.

    Attributes:
        saved_model: the SavedModel folder onnx2tf wrote.
        seconds: how long onnx2tf took.
        version: onnx2tf's version, or None.
    """

    saved_model: Path
    seconds: float
    version: str | None


def translate_onnx(model: Any, workdir: Path, *, keep_input: str | None = None,
                   tool: Onnx2tfTool | None = None) -> Translation:
    """Translate the ONNX ModelProto *model* (fixed input shape) with onnx2tf into ``workdir/onnx2tf``.

    *keep_input* names an input already channels-last, whose shape onnx2tf must keep (``-kat``).

    Raises:
        BackendNotAvailable: onnx2tf is not installed.
        ConversionError: onnx2tf failed (its last error line is quoted) or wrote no SavedModel.
    """
    tool = tool if tool is not None else require_onnx2tf()
    source = workdir / "model.onnx"
    source.write_bytes(_without_initializer_inputs(model).SerializeToString())
    out = workdir / "onnx2tf"
    command = [str(tool.executable), "-i", source.name, "-o", out.name, "-tb", "tf_converter", "-osd", "-n"]
    if keep_input is not None:
        command += ["-kat", keep_input]
    env = {**os.environ, "PATH": f"{tool.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConversionError(f"onnx2tf did not finish translating the model within {TIMEOUT_S} s") from exc
    except OSError as exc:
        raise BackendNotAvailable(f"could not run onnx2tf ({tool.executable}): {exc}; {INSTALL_HINT}") from exc
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not (out / "saved_model.pb").is_file():
        raise ConversionError("onnx2tf could not translate the ONNX model to TensorFlow: "
                              f"{_last_error(done.stdout + done.stderr)}; {ONNX_ROUTE}")
    return Translation(out, seconds, tool.version())


def _without_initializer_inputs(model: Any) -> Any:
    """A copy of *model* whose graph inputs are the real inputs only (old PyTorch exports list weights as inputs)."""
    copy = type(model)()
    copy.CopyFrom(model)
    weights = {i.name for i in copy.graph.initializer}
    keep = [i for i in copy.graph.input if i.name not in weights]
    del copy.graph.input[:]
    copy.graph.input.extend(keep)
    return copy


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    text = (errors or lines or ["no output"])[-1]
    return "".join(c for c in text if c.isprintable())[:400]


def match_outputs(reference: Mapping[str, np.ndarray], translated: Mapping[str, np.ndarray]) -> dict[str, OutputMatch]:
    """Map each role of *reference* (ONNX outputs on probe inputs) onto the translated output with the same values.

    Values decide, not names or sizes: each translated output is compared as it is and, when rank 4, with
    its channels moved back first (NHWC -> NCHW). Each translated output serves one role; the closest pairs
    are taken first.

    Raises:
        ConversionError: a role no translated output reproduces within :data:`MATCH_RTOL`.
    """
    candidates = []
    for role, ref in reference.items():
        for name, got in translated.items():
            for to_nchw in (False, True):
                value = np.transpose(got, (0, 3, 1, 2)) if to_nchw and got.ndim == 4 else (None if to_nchw else got)
                if value is None or value.shape != ref.shape:
                    continue
                diff = float(np.max(np.abs(value.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
                candidates.append((diff / (1.0 + float(np.max(np.abs(ref), initial=0.0))), diff, role, name, to_nchw))
    matches: dict[str, OutputMatch] = {}
    used: set[str] = set()
    for rel, diff, role, name, to_nchw in sorted(candidates, key=lambda c: c[0]):
        if role in matches or name in used or rel > MATCH_RTOL:
            continue
        matches[role] = OutputMatch(name, to_nchw, diff)
        used.add(name)
    missing = [r for r in reference if r not in matches]
    if missing:
        closest = {r: min((c[1] for c in candidates if c[2] == r), default=None) for r in missing}
        raise ConversionError(f"onnx2tf's translation does not reproduce the ONNX output(s) {missing} (closest "
                              f"max |diff| {closest}; outputs {sorted(translated)}); {ONNX_ROUTE}")
    return matches


@dataclass(frozen=True)
class TranslatedModel:
    """An ONNX source as a SavedModel for edgecv's TFLite path.

    Attributes:
        saved_model: the SavedModel folder whose ``serving_default(image)`` (NHWC) returns ``{role: tensor}``
            in the ONNX outputs' layout.
        matches: role -> the onnx2tf output it was mapped onto.
        translation: the onnx2tf run.
    """

    saved_model: Path
    matches: Mapping[str, OutputMatch]
    translation: Translation

    def notes(self) -> list[str]:
        """What the report says about the translation."""
        version = f" {self.translation.version}" if self.translation.version else ""
        mapped = ", ".join(f"{role} <- {m.name}{' (NHWC -> NCHW)' if m.to_nchw else ''} (max |diff| {m.max_abs_diff:.2g})"
                           for role, m in self.matches.items())
        return [f"graph translated by onnx2tf{version} (tf_converter backend, SavedModel hand-over) in "
                f"{self.translation.seconds:.1f} s; outputs matched by value on the probe inputs: {mapped}"]


def translated_saved_model(source: Any, roles: Mapping[str, str], probe: np.ndarray, directory: Path) -> TranslatedModel:
    """Translate the ONNX *source* with onnx2tf and wrap it as ``serving_default(image) -> {role: tensor}``.

    Args:
        source: the ONNX :class:`converters.source.SourceModel`.
        roles: output role -> ONNX output name.
        probe: preprocessed inputs in the ONNX layout ``(n, *input_shape[1:])`` the outputs are matched on.
        directory: an empty folder for the translation and the wrapped SavedModel (``directory/model``).

    Raises:
        BackendNotAvailable: onnx2tf is not installed.
        ConversionError: onnx2tf failed, its graph takes another input, or reproduces not every output.
    """
    from .source import load_source

    nchw = source.layout == "nchw"
    translation = translate_onnx(source.handle, directory, keep_input=None if nchw else source.input_name)
    translated = load_source(translation.saved_model)
    want = nhwc_shape(source.input_shape) if nchw else tuple(source.input_shape)
    if tuple(translated.input_shape) != want:
        raise ConversionError(f"onnx2tf's graph takes input {translated.input_shape}, not {want}; {ONNX_ROUTE}")
    reference = source.predict(probe, roles)
    outputs = translated.predict(np.transpose(probe, (0, 2, 3, 1)) if nchw else probe,
                                 {name: name for name in translated.output_names})
    matches = match_outputs(reference, outputs)

    def to_onnx_layout(tf: Any, outs: dict) -> dict:
        return {r: (tf.transpose(t, [0, 3, 1, 2]) if matches[r].to_nchw else t) for r, t in outs.items()}

    translated.write_saved_model({r: m.name for r, m in matches.items()}, directory / "model", to_onnx_layout)
    return TranslatedModel(directory / "model", matches, translation)


def tflite_input(opened: Any, calibration: Any) -> tuple[Any, Any]:
    """The preprocessing a TFLite artifact of the ONNX source states (NHWC), and its calibration inputs in that layout.

    Args:
        opened: the :class:`converters.source.OpenedSource`.
        calibration: the :class:`converters.calibration.CalibrationSet` (read through the source's
            preprocessing), or None.

    Returns:
        ``(preprocessing, calibration)``: the same preprocessing with ``layout="nhwc"``, and an iterable of
        the calibration inputs with the channels last (the runtime's NCHW preprocessing is its NHWC one
        transposed, so these are exactly the inputs the device makes), or None.
    """
    preprocessing = replace(opened.preprocessing, layout="nhwc")
    if calibration is None or opened.model.layout != "nchw":
        return preprocessing, calibration
    return preprocessing, _ChannelsLast(calibration)


class _ChannelsLast:
    """Iterates (1, C, H, W) inputs as (1, H, W, C), again and again."""

    def __init__(self, inputs: Any) -> None:
        self.inputs = inputs

    def __iter__(self) -> Any:
        return (np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))) for x in self.inputs)


def nhwc_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(N, C, H, W) -> (N, H, W, C)."""
    return (shape[0], shape[2], shape[3], shape[1])
