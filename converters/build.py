"""The build stage: each planned artifact as a TFLite or ONNX file with its manifest embedded, in the staging folder.

:func:`build_artifact` builds one plan and can be called again for the same
conversion (another plan, or the same one into another file); the source's
exports are made once (:class:`converters.exports.SourceExports`). Plans that
ask for it are then compiled for the Edge TPU (:func:`compile_staged_for_edgetpu`)
when ``edgetpu_compiler`` is installed.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecv.atomic import atomic_write
from edgecv.errors import ConversionError
from edgecv.manifest import MANIFEST_KEY, TFLITE_MANIFEST_NAME, Manifest

from .context import ConversionContext
from .manifest_base import artifact_manifest
from .plan import Plan
from .quant_choice import QuantChoice

__all__ = ["StagedArtifact", "EdgeTpuBuild", "build_artifact", "onnx_method", "onnx_work_dir", "tflite_inputs", "tflite_calibrated", "compile_staged_for_edgetpu", "build_artifacts"]

log = logging.getLogger("edgecv.converters")


@dataclass(frozen=True)
class EdgeTpuBuild:
    """The Edge TPU compile of one staged int8 TFLite artifact.

    Attributes:
        compiled: the staged ``*_edgetpu.tflite`` (manifest embedded), or None when not compiled.
        info: the compile outcome for ``ConversionReport.edgetpu`` (as ``EdgeTpuCompileResult.to_dict()``).
        note: why it was not compiled, for the report's notes, or None.
    """

    compiled: Path | None
    info: Mapping[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class StagedArtifact:
    """One artifact built into the staging folder.

    Attributes:
        plan: what it is.
        name: its file name (also its name in the output folder when published).
        path: the staged file.
        notes: what its converter reported (e.g. the ONNX quantizer's fallbacks).
        edgetpu: its Edge TPU compile, when the plan asked for one.
        quant: how an int8 build departs from the plain one (kept float layers, method), or None.
    """

    plan: Plan
    name: str
    path: Path
    notes: tuple[str, ...] = ()
    edgetpu: EdgeTpuBuild | None = None
    quant: QuantChoice | None = None


def build_artifact(ctx: ConversionContext, plan: Plan, *, dest: Path | None = None,
                   quant: QuantChoice | None = None) -> StagedArtifact:
    """Build *plan* into the staging folder (default file: its planned name), with its manifest embedded.

    *quant* (int8 only) keeps layers in float, widens ranges or picks the ONNX calibration method.

    Raises:
        ConfigError: *dest* exists already.
        UnsupportedOpError: an op the precision/format cannot express (named).
        ConversionError: the converter failed, or the artifact lost an output role.
    """
    name = ctx.plans.names[plan]
    path = dest if dest is not None else ctx.stage / name
    log.info("building %s", path.name)
    quant = quant if plan.precision == "int8" else None
    build = _build_tflite if plan.format == "tflite" else _build_onnx
    notes = build(ctx, plan, path, quant or QuantChoice())
    return StagedArtifact(plan, name, path, tuple(notes), quant=quant)


def onnx_method(ctx: ConversionContext, quant: QuantChoice) -> str:
    """The ONNX calibration method of a build: *quant*'s, else the conversion's ("auto" starts with minmax)."""
    method = quant.method or ctx.options.calibration_method
    return "minmax" if method == "auto" else method


def _manifest(ctx: ConversionContext, plan: Plan, outputs: Mapping[str, str], extra: Mapping[str, Any],
              quant: QuantChoice) -> Manifest:
    options = ctx.options
    return artifact_manifest(ctx.manifest, plan, outputs, extra, calibration=ctx.data.calibration,
                             calibration_method=onnx_method(ctx, quant), per_channel=options.per_channel,
                             kept_float=quant.kept_float, widened=[t for t, _, _ in quant.widened],
                             activations=quant.activations,
                             symmetric_activations=plan.format == "onnx" and _symmetric_activations(ctx))


def _build_tflite(ctx: ConversionContext, plan: Plan, dest: Path, quant: QuantChoice) -> list[str]:
    from .tflite_export import convert_tflite
    from .tflite_writer import embed_metadata, signature_outputs

    calib, roles = ctx.data.calibration, ctx.source.roles
    saved_model = ctx.exports.saved_model()
    preprocessing, notes, extra = None, [], {"converter": "tf.lite.TFLiteConverter"}
    if ctx.source.model.is_onnx:                  # onnx2tf's graph takes NHWC images: so do calibration and the device
        from .onnx_translate import tflite_input

        preprocessing, _ = tflite_input(ctx.source, None)
        notes = ctx.exports.translated.notes()
        extra = {"converter": "onnx2tf + tf.lite.TFLiteConverter", "onnx2tf": ctx.exports.translated.translation.version}
    representative = (lambda: tflite_inputs(ctx, calib)) if plan.precision == "int8" else None
    if quant.kept_float:
        from .quant_debug_tflite import selective_int8

        data = selective_int8(tflite_calibrated(ctx), plan.io_dtype, quant.kept_float)
    else:
        data = convert_tflite(str(saved_model), precision=plan.precision, io_dtype=plan.io_dtype,
                              representative=representative, activations16=quant.activations == "int16")
    names = signature_outputs(data)
    missing = [r for r in roles if r not in names]
    if missing:
        raise ConversionError(f"the TFLite model lost outputs {missing}; cannot map its roles")
    manifest = _manifest(ctx, plan, {r: names[r] for r in roles}, extra, quant)
    if preprocessing is not None:
        manifest = replace(manifest, preprocessing=preprocessing)
    data = embed_metadata(data, TFLITE_MANIFEST_NAME, manifest.to_json().encode("utf-8"))
    atomic_write(dest, data, overwrite=False)
    return notes


def _build_onnx(ctx: ConversionContext, plan: Plan, dest: Path, quant: QuantChoice) -> list[str]:
    from .onnx_export import opset_of, quantize_int8_dynamic, quantize_int8_static, set_metadata, to_fp16

    source, options = ctx.source.model, ctx.options
    model = ctx.exports.float_onnx()
    notes: list[str] = []
    converter = "source ONNX" if source.is_onnx else "tf2onnx"
    if plan.precision == "fp16":
        model, converter = to_fp16(model), converter + " + onnxruntime float16 (keep_io_types)"
    elif plan.precision == "int8":
        calib = ctx.data.calibration
        input_name = source.input_name if source.is_onnx else "image"
        model, notes = quantize_int8_static(model, input_name, lambda: iter(calib), method=onnx_method(ctx, quant),
                                            per_channel=options.per_channel, nodes_to_exclude=quant.kept_float,
                                            activation_type=quant.activations,
                                            symmetric_activations=_symmetric_activations(ctx),
                                            range_overrides={t: (lo, hi) for t, lo, hi in quant.widened},
                                            work_dir=onnx_work_dir(ctx))
        converter += " + onnxruntime.quantization.quantize_static (QDQ)"
    elif plan.precision == "dynamic":
        model, converter = quantize_int8_dynamic(model), converter + " + onnxruntime.quantization.quantize_dynamic"
    outputs = {role: (name if source.is_onnx else role) for role, name in ctx.source.roles.items()}
    graph_outputs = {o.name for o in model.graph.output}
    missing = [n for n in outputs.values() if n not in graph_outputs]
    if missing:
        raise ConversionError(f"the ONNX model lost outputs {missing}; cannot map its roles")
    manifest = _manifest(ctx, plan, outputs, {"converter": converter, "opset": opset_of(model),
                                              "conversion_notes": notes}, quant)
    model = set_metadata(model, MANIFEST_KEY, manifest.to_json())
    atomic_write(dest, model.SerializeToString(), overwrite=False)
    return notes


def _symmetric_activations(ctx: ConversionContext) -> bool:
    """Whether the conversion's target needs ONNX activation zero points of 0 (TensorRT)."""
    import targets

    name = ctx.plans.target_name
    return name is not None and targets.symmetric_activations(name, "onnx")


def tflite_inputs(ctx: ConversionContext, inputs: Iterable[Any]) -> Iterator[Any]:
    """Preprocessed source inputs, (1, ...) arrays, as the TFLite converter and artifact take them.

    A Keras/SavedModel export takes the source's own layout, so they pass as they are; an NCHW ONNX model
    translated by onnx2tf takes NHWC images, so they are transposed here (the runtime's NCHW preprocessing
    is its NHWC one transposed: these are exactly the inputs the device makes), and the calibration, the
    per-layer diagnosis and its output check all follow.
    """
    if ctx.source.model.is_onnx and ctx.source.model.layout == "nchw":
        import numpy as np

        return (np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))) for x in inputs)
    return iter(inputs)


def tflite_calibrated(ctx: ConversionContext) -> bytes:
    """The calibrated, not yet quantized TFLite model of this conversion (made once, in the staging folder)."""
    from .quant_debug_tflite import calibrated_model

    calib = ctx.data.calibration
    return calibrated_model(str(ctx.exports.saved_model()), lambda: tflite_inputs(ctx, calib),
                            tflite_calibrated_path(ctx))


def tflite_calibrated_path(ctx: ConversionContext) -> Path:
    """Where :func:`tflite_calibrated` keeps its model."""
    return ctx.stage / ".tflite-quant" / "calibrated.tflite"


def onnx_work_dir(ctx: ConversionContext) -> Path:
    """The staging sub-folder where the ONNX quantizer keeps the pre-processed model and calibrated ranges."""
    folder = ctx.stage / ".onnx-quant"
    folder.mkdir(exist_ok=True)
    return folder


def compile_staged_for_edgetpu(ctx: ConversionContext, staged: StagedArtifact) -> StagedArtifact:
    """*staged* with its Edge TPU compile (``edgetpu_compiler`` run in the staging folder, manifest re-embedded).

    A missing compiler or a failed compile is not an error: the outcome says so, and the note says
    what to run where (the command names the published file, not the staging copy).

    Raises:
        ConversionError: the model cannot be compiled at all (float or dynamic tensors).
    """
    from edgecv.formats.tflite import read_tflite

    manifest_json = read_tflite(str(staged.path)).metadata[TFLITE_MANIFEST_NAME]
    final = ctx.plans.destinations[staged.plan]
    compiled, info = _run_compiler(staged.path, ctx.stage, manifest_json, final)
    note = None
    if compiled is None and not info.get("compiler_found", True):
        note = (f"Edge TPU compile not done: edgetpu_compiler is not installed here; on an "
                f"x86-64 Linux host run `{info.get('command_line')}` (install hint in report.edgetpu)")
    elif compiled is None:
        note = f"Edge TPU compile failed: {info.get('failure')}"
    return replace(staged, edgetpu=EdgeTpuBuild(compiled, info, note))


def _run_compiler(staged: Path, stage: Path, manifest_json: bytes, final: Path) -> tuple[Path | None, dict[str, Any]]:
    """Run edgetpu_compiler on a staged int8 model when it is installed; re-embed the manifest.

    When the compiler is missing, the reported command names the published
    file (*final*) and its folder, not the staging copy.
    """
    try:
        from .edgetpu import compile_for_edgetpu, compiler_command
    except ImportError:
        return None, {"ok": False, "compiler_found": False,
                      "failure": "converters.edgetpu is not available in this install"}
    result = compile_for_edgetpu(staged, stage)
    info = result.to_dict()
    if not result.compiler_found:
        command = compiler_command(final, final.parent)
        info["command"] = command
        info["command_line"] = " ".join(shlex.quote(a) for a in command)
    if not result.ok or result.output_model is None:
        return None, info
    from .tflite_writer import embed_metadata

    compiled = Path(result.output_model)
    atomic_write(compiled, embed_metadata(compiled.read_bytes(), TFLITE_MANIFEST_NAME, manifest_json))
    info["output_models"] = [str(final.parent / compiled.name)]
    info["log_files"] = []
    return compiled, info


def build_artifacts(ctx: ConversionContext) -> tuple[StagedArtifact, ...]:
    """Build every plan in order (the reference first), each compiled for the Edge TPU right after when asked.

    Raises:
        UnsupportedOpError, ConversionError, ConfigError: see :func:`build_artifact`.
    """
    staged = []
    for plan in ctx.plans.plans:
        artifact = build_artifact(ctx, plan)
        staged.append(compile_staged_for_edgetpu(ctx, artifact) if plan.edgetpu_compile else artifact)
    return tuple(staged)
