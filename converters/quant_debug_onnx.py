"""Per-layer error and calibration coverage of an ONNX QDQ artifact, against the float model it was quantized from.

The QDQ model says how each activation is quantized (the scale and zero point
of its QuantizeLinear); the pre-processed float model (what the quantizer
saw, :func:`converters.onnx_export.prepare_for_qdq`) gives the float value of
that very tensor, with every other layer in float. Their difference is the
error that tensor alone adds (:mod:`converters.quant_stats`): on calibration
inputs the per-layer error, on validation inputs the share clipped by the
calibrated range. The outputs of the QDQ model itself are compared with the
float outputs on the calibration inputs (``outputs_sqnr_db``).

ONNX Runtime's ``qdq_loss_debug`` compares the same pairs of tensors; this
module measures the error each tensor adds alone, so the worst layer is the
one that causes the loss, not every layer after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._env import import_onnx, import_onnxruntime
from .quant_stats import (
    DEBUG_CALIBRATION_SAMPLES,
    DEBUG_VALIDATION_SAMPLES,
    QuantDiagnosis,
    TensorQuant,
    TensorStats,
    accumulate,
    layer_errors,
    sqnr_db,
)

__all__ = ["QdqGraph", "read_qdq", "diagnose_onnx"]

_INT_RANGES = {2: (0, 255), 3: (-128, 127), 4: (0, 65535), 5: (-32768, 32767)}   # onnx TensorProto elem types


@dataclass(frozen=True)
class QdqGraph:
    """The quantized activations of a QDQ model and the nodes around them.

    Attributes:
        tensors: each quantized activation (its float name, producer and quantization), in graph order.
        consumers: tensor -> the nodes that read its dequantized value (what must stay float to keep it float).
        quantized_nodes: the compute nodes that read dequantized inputs (the int8 layers; a convolution or
            matrix product only with its weights dequantized too), in graph order.
        float_nodes: the other compute nodes (kept float or without an int8 kernel).
    """

    tensors: tuple[TensorQuant, ...]
    consumers: Mapping[str, tuple[str, ...]]
    quantized_nodes: tuple[str, ...]
    float_nodes: tuple[str, ...]

    def nodes_of(self, tensor: str) -> tuple[str, ...]:
        """The nodes to keep in float so that *tensor* stays float: its producer and its consumers."""
        q = next((t for t in self.tensors if t.tensor == tensor), None)
        producer = () if q is None or q.op_type == "input" else (q.layer,)
        return tuple(dict.fromkeys((*producer, *self.consumers.get(tensor, ()))))


def read_qdq(model: Any) -> QdqGraph:
    """The quantized activations of a QDQ ModelProto (weights and constants are left out)."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    dq_of: dict[str, list[str]] = {}
    for n in graph.node:
        if n.op_type == "DequantizeLinear":
            dq_of.setdefault(n.input[0], []).append(n.output[0])
    readers: dict[str, list[str]] = {}
    for n in graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            for i in n.input:
                readers.setdefault(i, []).append(n.name)
    tensors, consumers = [], {}
    for n in graph.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits or len(n.input) < 2 or n.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[n.input[1]]).reshape(-1)
        if scale.size != 1:
            continue
        zp_init = inits.get(n.input[2]) if len(n.input) > 2 else None
        zp = int(numpy_helper.to_array(zp_init).reshape(-1)[0]) if zp_init is not None else 0
        qmin, qmax = _INT_RANGES.get(zp_init.data_type if zp_init is not None else 2, (0, 255))
        src = producer.get(n.input[0])
        layer, op = (src.name, src.op_type) if src is not None else (n.input[0], "input")
        tensors.append(TensorQuant(n.input[0], layer, op, float(scale[0]), zp, qmin, qmax))
        consumers[n.input[0]] = tuple(dict.fromkeys(r for dq in dq_of.get(n.output[0], ()) for r in readers.get(dq, ())))
    deq = {o for outs in dq_of.values() for o in outs}
    compute = [n for n in graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear", "Constant")]
    quantized = tuple(n.name for n in compute if _reads_int8(n, deq))
    return QdqGraph(tuple(tensors), consumers, quantized, tuple(n.name for n in compute if n.name not in quantized))


#: Ops whose second input is a weight: int8 only when the weight is dequantized too (else a float kernel runs).
_WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def _reads_int8(node: Any, dequantized: set[str]) -> bool:
    """Whether *node* computes in int8: a weighted op on dequantized data and weights, another op on any."""
    if node.op_type in _WEIGHTED_OPS:
        return len(node.input) > 1 and all(i in dequantized for i in node.input[:2])
    return any(i in dequantized for i in node.input)


def _session(model: Any) -> Any:
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _with_outputs(model: Any, names: Sequence[str]) -> Any:
    onnx = import_onnx()
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    have = {o.name for o in copy.graph.output}
    for name in names:
        if name not in have:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return copy


def _stats(session: Any, input_name: str, inputs: Iterable[np.ndarray], quants: Sequence[TensorQuant],
           wanted: Sequence[str]) -> tuple[dict[str, TensorStats], list[dict[str, np.ndarray]], int]:
    """Per-tensor statistics over *inputs*, and the wanted outputs of each run."""
    stats = {q.tensor: TensorStats() for q in quants}
    names = [q.tensor for q in quants]
    outputs, n = [], 0
    for x in inputs:
        values = session.run(names + list(wanted), {input_name: np.asarray(x, np.float32)})
        for q, v in zip(quants, values):
            accumulate(stats[q.tensor], v, q)
        outputs.append(dict(zip(wanted, values[len(names):])))
        n += 1
    return stats, outputs, n


def diagnose_onnx(prepped: Path, qdq_model: Any, input_name: str, calibration: Iterable[np.ndarray],
                  validation: np.ndarray | None, *, calibration_samples: int = DEBUG_CALIBRATION_SAMPLES,
                    validation_samples: int = DEBUG_VALIDATION_SAMPLES) -> QuantDiagnosis:
    """The per-layer error (calibration inputs) and coverage (validation inputs) of *qdq_model*.

    Args:
        prepped: the pre-processed float model the QDQ model was made from.
        qdq_model: the quantized ModelProto.
        input_name: the image input.
        calibration: (1, ...) float32 calibration inputs (the first *calibration_samples* are used).
        validation: (N, ...) float32 validation inputs, or None.
        calibration_samples, validation_samples: inputs measured (at most) per set.

    Raises:
        ConversionError: ONNX Runtime cannot run the models (from onnxruntime, wrapped by the caller).
    """
    onnx = import_onnx()
    float_model = onnx.load(str(prepped))
    present = {v for n in float_model.graph.node for v in n.output} | {i.name for i in float_model.graph.input}
    graph = read_qdq(qdq_model)
    quants = [q for q in graph.tensors if q.tensor in present]
    wanted = [o.name for o in qdq_model.graph.output]
    session = _session(_with_outputs(float_model, [q.tensor for q in quants]))
    calib = [x for x, _ in zip(calibration, range(calibration_samples))]
    calib_stats, float_out, n_calib = _stats(session, input_name, calib, quants, wanted)
    valid_stats: dict[str, TensorStats] = {}
    n_valid = 0
    if validation is not None and len(validation):
        valid_stats, _, n_valid = _stats(session, input_name, (v[None] for v in validation[:validation_samples]), quants, [])
    quant_session = _session(qdq_model)
    quant_out = [dict(zip(wanted, quant_session.run(wanted, {input_name: np.asarray(x, np.float32)}))) for x in calib]
    outputs = {name: sqnr_db((f[name] for f in float_out), (q[name] for q in quant_out)) for name in wanted}
    return QuantDiagnosis(layer_errors(quants, calib_stats, valid_stats), outputs, n_calib, n_valid,
                          "each QDQ activation alone (onnxruntime, float model otherwise)")
