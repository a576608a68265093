"""One int8 artifact's diagnosis, whatever its format: per-layer error, clipping, what to keep float, what runs where."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .quant_stats import LayerError, QuantDiagnosis

if TYPE_CHECKING:
    from targets.graph import ModelGraph

    from .build import StagedArtifact
    from .context import ConversionContext

__all__ = ["Diagnosis", "diagnose", "widen_clipped", "clipping_note", "postprocess_tail", "WIDEN_FACTOR"]

log = logging.getLogger("edgecv.converters")

#: A clipped range is widened on its clipped side by this share of its calibrated span.
WIDEN_FACTOR = 0.5

#: The layers that carry a network's arithmetic (ONNX op types and TFLite builtins): what int8 is for.
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D",
                         "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL"})


@dataclass(frozen=True)
class Diagnosis:
    """The measured diagnosis of one int8 artifact and how to keep its layers in float.

    Attributes:
        quant: the per-layer error and coverage.
        format: "onnx" or "tflite".
        order: quantized tensors in graph order (inputs first).
        keep: tensor -> what to name to keep it float (ONNX: its producer and consumer nodes; TFLite: itself).
        quantized_layer_count: compute layers that are int8 in the plain build (the cap's base).
        tail: the post-processing ops after the last convolutions (:func:`postprocess_tail`), as the
            quantizer names them to keep float.
    """

    quant: QuantDiagnosis
    format: str
    order: tuple[str, ...]
    keep: dict[str, tuple[str, ...]]
    quantized_layer_count: int
    tail: tuple[str, ...] = ()

    def ranked_layers(self, *, tail: bool = False) -> list[str]:
        """Tensors to keep float, first first: the clipped ones, then the rest, each worst error first; or
        (*tail*) from the outputs backwards."""
        if tail:
            return list(reversed(self.order))
        clipped = [e.tensor for e in self.quant.layers if e.clipped]
        return clipped + [e.tensor for e in self.quant.layers if not e.clipped]

    def nodes_to_keep_float(self, tensors: Sequence[str]) -> tuple[str, ...]:
        """The names the quantizer keeps in float so that every tensor in *tensors* stays float."""
        return tuple(dict.fromkeys(n for t in tensors for n in self.keep.get(t, (t,))))

    def to_dict(self) -> dict[str, Any]:
        return self.quant.to_dict()

    def delegate(self, ctx: ConversionContext, staged: StagedArtifact) -> dict[str, Any]:
        """What of *staged* runs int8 on the target (see :func:`converters.delegate_info.delegate_info`)."""
        from .delegate_info import delegate_info

        return delegate_info(ctx, staged)


def diagnose(ctx: ConversionContext, staged: StagedArtifact) -> tuple[Diagnosis | None, list[str]]:
    """The diagnosis of *staged* (an int8 artifact), or None and a note saying why it could not be made."""
    import numpy as np

    calib, val = ctx.data.calibration, ctx.data.validation_inputs
    try:
        if staged.plan.format == "onnx":
            return _diagnose_onnx(ctx, staged, calib, val), []
        from .build import tflite_calibrated, tflite_calibrated_path, tflite_inputs
        from .quant_debug_tflite import diagnose_tflite

        val = None if val is None else np.concatenate(list(tflite_inputs(ctx, (v[None] for v in val))))
        quant, order, keep = diagnose_tflite(tflite_calibrated(ctx), lambda: tflite_inputs(ctx, calib), val)
        quant = replace(quant, outputs=output_sqnr(ctx, staged.path, calib))
        return Diagnosis(quant, "tflite", order, keep, len(order), _tail_of(tflite_calibrated_path(ctx))), []
    except Exception as exc:       # a diagnosis never fails a conversion; the report says what is missing
        log.warning("per-layer quantization diagnosis failed: %s", exc)
        return None, [f"per-layer quantization error not measured: {type(exc).__name__}: {str(exc)[:300]}"]


def output_sqnr(ctx: ConversionContext, path: Path, calib: Any) -> dict[str, float]:
    """SQNR (dB) of each output role of the artifact at *path* against the float source, on calibration inputs.

    Raises:
        EdgeCVError: the artifact or the source failed to run.
    """
    import numpy as np

    import edgecv

    from .build import tflite_inputs
    from .quant_stats import DEBUG_CALIBRATION_SAMPLES, sqnr_db

    inputs = [x for x, _ in zip(calib, range(DEBUG_CALIBRATION_SAMPLES))]
    reference = ctx.source.model.predict(np.concatenate(inputs), ctx.source.roles, ctx.manifest.transform)
    got: dict[str, list[np.ndarray]] = {role: [] for role in reference}
    with edgecv.load(str(path)) as model:
        spec = model.inputs[0]
        indices = {role: model.output_index(role) for role in reference}
        for x in tflite_inputs(ctx, inputs):
            if spec.affine is not None:
                scale, zero = spec.affine
                info = np.iinfo(spec.np_dtype)
                x = np.clip(np.round(x / scale) + zero, info.min, info.max)
            outputs = model.run(np.asarray(x).astype(spec.np_dtype), copy=True)
            for role, index in indices.items():
                got[role].append(outputs[index])
    return {role: sqnr_db(reference[role], got[role]) for role in reference}


def _diagnose_onnx(ctx: ConversionContext, staged: StagedArtifact, calib: Any, val: Any) -> Diagnosis:
    from ._env import import_onnx
    from .build import onnx_work_dir
    from .quant_debug_onnx import diagnose_onnx, read_qdq

    model = import_onnx().load(str(staged.path))
    source = ctx.source.model
    input_name = source.input_name if source.is_onnx else "image"
    quant = diagnose_onnx(onnx_work_dir(ctx) / "prepped.onnx", model, input_name, iter(calib), val)
    graph = read_qdq(model)
    measured = {e.tensor for e in quant.layers}
    order = tuple(t.tensor for t in graph.tensors if t.tensor in measured)
    return Diagnosis(quant, "onnx", order, {t: graph.nodes_of(t) for t in order}, len(graph.quantized_nodes),
                     _tail_of(onnx_work_dir(ctx) / "prepped.onnx"))


def _tail_of(float_model: Path) -> tuple[str, ...]:
    from targets.graph import read_graph

    return postprocess_tail(read_graph(float_model))


def postprocess_tail(graph: ModelGraph) -> tuple[str, ...]:
    """The names of the ops from which no convolution or matrix product can be reached: a network's output end.

    Decoding, reshapes, concatenations and softmaxes after the last compute layers. They carry almost
    none of the arithmetic, yet 8 bits cost them the most: a decoded box tensor spans the whole image,
    so one step is pixels, which decides the IoU of a small face. Kept in float they leave every
    convolution int8, and on the Edge TPU they form a contiguous tail (one split of the graph).
    """
    consumers: dict[str, list[int]] = {}
    for op in graph.ops:
        for tensor in op.inputs:
            consumers.setdefault(tensor.name, []).append(op.index)
    reaches_compute = [False] * len(graph.ops)
    for op in reversed(graph.ops):           # graph order is topological: consumers come later
        reaches_compute[op.index] = any(graph.ops[c].op_type in COMPUTE_OPS or reaches_compute[c]
                                        for out in op.outputs for c in consumers.get(out.name, ()))
    return tuple(op.name for op in graph.ops if op.op_type not in COMPUTE_OPS and not reaches_compute[op.index])


def widen_clipped(diagnosis: Diagnosis) -> tuple[tuple[str, float, float], ...]:
    """``(tensor, min, max)`` for every clipped tensor: its calibrated range widened on the side that clips.

    The new bounds come from the calibrated range alone (:data:`WIDEN_FACTOR` of its span); validation data
    only says which side clips.
    """
    out = []
    for e in diagnosis.quant.clipped():
        lo, hi = e.range
        span = hi - lo
        seen_lo, seen_hi = e.validation_range or (lo, hi)
        out.append((e.tensor, lo - WIDEN_FACTOR * span if seen_lo < lo else lo,
                    hi + WIDEN_FACTOR * span if seen_hi > hi else hi))
    return tuple(out)


def _missing_images(e: LayerError, depth: float) -> str:
    if e.op_type == "input":
        return "images with the brightness and contrast range of the validation scenes"
    if depth < 0.34:
        return "images with the textures, lighting and contrast of the validation scenes"
    if depth < 0.67:
        return "images with the kinds and sizes of objects the validation scenes show"
    return "images with as many, as large and as clear objects as the validation scenes (strong detections)"


def clipping_note(diagnosis: Diagnosis) -> list[str]:
    """When clipped tensors explain a miss: which layers, by how much, and what calibration images are missing."""
    clipped = diagnosis.quant.clipped()
    if not clipped:
        return ["no layer clips the validation activations: the loss comes from 8-bit resolution, not from the "
                "calibration set's coverage"]
    position = {t: i / max(len(diagnosis.order) - 1, 1) for i, t in enumerate(diagnosis.order)}
    named = ", ".join(f"{e.layer} ({100 * (e.outside_validation or 0):.2f}% outside "
                      f"[{e.range[0]:.3g}, {e.range[1]:.3g}])" for e in clipped[:5])
    worst = clipped[0]
    return [f"calibration ranges do not cover the validation data: {len(clipped)} layer(s) clip it: {named}"
            f"{' ...' if len(clipped) > 5 else ''}. Add calibration {_missing_images(worst, position.get(worst.tensor, 0.5))} "
            "(never the validation images themselves)"]
