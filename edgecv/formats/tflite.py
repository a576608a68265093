"""Bounds-checked reader for the TFLite flatbuffer format (schema v3, "TFL3").

Reads what edgecv needs without TensorFlow: operator codes, subgraphs with
their tensors (shape, type, quantization) and operators, buffers and the
model's metadata entries (edgecv's manifest, the standard ``TFLITE_METADATA``).
Every offset is checked against the file size, so a truncated or corrupt file
raises :class:`ModelLoadError` instead of reaching a native runtime.

Field indices follow tensorflow/lite/schema/schema.fbs. The pieces live in
their own modules and are importable from here as before:
:mod:`~edgecv.formats.flatbuffer` (bounds-checked reads),
:mod:`~edgecv.formats.tflite_types` (the result dataclasses),
:mod:`~edgecv.formats.tflite_opcodes` (operator names, from the schema as data),
:mod:`~edgecv.formats.tflite_checks` (what kernels would crash on),
:mod:`~edgecv.formats.tflite_buffers` (constant data).
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelLoadError
from . import read_model_bytes
from .flatbuffer import FlatbufferReader
from .tflite_buffers import buffer_bytes, check_buffer_range
from .tflite_checks import (
    MAX_QUANT_SCALE,
    MAX_TENSOR_BYTES,
    MIN_QUANT_SCALE,
    check_control_flow,
    check_dataflow,
    check_op_options,
    check_quantized_ops,
    check_tensor,
)
from .tflite_custom import check_custom_options
from .tflite_opcodes import CUSTOM_CODE, builtin_op_name, builtin_op_names
from .tflite_types import (
    TENSOR_TYPE_NAMES,
    TfliteModel,
    TfliteOperator,
    TfliteQuantization,
    TfliteSubgraph,
    TfliteTensor,
)
from .tflite_types_check import check_tensor_types
from .tflite_verify import verify_tflite_flatbuffer

__all__ = ["FILE_IDENTIFIER", "TENSOR_TYPE_NAMES", "MAX_TENSOR_BYTES", "MIN_QUANT_SCALE",
           "MAX_QUANT_SCALE", "FlatbufferReader", "TfliteQuantization", "TfliteTensor", "TfliteOperator",
           "TfliteSubgraph", "TfliteModel", "parse_tflite", "read_tflite", "tensor_data"]

FILE_IDENTIFIER = b"TFL3"

# Control-flow ops: (union slot of their options, options type code, slots holding subgraph indices).
# Slot 4 is Operator.builtin_options, slot 12 builtin_options_2 (tensorflow/lite/schema/schema.fbs).
_SUBGRAPH_OPTIONS: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "CALL": (4, 16, (0,)), "IF": (4, 92, (0, 1)), "WHILE": (4, 93, (0, 1)), "CALL_ONCE": (4, 103, (0,)),
    "STABLEHLO_REDUCE": (12, 6, (1,)), "STABLEHLO_SCATTER": (12, 7, (6,)),
    "STABLEHLO_REDUCE_WINDOW": (12, 13, (5,)), "STABLEHLO_SORT": (12, 14, (2,)),
    "STABLEHLO_WHILE": (12, 15, (0, 1)), "STABLEHLO_COMPOSITE": (12, 21, (1,)),
}
_STABLEHLO_CASE = (12, 23)  # branch_subgraph_indices: [int] in slot 0


def __getattr__(name: str) -> Any:
    """``BUILTIN_OP_NAMES`` (the operator names by code) is read from its data file on first use."""
    if name == "BUILTIN_OP_NAMES":
        return builtin_op_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _opcode_name(fb: FlatbufferReader, code: int) -> tuple[str, bool, int]:
    """``(name, is_custom, version)`` of the OperatorCode table at *code*."""
    deprecated = int(fb.scalar(code, 0, "b", 0))
    builtin = int(fb.scalar(code, 3, "i", 0))
    version = int(fb.scalar(code, 2, "i", 1))
    value = max(deprecated, builtin)
    if value == CUSTOM_CODE:
        return fb.string(code, 1) or "CUSTOM", True, version
    return builtin_op_name(value), False, version


def parse_tflite(data: bytes | memoryview, *, what: str = "TFLite model") -> TfliteModel:
    """Parse a TFLite flatbuffer.

    Args:
        data: the whole file content.
        what: how to name the file in error messages.

    Before anything else the whole flatbuffer is verified
    (:func:`edgecv.formats.tflite_verify.verify_tflite_flatbuffer`), so a file
    that passes can be handed to any TFLite interpreter, old ones included.

    Raises:
        ModelLoadError: the buffer is too short, lacks the ``TFL3`` identifier,
            any offset, vector or index points outside the file, a tensor's
            shape is negative, larger than ``MAX_TENSOR_BYTES`` or bigger than
            its constant buffer, a name is not UTF-8, a quantization scale is
            NaN, negative, denormal or above ``MAX_QUANT_SCALE``, a model input or output of a type that is
            not a real number or boolean, an op declared to output another type than its kernel writes
            (see :mod:`~edgecv.formats.tflite_types_check`), TFLite_Detection_PostProcess options that
            are damaged, not finite or out of range (:mod:`~edgecv.formats.tflite_custom`), per-channel quantization does not match
            the shape, quantization that TFLite kernels abort on (see
            :func:`~edgecv.formats.tflite_checks.check_quantized_ops`), a stride, dilation, filter or block size
            below 1, a constant graph input or op output, a tensor written twice, a subgraph
            output that nothing computes, a
            DEPTHWISE_CONV_2D without bias, or a control-flow op refers to a missing
            subgraph, to one that leads back to itself, or to one whose
            inputs/outputs do not match the op.
    """
    fb = FlatbufferReader(data, what)
    _check_header(fb, what)
    root = fb.root()
    version = int(fb.scalar(root, 0, "I", 0))
    codes = [_opcode_name(fb, c) for c in fb.table_vector(root, 1)]
    buffers = fb.table_vector(root, 4)
    subgraphs: list[TfliteSubgraph] = []
    for sg in fb.table_vector(root, 2):
        subgraphs.append(_parse_subgraph(fb, sg, len(subgraphs), codes, buffers))
    if not subgraphs:
        raise fb._fail("no subgraphs")
    check_control_flow(fb, subgraphs)
    check_tensor_types(fb, subgraphs)
    check_quantized_ops(fb, subgraphs)
    check_dataflow(fb, subgraphs, buffers)
    for b_index, buffer_table in enumerate(buffers):
        check_buffer_range(fb, buffer_table, b_index)
    return TfliteModel(version=version, description=fb.string(root, 3) or "", subgraphs=tuple(subgraphs),
                       metadata=_parse_metadata(fb, root, buffers), size_bytes=fb.size)


def _check_header(fb: FlatbufferReader, what: str) -> None:
    """Size, ``TFL3`` identifier, then the whole flatbuffer against the schema.

    Raises:
        ModelLoadError: too short, not a TFLite flatbuffer, or failing verification.
    """
    if fb.size < 8:
        raise ModelLoadError(f"{what} is {fb.size} bytes, too short to be a TFLite model; the file is empty or truncated")
    if bytes(fb.data[4:8]) != FILE_IDENTIFIER:
        raise ModelLoadError(f"{what} is not a TFLite flatbuffer (no 'TFL3' identifier); check the file and its suffix")
    verify_tflite_flatbuffer(fb.data, what=what)


def _parse_subgraph(fb: FlatbufferReader, sg: int, graph: int, codes: list[tuple[str, bool, int]],
                    buffers: list[int]) -> TfliteSubgraph:
    """Subgraph number *graph* (the table at *sg*): its tensors, operators, inputs and outputs, each checked.

    Raises:
        ModelLoadError: a tensor, operator or index is out of range or fails a check.
    """
    tensors = tuple(_parse_tensor(fb, t, t_index, buffers) for t_index, t in enumerate(fb.table_vector(sg, 0)))
    operators = tuple(_parse_operator(fb, op, graph, codes, len(tensors)) for op in fb.table_vector(sg, 3))
    graph_inputs = _tensor_indices(fb, fb.scalar_vector(sg, 1, "i"), "subgraph input", len(tensors))
    graph_outputs = _tensor_indices(fb, fb.scalar_vector(sg, 2, "i"), "subgraph output", len(tensors))
    if any(v < 0 for v in graph_inputs + graph_outputs):
        raise fb._fail(f"subgraph {graph} lists tensor -1 as an input or output")
    return TfliteSubgraph(name=fb.string(sg, 4) or "", tensors=tensors, inputs=graph_inputs,
                          outputs=graph_outputs, operators=operators)


def _parse_tensor(fb: FlatbufferReader, t: int, t_index: int, buffers: list[int]) -> TfliteTensor:
    """Tensor number *t_index* (the table at *t*), checked by :func:`check_tensor`.

    Raises:
        ModelLoadError: its buffer index is out of range or it fails a check.
    """
    type_code = int(fb.scalar(t, 1, "b", 0))
    buffer_index = int(fb.scalar(t, 2, "I", 0))
    if buffer_index >= max(len(buffers), 1):
        raise fb._fail(f"tensor {t_index} refers to buffer {buffer_index} of {len(buffers)}")
    quant = _parse_quantization(fb, fb.table(t, 4))
    shape = tuple(int(d) for d in fb.scalar_vector(t, 0, "i"))
    tensor = TfliteTensor(
        index=t_index,
        name=_utf8_name(fb, t, 3, f"tensor {t_index}"),
        shape=shape,
        shape_signature=tuple(int(d) for d in fb.scalar_vector(t, 7, "i")) or shape,
        dtype=TENSOR_TYPE_NAMES.get(type_code, f"type{type_code}"),
        buffer=buffer_index,
        quantization=quant,
        is_variable=bool(fb.scalar(t, 5, "B", 0)),
    )
    check_tensor(fb, tensor, buffers, sparse=fb.field_pos(t, 6) is not None)
    return tensor


def _parse_quantization(fb: FlatbufferReader, q: int | None) -> TfliteQuantization | None:
    """The QuantizationParameters table at *q*, or None when absent or without scales."""
    if q is None:
        return None
    scales = fb.scalar_vector(q, 2, "f")
    if not scales:
        return None
    zero_points = fb.scalar_vector(q, 3, "q")
    return TfliteQuantization(tuple(float(s) for s in scales),
                              tuple(int(z) for z in zero_points) or (0,) * len(scales),
                              int(fb.scalar(q, 6, "i", 0)))


def _tensor_indices(fb: FlatbufferReader, values: list, kind: str, n_tensors: int) -> tuple[int, ...]:
    """*values* as tensor indices of a subgraph with *n_tensors* tensors (-1 means "no tensor").

    Raises:
        ModelLoadError: an index is below -1 or not below *n_tensors*.
    """
    for v in values:
        if v < -1 or v >= n_tensors:
            raise fb._fail(f"{kind} refers to tensor {v} of {n_tensors}")
    return tuple(int(v) for v in values)


def _parse_operator(fb: FlatbufferReader, op: int, graph: int, codes: list[tuple[str, bool, int]],
                    n_tensors: int) -> TfliteOperator:
    """The Operator table at *op* in subgraph *graph*, its options checked by :func:`check_op_options`.

    Raises:
        ModelLoadError: its opcode or a tensor index is out of range, or its options fail a check.
    """
    code_index = int(fb.scalar(op, 0, "I", 0))
    if code_index >= len(codes):
        raise fb._fail(f"operator uses opcode {code_index} of {len(codes)}")
    name, custom, op_version = codes[code_index]
    options = check_custom_options(fb, op, name, graph) if custom else None
    if not custom:
        check_op_options(fb, op, name, graph)
    return TfliteOperator(
        opcode=name, custom=custom, version=op_version,
        inputs=_tensor_indices(fb, fb.scalar_vector(op, 1, "i"), "operator input", n_tensors),
        outputs=_tensor_indices(fb, fb.scalar_vector(op, 2, "i"), "operator output", n_tensors),
        subgraphs=() if custom else _subgraph_refs(fb, op, name),
        custom_options=options,
    )


def _subgraph_refs(fb: FlatbufferReader, op: int, opcode: str) -> tuple[int, ...]:
    """Subgraph indices a control-flow op refers to (options missing or of another type read as 0, as TFLite does)."""
    if opcode in _SUBGRAPH_OPTIONS:
        slot, type_code, fields = _SUBGRAPH_OPTIONS[opcode]
        options = fb.table(op, slot) if int(fb.scalar(op, slot - 1, "B", 0)) == type_code else None
        return tuple(int(fb.scalar(options, f, "i", 0)) if options is not None else 0 for f in fields)
    if opcode == "STABLEHLO_CASE":
        slot, type_code = _STABLEHLO_CASE
        options = fb.table(op, slot) if int(fb.scalar(op, slot - 1, "B", 0)) == type_code else None
        return tuple(int(v) for v in fb.scalar_vector(options, 0, "i")) if options is not None else (0,)
    return ()


def _parse_metadata(fb: FlatbufferReader, root: int, buffers: list[int]) -> dict[str, bytes]:
    """The model's metadata entries: name -> the bytes of the buffer each names.

    Raises:
        ModelLoadError: an entry names a buffer out of range.
    """
    metadata: dict[str, bytes] = {}
    for entry in fb.table_vector(root, 6):
        name = fb.string(entry, 0) or ""
        buffer_index = int(fb.scalar(entry, 1, "I", 0))
        if buffer_index >= len(buffers):
            raise fb._fail(f"metadata '{name}' refers to buffer {buffer_index} of {len(buffers)}")
        metadata[name] = buffer_bytes(fb, buffers[buffer_index])
    return metadata


def _utf8_name(fb: FlatbufferReader, table: int, index: int, what: str) -> str:
    vec = fb.bytes_vector(table, index)
    if vec is None:
        return ""
    try:
        return bytes(fb.data[vec[0]:vec[0] + vec[1]]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fb._fail(f"the name of {what} is not valid UTF-8") from exc



def read_tflite(path: str) -> TfliteModel:
    """Read and parse a ``.tflite`` file.

    Raises:
        ModelLoadError: unreadable, truncated or corrupt file.
    """
    data = read_model_bytes(path)
    return parse_tflite(data, what=f"TFLite model {path}")


_NUMPY_DTYPES = {"float32": "<f4", "float16": "<f2", "float64": "<f8", "int8": "i1", "uint8": "u1",
                 "int16": "<i2", "uint16": "<u2", "int32": "<i4", "uint32": "<u4", "int64": "<i8",
                 "uint64": "<u8", "bool": "?"}


def tensor_data(data: bytes | memoryview, tensor: TfliteTensor, *, what: str = "TFLite model"):
    """Constant data of *tensor* (weights, anchors) from the file content *data*, as a numpy array.

    The array has the tensor's stored dtype and shape (still quantized: apply
    ``tensor.quantization`` to get real values) and is a read-only copy.

    Args:
        data: the whole file content that *tensor* was parsed from.
        tensor: a tensor of :func:`parse_tflite`'s result.

    Raises:
        ModelLoadError: the tensor holds no constant data (an activation), its
            type has no fixed-size numpy equivalent, or the buffer size does not
            match its shape.
    """
    import numpy as np

    fb = FlatbufferReader(data, what)
    buffers = fb.table_vector(fb.root(), 4)
    if tensor.buffer >= len(buffers):
        raise fb._fail(f"tensor {tensor.name!r} refers to buffer {tensor.buffer} of {len(buffers)}")
    raw = buffer_bytes(fb, buffers[tensor.buffer]) if tensor.buffer else b""
    if not raw:
        raise ModelLoadError(f"tensor {tensor.name!r} of {what} has no constant data (it is computed at run time); "
                             "read it from the interpreter instead")
    dtype = _NUMPY_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ModelLoadError(f"tensor {tensor.name!r} has type {tensor.dtype}, which tensor_data cannot read")
    count = 1
    for d in tensor.shape:
        count *= d
    if len(raw) != count * np.dtype(dtype).itemsize:
        raise fb._fail(f"tensor {tensor.name!r} shape {tensor.shape} needs {count * np.dtype(dtype).itemsize} bytes, "
                       f"its buffer holds {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype).reshape(tensor.shape).astype(np.dtype(dtype).newbyteorder("="))
    arr.flags.writeable = False
    return arr
