"""``targets.check``: what in a model will not run (or will run slowly) on a target, read from the file alone.

Each rule is a small function from (graph, target) to problems:

- wrong format for the target (error);
- Edge TPU: float or other non-8-bit tensors on ops it would run (error), ops off
  coral.ai's supported-op list (warning: CPU fallback), custom ops (error, except
  the compiler's own ``edgetpu-custom-op`` and TFLite's CPU-side
  ``TFLite_Detection_PostProcess``, a warning), activation tensors with more than
  3 innermost dimensions above 1 (warning), a model not yet compiled (warning);
- dynamic input/output shapes where the target wants static ones (error on the
  Edge TPU, warning for TensorRT);
- TFLite ops outside XNNPACK's delegated set on Raspberry Pi / CPU (speed warning);
- custom ops elsewhere (warning), a compiled Edge TPU model off the Edge TPU (error);
- a precision the target does not run well (warning);
- ONNX Q/DQ nodes with non-zero zero points on TensorRT targets (warning: they run outside the int8 engine);
- ONNX external data that is missing or points outside the model folder (error).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from edgecv.errors import ModelLoadError

from .check_report import CheckReport, ModelSummary, Problem
from .graph import (
    CPU_CUSTOM_OPS,
    EDGETPU_CUSTOM_OP,
    FLOAT_DTYPES,
    INT8_DTYPES,
    ModelGraph,
    OpInfo,
    TensorInfo,
    read_graph,
)
from .oplists import edgetpu_ops, xnnpack_fp32_ops, xnnpack_int8_ops
from .recipes import symmetric_activations
from .registry import resolve
from .target import Target

__all__ = ["check", "check_graph"]


def check(model_path: str | os.PathLike[str], target: str | Target) -> CheckReport:
    """List what will not run, or will run slowly, when *model_path* is deployed on *target*.

    Reads the graph with edgecv's pure-Python TFLite / ONNX readers; needs no
    TensorFlow, onnx package or interpreter.

    Args:
        model_path: a ``.tflite`` or ``.onnx`` file.
        target: a target name (``"coral-usb"``) or a ``targets.Target``.

    Raises:
        UnknownTargetError: unknown target name.
        ModelLoadError: the file is missing, unreadable, corrupt, or neither format.
    """
    t = resolve(target)
    graph = read_graph(model_path)
    return check_graph(graph, t)


def check_graph(graph: ModelGraph, target: Target) -> CheckReport:
    """Same as :func:`check` on an already-read graph."""
    problems: list[Problem] = list(_format_problems(graph, target))
    if not problems:
        for rule in (_external_data_problems, _precision_problems, _zero_point_problems, _dynamic_shape_problems,
                     _custom_op_problems, _edgetpu_problems, _xnnpack_problems):
            problems.extend(rule(graph, target))
    problems.sort(key=lambda p: 0 if p.severity == "error" else 1)
    summary = ModelSummary(
        path=graph.path, format=graph.format, precision=graph.precision, size_bytes=graph.size_bytes,
        inputs=tuple(t.to_dict() for t in graph.inputs), outputs=tuple(t.to_dict() for t in graph.outputs),
        op_counts=tuple(graph.op_counts()), edgetpu_compiled=graph.edgetpu_compiled,
    )
    return CheckReport(target=target.name, model=summary, problems=tuple(problems))


_ARTICLE_FORMAT = {"tflite": "a TFLite", "onnx": "an ONNX"}


def _format_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    if graph.format not in t.formats:
        wanted = " or ".join(t.formats)
        yield Problem("error", "wrong-format",
                      f"{t.name} runs {wanted} models ({t.runtime}), this is {_ARTICLE_FORMAT[graph.format]} model: it will not "
                      f"load there. Convert it with `edgecv convert MODEL --target {t.name}`.")


def _external_data_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    from edgecv.formats.onnx import check_external_location

    folder = os.path.dirname(os.path.abspath(graph.path))
    for tensor, location in graph.external_data:
        try:
            check_external_location(location, folder, tensor)
        except ModelLoadError as exc:
            yield Problem("error", "external-data", str(exc), name=tensor)


_PRECISION_ADVICE = {
    ("onnx", "int8", "jetson-nano"): "the Maxwell GPU has no INT8 path in TensorRT, so the quantize/dequantize "
                                     "nodes run on CUDA/CPU; ship the fp16 or fp32 model",
    ("onnx", "fp16", "cpu"): "ONNX Runtime's CPU provider lacks fp16 kernels for many ops and inserts casts; "
                             "ship fp32 or int8",
    ("tflite", "dynamic", None): "XNNPACK does not delegate dynamic-range quantized ops, they run on TFLite's "
                                 "reference kernels; ship full int8 (with calibration) or fp32",
    ("tflite", "mixed", None): "part of the graph computes in float and part in 8-bit, with conversions "
                               "in between; quantize the whole graph",
}


def _precision_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    if t.full_int8_only or graph.precision in t.precisions:
        return  # full-int8 targets get exact per-tensor errors from the Edge TPU rule
    advice = (_PRECISION_ADVICE.get((graph.format, graph.precision, t.name))
              or _PRECISION_ADVICE.get((graph.format, graph.precision, None))
              or f"it runs, but {t.name} is tuned for {', '.join(t.precisions)}")
    yield Problem("warning", "precision",
                  f"model precision is {graph.precision}, which {t.name} does not run well: {advice}.")


def _zero_point_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    """Q/DQ nodes with a non-zero zero point on a TensorRT target (its parser takes zero points of 0 only)."""
    if graph.format != "onnx" or not symmetric_activations(t, "onnx"):
        return
    shifted = [op for op in graph.ops if op.op_type in ("QuantizeLinear", "DequantizeLinear") and len(op.inputs) > 2
               and op.inputs[2].values is not None and any(op.inputs[2].values)]
    if shifted:
        yield Problem("warning", "zero-point",
                      f"{len(shifted)} QuantizeLinear/DequantizeLinear nodes (first: '{shifted[0].name}') have a "
                      f"non-zero zero point: TensorRT takes symmetric quantization only, so they run on CUDA/CPU "
                      f"instead of in an int8 engine on {t.name}. Re-quantize with symmetric activations: "
                      f"`edgecv convert MODEL --target {t.name}` does, or onnxruntime's quantize_static with "
                      f"extra_options={{'ActivationSymmetric': True, 'WeightSymmetric': True}}.",
                      op=shifted[0].op_type, name=shifted[0].name)


def _dynamic_shape_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    severity = t.constraints.dynamic_shape_severity
    if not t.static_shapes or severity is None:
        return
    if t.constraints.op_allowlist == "edgetpu":
        why = ("the Edge TPU compiler needs every tensor size fixed at compile time; re-export with a fixed "
               "batch size (e.g. 1)")
    else:
        why = ("TensorRT builds an engine per input-shape profile: each new shape rebuilds the engine (minutes on "
               "a Jetson) unless trt_profile_min/opt/max_shapes are set; export with a fixed batch size")
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for tensor in tensors:
            if tensor.is_dynamic:
                shape = "unknown rank" if tensor.shape is None else str(list(tensor.shape))
                yield Problem(severity, "dynamic-shape",
                              f"{kind} '{tensor.name}' has a dynamic shape {shape} on {t.name}: {why}.",
                              name=tensor.name)


def _custom_op_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    on_edgetpu = t.delegate == "edgetpu"
    seen = set()
    for op in graph.ops:
        if not op.custom or op.op_type in seen:
            continue
        seen.add(op.op_type)
        if op.op_type == EDGETPU_CUSTOM_OP:
            if not on_edgetpu:
                yield Problem("error", "edgetpu-model",
                              f"this model was compiled for the Edge TPU ('{EDGETPU_CUSTOM_OP}'): without an Edge TPU "
                              f"and libedgetpu that op cannot run on {t.name}. Deploy the uncompiled .tflite instead.",
                              op=op.op_type, name=op.name)
        elif op.op_type in CPU_CUSTOM_OPS:
            if on_edgetpu:
                yield Problem("warning", "cpu-custom-op",
                              f"custom op {op.op_type} ('{op.name}') is not an Edge TPU op: TFLite runs it on the host "
                              "CPU after the Edge TPU part (normal for SSD detectors, but it costs CPU time).",
                              op=op.op_type, name=op.name)
        else:
            where = "the Edge TPU cannot run it and" if on_edgetpu else "it needs"
            yield Problem(t.constraints.custom_op_severity, "custom-op",
                          f"custom op '{op.op_type}'{_domain(op)} ('{op.name}'): {where} a kernel registered with "
                          f"the interpreter on {t.name}, which stock runtimes do not have. Replace it with builtin ops.",
                          op=op.op_type, name=op.name)


def _domain(op: OpInfo) -> str:
    return f" of domain '{op.domain}'" if op.domain else ""


def _edgetpu_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    if t.constraints.op_allowlist != "edgetpu" or graph.format != "tflite":
        return
    if graph.edgetpu_compiled:
        yield from _cpu_ops_of_compiled(graph)
        return
    yield Problem("warning", "not-compiled",
                  "the model is not compiled for the Edge TPU: as it is, every op runs on the host CPU. Compile it "
                  "with edgetpu_compiler (converters.edgetpu.compile_for_edgetpu) on an x86-64 Linux host.")
    yield from _io_dtype_problems(graph, t)
    allowed = edgetpu_ops()
    limit = t.constraints.innermost_nonunit_dims
    flagged_tensors = set()
    unsupported: dict[str, list[OpInfo]] = {}
    for op in graph.ops:
        if op.custom:
            continue
        if op.op_type not in allowed:
            unsupported.setdefault(op.op_type, []).append(op)
            continue
        for role, tensors in (("input", op.inputs), ("output", op.outputs)):
            for tensor in tensors:
                if tensor.name in flagged_tensors:
                    continue
                problem = _edgetpu_tensor_problem(op, role, tensor, limit)
                if problem is not None:
                    flagged_tensors.add(tensor.name)
                    yield problem
    for op_type, ops in unsupported.items():
        first = ops[0].name
        yield Problem("warning", "unsupported-op",
                      f"{op_type} ({len(ops)} op(s), first '{first}') is not on the Edge TPU's supported-operation "
                      "list (coral.ai): it runs on the host CPU, and the compiler leaves every op after the first "
                      "unsupported one on the CPU too (unless compiled with -a).",
                      op=op_type, name=first)


def _edgetpu_tensor_problem(op: OpInfo, role: str, tensor: TensorInfo, limit: int | None) -> Problem | None:
    boundary = (op.op_type == "QUANTIZE" and role == "input") or (op.op_type == "DEQUANTIZE" and role == "output")
    if tensor.dtype in FLOAT_DTYPES and not boundary:
        what = "weights" if tensor.constant else "activations"
        return Problem("error", "float-tensor",
                       f"tensor '{tensor.name}' ({what} of {op.op_type} '{op.name}') is {tensor.dtype}: the Edge TPU "
                       "runs only 8-bit integer tensors. Convert with full-integer quantization (precision int8, "
                       "uint8 I/O, calibration images).",
                       op=op.op_type, name=tensor.name)
    if tensor.dtype not in FLOAT_DTYPES and tensor.dtype not in INT8_DTYPES and tensor.dtype != "int32":
        return Problem("error", "unsupported-dtype",
                       f"tensor '{tensor.name}' of {op.op_type} '{op.name}' is {tensor.dtype}: the Edge TPU runs "
                       "8-bit tensors (int32 only for biases). Quantize to int8/uint8.",
                       op=op.op_type, name=tensor.name)
    if limit is not None and not tensor.constant and tensor.shape is not None and len(tensor.shape) > limit:
        leading = [d for d in tensor.shape[:-limit] if not isinstance(d, int) or d != 1]
        if leading:
            return Problem("warning", "tensor-rank",
                           f"tensor '{tensor.name}' of {op.op_type} '{op.name}' has shape {list(tensor.shape)}: the "
                           f"Edge TPU allows only the {limit} innermost dimensions to be larger than 1, so this op "
                           "stays on the CPU. Reshape to fold the leading dimensions.",
                           op=op.op_type, name=tensor.name)
    return None


def _io_dtype_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for tensor in tensors:
            if tensor.dtype in FLOAT_DTYPES and not _made_by_cpu_custom_op(graph, tensor.name):
                yield Problem("warning", "io-dtype",
                              f"model {kind} '{tensor.name}' is {tensor.dtype}: the (de)quantize step at the edge of "
                              f"the graph runs on the CPU; {t.name} expects {t.io_dtype} I/O (set io dtype "
                              f"{t.io_dtype} when converting).",
                              name=tensor.name)


def _made_by_cpu_custom_op(graph: ModelGraph, tensor_name: str) -> bool:
    return any(op.op_type in CPU_CUSTOM_OPS and any(o.name == tensor_name for o in op.outputs) for op in graph.ops)


def _cpu_ops_of_compiled(graph: ModelGraph) -> Iterator[Problem]:
    left: dict[str, list[OpInfo]] = {}
    for op in graph.ops:
        if not op.custom:
            left.setdefault(op.op_type, []).append(op)
    for op_type, ops in left.items():
        yield Problem("warning", "cpu-op",
                      f"{op_type} ({len(ops)} op(s), first '{ops[0].name}') was left outside the Edge TPU segment by "
                      "the compiler: it runs on the host CPU.",
                      op=op_type, name=ops[0].name)


def _xnnpack_problems(graph: ModelGraph, t: Target) -> Iterator[Problem]:
    if t.constraints.fast_ops != "xnnpack" or graph.format != "tflite":
        return
    fp32, int8 = xnnpack_fp32_ops(), xnnpack_int8_ops()
    slow: dict[str, list[OpInfo]] = {}
    for op in graph.ops:
        data = [x for x in op.inputs if not x.constant]
        if not data:
            continue  # all inputs constant: TFLite evaluates it once at load, not per frame
        dtype = data[0].dtype
        delegated = (op.op_type in fp32) if dtype in FLOAT_DTYPES else \
                    (op.op_type in int8) if dtype in INT8_DTYPES else False
        if op.custom or not delegated:
            slow.setdefault(op.op_type, []).append(op)
    for op_type, ops in slow.items():
        yield Problem("warning", "not-delegated",
                      f"{op_type} ({len(ops)} op(s), first '{ops[0].name}') is outside XNNPACK's delegated set for "
                      f"{_dtype_of(ops[0])} tensors: it runs on TFLite's reference CPU kernels on {t.name}, which "
                      "is slower and splits the delegated graph.",
                      op=op_type, name=ops[0].name)


def _dtype_of(op: OpInfo) -> str:
    data = [x for x in op.inputs if not x.constant]
    return data[0].dtype if data else "constant"
