"""Bounds-checked reader for the TFLite flatbuffer format (schema v3, "TFL3").

Reads what edgecv needs without TensorFlow: operator codes, subgraphs with
their tensors (shape, type, quantization) and operators, buffers and the
model's metadata entries (edgecv's manifest, the standard ``TFLITE_METADATA``).
Every offset is checked against the file size, so a truncated or corrupt file
raises :class:`ModelLoadError` instead of reaching a native runtime.

Field indices follow tensorflow/lite/schema/schema.fbs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import ModelLoadError
from . import read_model_bytes
from .tflite_verify import verify_tflite_flatbuffer

FILE_IDENTIFIER = b"TFL3"

TENSOR_TYPE_NAMES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
    6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64",
    11: "complex128", 12: "uint64", 13: "resource", 14: "variant", 15: "uint32",
    16: "uint16", 17: "int4", 18: "bfloat16", 19: "int2", 20: "uint4",
}

BUILTIN_OP_NAMES: tuple[str, ...] = (
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "DEPTH_TO_SPACE",
        "DEQUANTIZE",
        "EMBEDDING_LOOKUP",
        "FLOOR",
        "FULLY_CONNECTED",
        "HASHTABLE_LOOKUP",
        "L2_NORMALIZATION",
        "L2_POOL_2D",
        "LOCAL_RESPONSE_NORMALIZATION",
        "LOGISTIC",
        "LSH_PROJECTION",
        "LSTM",
        "MAX_POOL_2D",
        "MUL",
        "RELU",
        "RELU_N1_TO_1",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RNN",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SVDF",
        "TANH",
        "CONCAT_EMBEDDINGS",
        "SKIP_GRAM",
        "CALL",
        "CUSTOM",
        "EMBEDDING_LOOKUP_SPARSE",
        "PAD",
        "UNIDIRECTIONAL_SEQUENCE_RNN",
        "GATHER",
        "BATCH_TO_SPACE_ND",
        "SPACE_TO_BATCH_ND",
        "TRANSPOSE",
        "MEAN",
        "SUB",
        "DIV",
        "SQUEEZE",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "STRIDED_SLICE",
        "BIDIRECTIONAL_SEQUENCE_RNN",
        "EXP",
        "TOPK_V2",
        "SPLIT",
        "LOG_SOFTMAX",
        "DELEGATE",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "CAST",
        "PRELU",
        "MAXIMUM",
        "ARG_MAX",
        "MINIMUM",
        "LESS",
        "NEG",
        "PADV2",
        "GREATER",
        "GREATER_EQUAL",
        "LESS_EQUAL",
        "SELECT",
        "SLICE",
        "SIN",
        "TRANSPOSE_CONV",
        "SPARSE_TO_DENSE",
        "TILE",
        "EXPAND_DIMS",
        "EQUAL",
        "NOT_EQUAL",
        "LOG",
        "SUM",
        "SQRT",
        "RSQRT",
        "SHAPE",
        "POW",
        "ARG_MIN",
        "FAKE_QUANT",
        "REDUCE_PROD",
        "REDUCE_MAX",
        "PACK",
        "LOGICAL_OR",
        "ONE_HOT",
        "LOGICAL_AND",
        "LOGICAL_NOT",
        "UNPACK",
        "REDUCE_MIN",
        "FLOOR_DIV",
        "REDUCE_ANY",
        "SQUARE",
        "ZEROS_LIKE",
        "FILL",
        "FLOOR_MOD",
        "RANGE",
        "RESIZE_NEAREST_NEIGHBOR",
        "LEAKY_RELU",
        "SQUARED_DIFFERENCE",
        "MIRROR_PAD",
        "ABS",
        "SPLIT_V",
        "UNIQUE",
        "CEIL",
        "REVERSE_V2",
        "ADD_N",
        "GATHER_ND",
        "COS",
        "WHERE",
        "RANK",
        "ELU",
        "REVERSE_SEQUENCE",
        "MATRIX_DIAG",
        "QUANTIZE",
        "MATRIX_SET_DIAG",
        "ROUND",
        "HARD_SWISH",
        "IF",
        "WHILE",
        "NON_MAX_SUPPRESSION_V4",
        "NON_MAX_SUPPRESSION_V5",
        "SCATTER_ND",
        "SELECT_V2",
        "DENSIFY",
        "SEGMENT_SUM",
        "BATCH_MATMUL",
        "PLACEHOLDER_FOR_GREATER_OP_CODES",
        "CUMSUM",
        "CALL_ONCE",
        "BROADCAST_TO",
        "RFFT2D",
        "CONV_3D",
        "IMAG",
        "REAL",
        "COMPLEX_ABS",
        "HASHTABLE",
        "HASHTABLE_FIND",
        "HASHTABLE_IMPORT",
        "HASHTABLE_SIZE",
        "REDUCE_ALL",
        "CONV_3D_TRANSPOSE",
        "VAR_HANDLE",
        "READ_VARIABLE",
        "ASSIGN_VARIABLE",
        "BROADCAST_ARGS",
        "RANDOM_STANDARD_NORMAL",
        "BUCKETIZE",
        "RANDOM_UNIFORM",
        "MULTINOMIAL",
        "GELU",
        "DYNAMIC_UPDATE_SLICE",
        "RELU_0_TO_1",
        "UNSORTED_SEGMENT_PROD",
        "UNSORTED_SEGMENT_MAX",
        "UNSORTED_SEGMENT_SUM",
        "ATAN2",
        "UNSORTED_SEGMENT_MIN",
        "SIGN",
        "BITCAST",
        "BITWISE_XOR",
        "RIGHT_SHIFT",
        "STABLEHLO_LOGISTIC",
        "STABLEHLO_ADD",
        "STABLEHLO_DIVIDE",
        "STABLEHLO_MULTIPLY",
        "STABLEHLO_MAXIMUM",
        "STABLEHLO_RESHAPE",
        "STABLEHLO_CLAMP",
        "STABLEHLO_CONCATENATE",
        "STABLEHLO_BROADCAST_IN_DIM",
        "STABLEHLO_CONVOLUTION",
        "STABLEHLO_SLICE",
        "STABLEHLO_CUSTOM_CALL",
        "STABLEHLO_REDUCE",
        "STABLEHLO_ABS",
        "STABLEHLO_AND",
        "STABLEHLO_COSINE",
        "STABLEHLO_EXPONENTIAL",
        "STABLEHLO_FLOOR",
        "STABLEHLO_LOG",
        "STABLEHLO_MINIMUM",
        "STABLEHLO_NEGATE",
        "STABLEHLO_OR",
        "STABLEHLO_POWER",
        "STABLEHLO_REMAINDER",
        "STABLEHLO_RSQRT",
        "STABLEHLO_SELECT",
        "STABLEHLO_SUBTRACT",
        "STABLEHLO_TANH",
        "STABLEHLO_SCATTER",
        "STABLEHLO_COMPARE",
        "STABLEHLO_CONVERT",
        "STABLEHLO_DYNAMIC_SLICE",
        "STABLEHLO_DYNAMIC_UPDATE_SLICE",
        "STABLEHLO_PAD",
        "STABLEHLO_IOTA",
        "STABLEHLO_DOT_GENERAL",
        "STABLEHLO_REDUCE_WINDOW",
        "STABLEHLO_SORT",
        "STABLEHLO_WHILE",
        "STABLEHLO_GATHER",
        "STABLEHLO_TRANSPOSE",
        "DILATE",
        "STABLEHLO_RNG_BIT_GENERATOR",
        "REDUCE_WINDOW",
        "STABLEHLO_COMPOSITE",
        "STABLEHLO_SHIFT_LEFT",
        "STABLEHLO_CBRT",
        "STABLEHLO_CASE",
)


class FlatbufferReader:
    """Minimal flatbuffer table access with bounds checks on every read."""

    def __init__(self, data: bytes | memoryview, what: str = "model") -> None:
        self.data = memoryview(data)
        self.size = len(self.data)
        self.what = what

    def _fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(f"corrupt {self.what}: {why}; the file is damaged or not this format, re-export or re-copy it")

    def _check(self, pos: int, length: int) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise self._fail(f"offset {pos}+{length} outside the {self.size}-byte buffer")

    def u8(self, pos: int) -> int:
        self._check(pos, 1)
        return self.data[pos]

    def i32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<I", self.data, pos)[0]

    def u16(self, pos: int) -> int:
        self._check(pos, 2)
        return struct.unpack_from("<H", self.data, pos)[0]

    def root(self) -> int:
        return self.u32(0)

    def field_pos(self, table: int, index: int) -> int | None:
        """Absolute position of field *index* of the table at *table*, or None if absent."""
        vtable = table - self.i32(table)
        vt_size = self.u16(vtable)
        if vt_size < 4 or vt_size % 2:
            raise self._fail("bad vtable size")
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        off = self.u16(vtable + slot)
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self.field_pos(table, index)
        if pos is None:
            return default
        n = struct.calcsize(fmt)
        self._check(pos, n)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def indirect(self, pos: int) -> int:
        target = pos + self.u32(pos)
        self._check(target, 4)
        return target

    def table(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else self.indirect(pos)

    def vector(self, table: int, index: int) -> tuple[int, int] | None:
        """``(start, length)`` of a vector field, or None."""
        pos = self.field_pos(table, index)
        if pos is None:
            return None
        vec = self.indirect(pos)
        length = self.u32(vec)
        return vec + 4, length

    def string(self, table: int, index: int) -> str | None:
        vec = self.vector(table, index)
        if vec is None:
            return None
        start, length = vec
        self._check(start, length)
        return bytes(self.data[start:start + length]).decode("utf-8", errors="replace")

    def table_vector(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index)
        if vec is None:
            return []
        start, length = vec
        self._check(start, 4 * length)
        return [self.indirect(start + 4 * i) for i in range(length)]

    def scalar_vector(self, table: int, index: int, fmt: str) -> list:
        vec = self.vector(table, index)
        if vec is None:
            return []
        start, length = vec
        n = struct.calcsize(fmt)
        self._check(start, n * length)
        return list(struct.unpack_from(f"<{length}{fmt}", self.data, start))

    def bytes_vector(self, table: int, index: int) -> tuple[int, int] | None:
        vec = self.vector(table, index)
        if vec is None:
            return None
        start, length = vec
        self._check(start, length)
        return start, length


@dataclass(frozen=True)
class TfliteQuantization:
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int


@dataclass(frozen=True)
class TfliteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    buffer: int
    quantization: TfliteQuantization | None
    is_variable: bool = False   # state kept between invocations (read before any op writes it)


@dataclass(frozen=True)
class TfliteOperator:
    opcode: str          # builtin name, or the custom code for CUSTOM ops
    custom: bool
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraphs: tuple[int, ...] = ()   # subgraphs a control-flow op runs (IF, WHILE, CALL_ONCE, ...)


@dataclass(frozen=True)
class TfliteSubgraph:
    name: str
    tensors: tuple[TfliteTensor, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[TfliteOperator, ...]


@dataclass(frozen=True)
class TfliteModel:
    """The parts of a TFLite flatbuffer that edgecv reads."""

    version: int
    description: str
    subgraphs: tuple[TfliteSubgraph, ...]
    metadata: dict[str, bytes] = field(default_factory=dict)
    size_bytes: int = 0

    @property
    def main(self) -> TfliteSubgraph:
        return self.subgraphs[0]

    def op_names(self) -> list[str]:
        """Op names of every subgraph, in graph order."""
        return [op.opcode for sg in self.subgraphs for op in sg.operators]


def _opcode_name(fb: FlatbufferReader, code: int) -> tuple[str, bool, int]:
    deprecated = int(fb.scalar(code, 0, "b", 0))
    builtin = int(fb.scalar(code, 3, "i", 0))
    version = int(fb.scalar(code, 2, "i", 1))
    value = max(deprecated, builtin)
    if value == 32:  # CUSTOM
        return fb.string(code, 1) or "CUSTOM", True, version
    if 0 <= value < len(BUILTIN_OP_NAMES):
        return BUILTIN_OP_NAMES[value], False, version
    return f"BUILTIN_{value}", False, version


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
            NaN, negative, denormal or above ``MAX_QUANT_SCALE``, per-channel quantization does not match
            the shape, quantization that TFLite kernels abort on (see
            ``_check_quantized_ops``), a stride, dilation, filter or block size
            below 1, a constant graph input or op output, a tensor written twice, a subgraph
            output that nothing computes, a
            DEPTHWISE_CONV_2D without bias, or a control-flow op refers to a missing
            subgraph, to one that leads back to itself, or to one whose
            inputs/outputs do not match the op.
    """
    fb = FlatbufferReader(data, what)
    if fb.size < 8:
        raise ModelLoadError(f"{what} is {fb.size} bytes, too short to be a TFLite model; the file is empty or truncated")
    if bytes(fb.data[4:8]) != FILE_IDENTIFIER:
        raise ModelLoadError(f"{what} is not a TFLite flatbuffer (no 'TFL3' identifier); check the file and its suffix")
    verify_tflite_flatbuffer(fb.data, what=what)
    root = fb.root()
    version = int(fb.scalar(root, 0, "I", 0))
    codes = [_opcode_name(fb, c) for c in fb.table_vector(root, 1)]
    buffers = fb.table_vector(root, 4)
    subgraphs = []
    for sg in fb.table_vector(root, 2):
        tensors = []
        for t_index, t in enumerate(fb.table_vector(sg, 0)):
            type_code = int(fb.scalar(t, 1, "b", 0))
            buffer_index = int(fb.scalar(t, 2, "I", 0))
            if buffer_index >= max(len(buffers), 1):
                raise fb._fail(f"tensor {t_index} refers to buffer {buffer_index} of {len(buffers)}")
            q = fb.table(t, 4)
            quant = None
            if q is not None:
                scales = fb.scalar_vector(q, 2, "f")
                zps = fb.scalar_vector(q, 3, "q")
                if scales:
                    quant = TfliteQuantization(tuple(float(s) for s in scales),
                                               tuple(int(z) for z in zps) or (0,) * len(scales),
                                               int(fb.scalar(q, 6, "i", 0)))
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
            _check_tensor(fb, tensor, buffers, sparse=fb.field_pos(t, 6) is not None)
            tensors.append(tensor)
        n_tensors = len(tensors)

        def _indices(values: list, kind: str, _n: int = n_tensors) -> tuple[int, ...]:
            for v in values:
                if v < -1 or v >= _n:
                    raise fb._fail(f"{kind} refers to tensor {v} of {_n}")
            return tuple(int(v) for v in values)

        operators = []
        for op in fb.table_vector(sg, 3):
            code_index = int(fb.scalar(op, 0, "I", 0))
            if code_index >= len(codes):
                raise fb._fail(f"operator uses opcode {code_index} of {len(codes)}")
            name, custom, op_version = codes[code_index]
            operators.append(TfliteOperator(
                opcode=name, custom=custom, version=op_version,
                inputs=_indices(fb.scalar_vector(op, 1, "i"), "operator input"),
                outputs=_indices(fb.scalar_vector(op, 2, "i"), "operator output"),
                subgraphs=() if custom else _subgraph_refs(fb, op, name),
            ))
            if not custom:
                _check_op_options(fb, op, name, len(subgraphs))
        graph_inputs = _indices(fb.scalar_vector(sg, 1, "i"), "subgraph input")
        graph_outputs = _indices(fb.scalar_vector(sg, 2, "i"), "subgraph output")
        if any(v < 0 for v in graph_inputs + graph_outputs):
            raise fb._fail(f"subgraph {len(subgraphs)} lists tensor -1 as an input or output")
        subgraphs.append(TfliteSubgraph(
            name=fb.string(sg, 4) or "",
            tensors=tuple(tensors),
            inputs=graph_inputs,
            outputs=graph_outputs,
            operators=tuple(operators),
        ))
    if not subgraphs:
        raise fb._fail("no subgraphs")
    _check_control_flow(fb, subgraphs)
    _check_quantized_ops(fb, subgraphs)
    _check_dataflow(fb, subgraphs, buffers)
    for b_index, buffer_table in enumerate(buffers):
        _buffer_range(fb, buffer_table, b_index)
    metadata: dict[str, bytes] = {}
    for entry in fb.table_vector(root, 6):
        name = fb.string(entry, 0) or ""
        buffer_index = int(fb.scalar(entry, 1, "I", 0))
        if buffer_index >= len(buffers):
            raise fb._fail(f"metadata '{name}' refers to buffer {buffer_index} of {len(buffers)}")
        metadata[name] = _buffer_bytes(fb, buffers[buffer_index])
    return TfliteModel(version=version, description=fb.string(root, 3) or "",
                       subgraphs=tuple(subgraphs), metadata=metadata, size_bytes=fb.size)


#: Largest tensor edgecv hands to an interpreter (2 GiB, also the flatbuffer size limit).
MAX_TENSOR_BYTES = 1 << 31
#: Range of a non-zero quantization scale. Below the smallest normal float32, TFLite's kernels crash
#: (segmentation fault); near the top of the float32 range their float rescaling overflows and aborts.
#: A real model's scales sit many orders of magnitude inside both ends.
MIN_QUANT_SCALE = 2.0 ** -126
MAX_QUANT_SCALE = 2.0 ** 32

_TYPE_BYTES = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2,
               "complex64": 8, "int8": 1, "float64": 8, "complex128": 16, "uint64": 8, "uint32": 4,
               "uint16": 2, "bfloat16": 2}

# Control-flow ops: (union slot of their options, options type code, slots holding subgraph indices).
# Slot 4 is Operator.builtin_options, slot 12 builtin_options_2 (tensorflow/lite/schema/schema.fbs).
_SUBGRAPH_OPTIONS: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "CALL": (4, 16, (0,)), "IF": (4, 92, (0, 1)), "WHILE": (4, 93, (0, 1)), "CALL_ONCE": (4, 103, (0,)),
    "STABLEHLO_REDUCE": (12, 6, (1,)), "STABLEHLO_SCATTER": (12, 7, (6,)),
    "STABLEHLO_REDUCE_WINDOW": (12, 13, (5,)), "STABLEHLO_SORT": (12, 14, (2,)),
    "STABLEHLO_WHILE": (12, 15, (0, 1)), "STABLEHLO_COMPOSITE": (12, 21, (1,)),
}
_STABLEHLO_CASE = (12, 23)  # branch_subgraph_indices: [int] in slot 0


def _utf8_name(fb: FlatbufferReader, table: int, index: int, what: str) -> str:
    vec = fb.bytes_vector(table, index)
    if vec is None:
        return ""
    try:
        return bytes(fb.data[vec[0]:vec[0] + vec[1]]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fb._fail(f"the name of {what} is not valid UTF-8") from exc


def _check_tensor(fb: FlatbufferReader, tensor: TfliteTensor, buffers: list[int], *, sparse: bool) -> None:
    """Shape, size and quantization sanity of one tensor (what an interpreter trusts without checking)."""
    count = 1
    for d in tensor.shape:
        if d < 0:
            raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) has negative dimension in shape {list(tensor.shape)}")
        count *= d
    item = _TYPE_BYTES.get(tensor.dtype)
    if item is not None and count * item > MAX_TENSOR_BYTES:
        raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) shape {list(tensor.shape)} needs {count * item} bytes, "
                       f"more than the {MAX_TENSOR_BYTES}-byte limit")
    if item is not None and not sparse and tensor.buffer:
        held = _buffer_size(fb, buffers[tensor.buffer])
        if 0 < held < count * item:
            raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) shape {list(tensor.shape)} needs {count * item} "
                           f"bytes but its constant buffer holds {held}")
    q = tensor.quantization
    bad = [v for v in q.scale if not (v == 0 or MIN_QUANT_SCALE <= v <= MAX_QUANT_SCALE)] if q is not None else []
    if bad:
        raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) has quantization scale(s) {bad[:4]}; a scale is 0 "
                       f"(not quantized) or between {MIN_QUANT_SCALE:.3g} and {MAX_QUANT_SCALE:.3g}")
    if q is not None and len(q.scale) > 1:
        if not 0 <= q.axis < len(tensor.shape) or tensor.shape[q.axis] != len(q.scale):
            raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) has {len(q.scale)} per-channel scales on axis "
                           f"{q.axis}, which does not fit its shape {list(tensor.shape)}")
        if len(q.zero_point) not in (1, len(q.scale)):
            raise fb._fail(f"tensor {tensor.index} ({tensor.name!r}) has {len(q.scale)} scales but "
                           f"{len(q.zero_point)} zero points")


# Ops whose quantized (8/16-bit) output scale TFLite divides by when preparing the kernel.
_RESCALING_OPS = {"ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
                  "QUANTIZE"}
_QUANTIZED_TYPES = {"uint8": 20, "int8": 20, "int16": 15}  # ADD/SUB left shift per output type


def _scale(tensor: TfliteTensor) -> float:
    q = tensor.quantization
    return q.scale[0] if q is not None and q.scale else 0.0


def _check_quantized_ops(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph]) -> None:
    """Quantization parameters that TFLite kernels assert on (abort the process) instead of reporting.

    Quantized ADD/SUB need positive scales and ``2 * max(input scales) < 2**shift * output scale``
    (shift 20 for 8-bit, 15 for 16-bit outputs); ops that rescale into a quantized output need its
    scale above zero, and a requantizing QUANTIZE (integer in, integer out) a positive input scale.
    A model breaking these kills the interpreter's process (abort or segmentation fault) while it
    is prepared.
    """
    for g, sg in enumerate(subgraphs):
        for op in sg.operators:
            if op.opcode not in _RESCALING_OPS or not op.outputs or op.outputs[0] < 0:
                continue
            out = sg.tensors[op.outputs[0]]
            if out.dtype not in _QUANTIZED_TYPES:
                continue
            where = f"{op.opcode} in subgraph {g} (output {out.name!r})"
            if _scale(out) <= 0:
                raise fb._fail(f"{where} is {out.dtype} without a positive quantization scale")
            if (op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] >= 0
                    and sg.tensors[op.inputs[0]].dtype in _QUANTIZED_TYPES and _scale(sg.tensors[op.inputs[0]]) <= 0):
                raise fb._fail(f"{where} requantizes an input without a positive quantization scale")
            if op.opcode in ("ADD", "SUB") and len(op.inputs) >= 2 and min(op.inputs[:2]) >= 0:
                in_scales = [_scale(sg.tensors[i]) for i in op.inputs[:2]]
                if min(in_scales) <= 0:
                    raise fb._fail(f"{where} has an input without a positive quantization scale")
                if 2 * max(in_scales) >= (1 << _QUANTIZED_TYPES[out.dtype]) * _scale(out):
                    raise fb._fail(f"{where}: input scales {in_scales} are too large for output scale {_scale(out)} "
                                   "(TFLite requires 2*max(input scale) < 2**20 * output scale)")


# Options fields that must be >= 1 (strides, dilations, filter and block sizes; a 0 divides by zero in
# the kernels): op -> (options type code, {slot: default when absent}). Options missing or of another
# type read as TFLite reads them: all zero, which these checks refuse.
_POSITIVE_OPTIONS: dict[str, tuple[int, dict[int, int]]] = {
    "CONV_2D": (1, {1: 0, 2: 0, 4: 1, 5: 1}),
    "DEPTHWISE_CONV_2D": (2, {1: 0, 2: 0, 5: 1, 6: 1}),
    "AVERAGE_POOL_2D": (5, {1: 0, 2: 0, 3: 0, 4: 0}),
    "MAX_POOL_2D": (5, {1: 0, 2: 0, 3: 0, 4: 0}),
    "L2_POOL_2D": (5, {1: 0, 2: 0, 3: 0, 4: 0}),
    "SPACE_TO_DEPTH": (19, {0: 0}),
    "TRANSPOSE_CONV": (49, {1: 0, 2: 0}),
    "DEPTH_TO_SPACE": (94, {0: 0}),
    "CONV_3D": (106, {1: 0, 2: 0, 3: 0, 5: 1, 6: 1, 7: 1}),
    "CONV_3D_TRANSPOSE": (106, {1: 0, 2: 0, 3: 0, 5: 1, 6: 1, 7: 1}),
}
_MAX_WINDOW = 1 << 16


def _check_op_options(fb: FlatbufferReader, op: int, opcode: str, graph: int) -> None:
    """Strides, dilations, filter and block sizes between 1 and 65536 (0 crashes TFLite kernels)."""
    if opcode not in _POSITIVE_OPTIONS:
        return
    type_code, fields = _POSITIVE_OPTIONS[opcode]
    options = fb.table(op, 4) if int(fb.scalar(op, 3, "B", 0)) == type_code else None
    for slot, default in fields.items():
        value = int(fb.scalar(options, slot, "i", default)) if options is not None else 0
        if not 1 <= value <= _MAX_WINDOW:
            raise fb._fail(f"{opcode} in subgraph {graph} has stride/dilation/filter/block size {value} (options "
                           f"field {slot}); it must be between 1 and {_MAX_WINDOW}")


# Fewest inputs an op's kernel reads without checking (DEPTHWISE_CONV_2D without its bias segfaults
# ai_edge_litert 2.3 and tflite-runtime 2.14 alike, float or quantized).
_MIN_INPUTS = {"DEPTHWISE_CONV_2D": 3}


def _check_dataflow(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph], buffers: list[int]) -> None:
    """Inputs and op outputs are not constants, each tensor has one writer, every output is computed,
    and ops get the inputs their kernels read.

    A subgraph input with constant data lives in the read-only model file: writing the input (edgecv,
    or a control-flow op copying into its subgraph) crashes. Control-flow ops copy their subgraphs'
    outputs; one that nothing writes has no memory behind it and tflite-runtime 2.14 crashes copying it.
    """
    for g, sg in enumerate(subgraphs):
        for t in sg.inputs:
            tensor = sg.tensors[t]
            if tensor.buffer > 0 and _buffer_size(fb, buffers[tensor.buffer]) > 0:
                raise fb._fail(f"input {tensor.name!r} of subgraph {g} is a constant (it has data in buffer "
                               f"{tensor.buffer}); graph inputs must be writable tensors")
        producers: set[int] = set(sg.inputs)
        for op in sg.operators:
            needed = _MIN_INPUTS.get(op.opcode)
            if needed is not None and (len(op.inputs) < needed or min(op.inputs[:needed]) < 0):
                raise fb._fail(f"{op.opcode} in subgraph {g} has inputs {list(op.inputs)}; its kernel needs "
                               f"{needed} (input, filter, bias)")
            for t in op.outputs:
                if t < 0:
                    continue
                tensor = sg.tensors[t]
                if tensor.buffer > 0 and _buffer_size(fb, buffers[tensor.buffer]) > 0:
                    raise fb._fail(f"{op.opcode} in subgraph {g} writes its output into constant {tensor.name!r}")
                if t in producers:
                    raise fb._fail(f"tensor {tensor.name!r} of subgraph {g} is written twice (by {op.opcode} and "
                                   "an earlier op or as a graph input)")
                producers.add(t)
        written = set(sg.inputs)
        for op in sg.operators:
            written.update(op.outputs)
        for t in sg.outputs:
            tensor = sg.tensors[t]
            constant = tensor.buffer > 0 and _buffer_size(fb, buffers[tensor.buffer]) > 0
            if t not in written and not constant and not tensor.is_variable:
                raise fb._fail(f"output {tensor.name!r} of subgraph {g} is never computed: no op writes it")


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


def _check_control_flow(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph]) -> None:
    """Every subgraph reference in range, no recursion, and IF/WHILE arity matching their subgraphs."""
    n = len(subgraphs)
    calls: list[set[int]] = []
    for g, sg in enumerate(subgraphs):
        targets: set[int] = set()
        for op in sg.operators:
            for ref in op.subgraphs:
                if not 0 <= ref < n:
                    raise fb._fail(f"{op.opcode} in subgraph {g} refers to subgraph {ref} of {n}")
                targets.add(ref)
            if op.opcode == "WHILE":
                cond, body = (subgraphs[i] for i in op.subgraphs)
                if not (len(cond.inputs) == len(op.inputs) == len(body.inputs) == len(body.outputs) == len(op.outputs)
                        and len(cond.outputs) == 1):
                    raise fb._fail(f"WHILE in subgraph {g}: its {len(op.inputs)} inputs / {len(op.outputs)} outputs do "
                                   "not match its condition and body subgraphs")
            elif op.opcode == "IF":
                for i in op.subgraphs:
                    if len(subgraphs[i].inputs) != len(op.inputs) - 1 or len(subgraphs[i].outputs) != len(op.outputs):
                        raise fb._fail(f"IF in subgraph {g}: branch subgraph {i} does not take its "
                                       f"{len(op.inputs) - 1} inputs and give its {len(op.outputs)} outputs")
        calls.append(targets)
    state = [0] * n  # 0 unvisited, 1 on the current path, 2 done
    for start in range(n):
        if state[start]:
            continue
        stack = [(start, iter(sorted(calls[start])))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state[child] == 1:
                raise fb._fail(f"subgraph {child} calls itself through control-flow ops (recursion), which no "
                               "TFLite interpreter can run")
            elif state[child] == 0:
                state[child] = 1
                stack.append((child, iter(sorted(calls[child]))))


def _buffer_size(fb: FlatbufferReader, buffer_table: int) -> int:
    vec = fb.bytes_vector(buffer_table, 0)
    if vec is not None:
        return vec[1]
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    return int(fb.scalar(buffer_table, 2, "Q", 0)) if offset > 1 else 0


def _buffer_range(fb: FlatbufferReader, buffer_table: int, index: int) -> None:
    """Buffers stored after the flatbuffer (offset/size form) must lie inside the file."""
    if fb.bytes_vector(buffer_table, 0) is not None:
        return
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    size = int(fb.scalar(buffer_table, 2, "Q", 0))
    if offset > 1 and (size > fb.size or offset > fb.size - size):
        raise fb._fail(f"buffer {index} claims bytes {offset}..{offset + size}, beyond the end of the file")


def _buffer_bytes(fb: FlatbufferReader, buffer_table: int) -> bytes:
    vec = fb.bytes_vector(buffer_table, 0)
    if vec is not None:
        start, length = vec
        return bytes(fb.data[start:start + length])
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    size = int(fb.scalar(buffer_table, 2, "Q", 0))
    if offset > 1 and size:
        fb._check(offset, size)
        return bytes(fb.data[offset:offset + size])
    return b""


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
    raw = _buffer_bytes(fb, buffers[tensor.buffer]) if tensor.buffer else b""
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
