"""A format-neutral view of a model graph (ops, tensor dtypes and shapes) for the target checks.

Built from edgecv's pure-Python readers (``edgecv.formats.tflite`` and
``edgecv.formats.onnx``): no TensorFlow, onnx or interpreter needed.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Union

from edgecv.errors import ModelLoadError

__all__ = ["TensorInfo", "OpInfo", "ModelGraph", "read_graph", "tflite_precision", "EDGETPU_CUSTOM_OP", "CPU_CUSTOM_OPS"]

#: Custom op code the Edge TPU compiler writes for the part of the graph it compiled.
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
#: Custom ops that TFLite's own interpreter implements on the CPU (registered by default).
CPU_CUSTOM_OPS = frozenset({"TFLite_Detection_PostProcess"})

FLOAT_DTYPES = frozenset({"float32", "float16", "float64", "bfloat16"})
INT8_DTYPES = frozenset({"int8", "uint8"})

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: ``shape`` holds ints, or a name / None for a dynamic dimension; None when the rank is unknown."""

    name: str
    dtype: str
    shape: tuple[Dim, ...] | None
    constant: bool            # weights and other data stored in the file
    quantized: bool = False
    values: tuple[int, ...] | None = None    # a small integer constant's values (ONNX zero points)

    @property
    def is_dynamic(self) -> bool:
        if self.shape is None:
            return True
        return any(not isinstance(d, int) or d < 0 for d in self.shape)

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype,
                "shape": None if self.shape is None else list(self.shape), "quantized": self.quantized}


@dataclass(frozen=True)
class OpInfo:
    """One operator. ``name`` is the ONNX node name, or for TFLite the first output tensor's name."""

    index: int
    op_type: str              # TFLite builtin name or custom code; ONNX op_type
    domain: str               # ONNX domain ("" = ai.onnx); "" for TFLite
    custom: bool
    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]


@dataclass(frozen=True)
class ModelGraph:
    path: str
    format: str               # "tflite" | "onnx"
    size_bytes: int
    ops: tuple[OpInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    precision: str            # "fp32" | "fp16" | "dynamic" | "int8" | "mixed"
    external_data: tuple[tuple[str, str], ...] = ()   # (tensor, location) pairs, ONNX only
    opset: int | None = None

    @property
    def edgetpu_compiled(self) -> bool:
        return any(op.custom and op.op_type == EDGETPU_CUSTOM_OP for op in self.ops)

    def op_counts(self) -> list[tuple[str, int]]:
        """(op type, count), most frequent first, ties by name."""
        counts = Counter(op.op_type for op in self.ops)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def sniff_format(path: str) -> str:
    """"tflite" or "onnx" from the suffix, else from the file's first bytes.

    Raises:
        ModelLoadError: missing, a folder, or neither format.
    """
    if os.path.isdir(path):
        raise ModelLoadError(
            f"{path} is a folder; `check` reads a .tflite or .onnx file (convert a SavedModel first with `edgecv convert`)"
        )
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".tflite", ".onnx"):
        return suffix[1:]
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x08":    # ModelProto starts with ir_version (field 1, varint)
        return "onnx"
    raise ModelLoadError(f"{path} is neither a TFLite (.tflite) nor an ONNX (.onnx) model; check the file")


def read_graph(path: str | os.PathLike[str]) -> ModelGraph:
    """Read a .tflite or .onnx file into a ModelGraph.

    Raises:
        ModelLoadError: unreadable, truncated, corrupt, or neither format.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"model file {path} does not exist; check the path")
    fmt = sniff_format(path)
    if fmt == "tflite":
        from edgecv.formats.tflite import read_tflite
        return _from_tflite(path, read_tflite(path))
    from edgecv.formats.onnx import read_onnx
    return _from_onnx(path, read_onnx(path))


def _from_tflite(path: str, model) -> ModelGraph:
    ops: list[OpInfo] = []
    main_infos: list[TensorInfo] = []
    for sg_index, sg in enumerate(model.subgraphs):
        produced = {i for op in sg.operators for i in op.outputs if i >= 0}
        activations = produced | {i for i in sg.inputs if i >= 0}
        infos = [
            TensorInfo(name=t.name, dtype=t.dtype,
                       shape=tuple(int(d) for d in (t.shape_signature or t.shape)),
                       constant=t.index not in activations,
                       quantized=t.quantization is not None)
            for t in sg.tensors
        ]
        if sg_index == 0:
            main_infos = infos
        for op in sg.operators:
            ins = tuple(infos[i] for i in op.inputs if i >= 0)
            outs = tuple(infos[i] for i in op.outputs if i >= 0)
            ops.append(OpInfo(index=len(ops), op_type=op.opcode, domain="", custom=op.custom,
                              name=outs[0].name if outs else f"op{len(ops)}", inputs=ins, outputs=outs))
    main = model.subgraphs[0]
    return ModelGraph(
        path=path, format="tflite", size_bytes=model.size_bytes, ops=tuple(ops),
        inputs=tuple(main_infos[i] for i in main.inputs if i >= 0),
        outputs=tuple(main_infos[i] for i in main.outputs if i >= 0),
        precision=tflite_precision(ops),
    )


_SHAPE_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "PACK", "UNPACK", "SPLIT",
                        "SPLIT_V", "SLICE", "STRIDED_SLICE", "GATHER", "TRANSPOSE", "SHAPE", "CAST"})


def tflite_precision(ops: list[OpInfo]) -> str:
    """Classify a TFLite graph by the dtypes its compute ops see.

    int8: every compute op works on 8-bit tensors; dynamic: float activations
    with int8 weights; fp16: float16 weights (dequantized at load); mixed: both
    8-bit and float compute ops; fp32 otherwise.
    """
    if any(op.custom and op.op_type == EDGETPU_CUSTOM_OP for op in ops):
        return "int8"                        # the compiler only takes full-integer models
    quant = floating = dynamic = 0
    fp16_weights = False
    for op in ops:
        if op.custom or op.op_type in ("QUANTIZE", "DEQUANTIZE") or op.op_type in _SHAPE_OPS:
            if op.op_type == "DEQUANTIZE" and any(t.dtype == "float16" for t in op.inputs):
                fp16_weights = True
            continue
        data = [t for t in op.inputs if not t.constant]
        if not data:
            continue
        if data[0].dtype in INT8_DTYPES:
            quant += 1
        elif data[0].dtype in FLOAT_DTYPES:
            floating += 1
            if any(t.constant and t.dtype in INT8_DTYPES for t in op.inputs):
                dynamic += 1
    if dynamic:
        return "dynamic"
    if quant and not floating:
        return "int8"
    if quant and floating:
        return "mixed"
    return "fp16" if fp16_weights else "fp32"


_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd",
                      "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool", "QLinearSigmoid"})
_DYNAMIC_OPS = frozenset({"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul"})


def _from_onnx(path: str, model) -> ModelGraph:
    graph = model.graph
    known: dict[str, TensorInfo] = {}
    for init in graph.walk_initializers():
        known[init.name] = TensorInfo(name=init.name, dtype=init.dtype, shape=init.dims, constant=True,
                                      values=init.integer_values())
    for info in (*graph.inputs, *graph.outputs, *graph.value_info):
        if info.name not in known:
            known[info.name] = TensorInfo(name=info.name, dtype=info.dtype, shape=info.shape, constant=False)

    def tensor(name: str) -> TensorInfo:
        return known.get(name) or TensorInfo(name=name, dtype="unknown", shape=None, constant=False)

    ops = []
    for node in graph.walk_nodes():
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        ops.append(OpInfo(index=len(ops), op_type=node.op_type, domain=domain,
                          custom=domain not in ("", "ai.onnx.ml", "com.microsoft"),
                          name=node.name or (node.outputs[0] if node.outputs else f"node{len(ops)}"),
                          inputs=tuple(tensor(n) for n in node.inputs if n),
                          outputs=tuple(tensor(n) for n in node.outputs if n)))
    types = {op.op_type for op in ops}
    if types & _DYNAMIC_OPS and not types & {"QuantizeLinear", "QLinearConv", "QLinearMatMul"}:
        precision = "dynamic"
    elif types & _QDQ_OPS:
        precision = "int8"
    else:
        dtypes = Counter(init.dtype for init in graph.walk_initializers())
        precision = "fp16" if dtypes["float16"] > dtypes["float32"] else "fp32"
    return ModelGraph(
        path=path, format="onnx", size_bytes=model.size_bytes, ops=tuple(ops),
        inputs=tuple(tensor(v.name) for v in graph.runtime_inputs),
        outputs=tuple(tensor(v.name) for v in graph.outputs),
        precision=precision,
        external_data=tuple((ref.tensor, ref.location) for ref in model.external_data()),
        opset=model.opset,
    )
