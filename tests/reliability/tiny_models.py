"""Tiny TFLite and ONNX models hand-encoded in-process (no TensorFlow, no onnx package).

They cover structures the real fixtures lack: control flow with subgraph
references (TFLite WHILE and IF, ONNX If and Loop), constants inside
subgraphs, quantized inputs, and ONNX external data. Each builder returns the
file bytes; :func:`tflite_models` and :func:`onnx_models` return them by name.
The expected outputs on all-zero inputs are given next to each model so tests
can check the models really run.
"""

from __future__ import annotations

import numpy as np

from .flatbuffer import Bytes, String, Table, TableVector, Vector, serialize
from .protobuf import field_bytes, field_msg, field_str, field_varint, packed_varints

__all__ = ["tflite_models", "onnx_models", "onnx_embedder", "EXTERNAL_DATA_NAME", "external_weights", "TfliteBuilder",
           "TFLITE_ZERO_OUTPUTS", "ONNX_ZERO_OUTPUTS"]

# ---------------------------------------------------------------- TFLite
_FLOAT32, _INT32, _UINT8, _BOOL = 0, 2, 3, 6
_OPS = {"ADD": 0, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6, "MUL": 18, "LESS": 58, "QUANTIZE": 114,
        "IF": 118, "WHILE": 119}
_OPTIONS = {"Conv2DOptions": 1, "DepthwiseConv2DOptions": 2, "AddOptions": 11, "MulOptions": 21, "IfOptions": 92,
            "WhileOptions": 93}


class TfliteBuilder:
    """Collects buffers, op codes and subgraphs of one TFLite model."""

    def __init__(self) -> None:
        self.buffers: list[Table] = [Table()]  # buffer 0 is the empty sentinel
        self.opcodes: list[str] = []
        self.subgraphs: list[Table] = []

    def buffer(self, data: bytes) -> int:
        self.buffers.append(Table({0: Bytes(data)}))
        return len(self.buffers) - 1

    def opcode(self, name: str) -> int:
        if name not in self.opcodes:
            self.opcodes.append(name)
        return self.opcodes.index(name)

    def subgraph(self, name: str, tensors: list[Table], inputs: list[int], outputs: list[int],
                 operators: list[Table]) -> int:
        self.subgraphs.append(Table({
            0: TableVector(tensors), 1: Vector("i", inputs), 2: Vector("i", outputs),
            3: TableVector(operators), 4: String(name),
        }))
        return len(self.subgraphs) - 1

    def tensor(self, name: str | bytes, shape: list[int], dtype: int, *, data: np.ndarray | None = None,
               quant: tuple | None = None, signature: list[int] | None = None) -> Table:
        """A tensor table; ``quant`` is ``(scale(s), zero point(s))`` or ``(scales, zero points, axis)``;
        ``signature`` is the shape signature (-1 for dynamic dimensions)."""
        fields: dict = {0: Vector("i", shape), 1: ("b", dtype), 3: String(name)}
        if signature is not None:
            fields[7] = Vector("i", signature)
        if data is not None:
            fields[2] = ("I", self.buffer(np.ascontiguousarray(data).tobytes()))
        if quant is not None:
            scales = np.atleast_1d(quant[0]).astype(float).tolist()
            zero_points = np.atleast_1d(quant[1]).astype(int).tolist()
            fields[4] = Table({2: Vector("f", scales), 3: Vector("q", zero_points),
                               6: ("i", quant[2] if len(quant) > 2 else 0)})
        return Table(fields)

    def op(self, name: str, inputs: list[int], outputs: list[int], options: tuple[str, Table] | None = None) -> Table:
        fields: dict = {0: ("I", self.opcode(name)), 1: Vector("i", inputs), 2: Vector("i", outputs)}
        if options is not None:
            fields[3] = ("B", _OPTIONS[options[0]])
            fields[4] = options[1]
        return Table(fields)

    def finish(self, description: str) -> bytes:
        codes = [Table({0: ("b", min(_OPS[n], 127)), 2: ("i", 1), 3: ("i", _OPS[n])}) for n in self.opcodes]
        model = Table({0: ("I", 3), 1: TableVector(codes), 2: TableVector(self.subgraphs),
                       3: String(description), 4: TableVector(self.buffers)})
        return serialize(model, b"TFL3")


def _tflite_add() -> bytes:
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4, 4, 3], _FLOAT32),
               b.tensor("c", [1, 1, 1, 3], _FLOAT32, data=np.array([1, 2, 3], np.float32)),
               b.tensor("y", [1, 4, 4, 3], _FLOAT32)]
    ops = [b.op("ADD", [0, 1], [2], ("AddOptions", Table({0: ("b", 0)})))]
    b.subgraph("main", tensors, [0], [2], ops)
    return b.finish("tiny add")


def _tflite_conv() -> bytes:
    b = TfliteBuilder()
    rng = np.random.default_rng(7)
    tensors = [b.tensor("x", [1, 8, 8, 3], _FLOAT32),
               b.tensor("w", [4, 3, 3, 3], _FLOAT32, data=rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)),
               b.tensor("b", [4], _FLOAT32, data=np.array([0.5, -0.5, 1.0, 0.0], np.float32)),
               b.tensor("y", [1, 8, 8, 4], _FLOAT32)]
    conv_options = Table({0: ("b", 0), 1: ("i", 1), 2: ("i", 1), 3: ("b", 0)})  # SAME, stride 1, no activation
    ops = [b.op("CONV_2D", [0, 1, 2], [3], ("Conv2DOptions", conv_options))]
    b.subgraph("main", tensors, [0], [3], ops)
    return b.finish("tiny conv")


def _tflite_quant() -> bytes:
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 8, 8, 3], _UINT8, quant=(1 / 255, 0)),
               b.tensor("xf", [1, 8, 8, 3], _FLOAT32),
               b.tensor("c", [1, 1, 1, 3], _FLOAT32, data=np.array([0.25, 0.5, 0.75], np.float32)),
               b.tensor("y", [1, 8, 8, 3], _FLOAT32)]
    ops = [b.op("DEQUANTIZE", [0], [1]), b.op("MUL", [1, 2], [3], ("MulOptions", Table({0: ("b", 0)})))]
    b.subgraph("main", tensors, [0], [3], ops)
    return b.finish("tiny uint8 input")


def _tflite_while() -> bytes:
    """y = x; while y < 10: y = y + 1   (subgraph 1 is the condition, 2 the body)."""
    b = TfliteBuilder()
    main = [b.tensor("x", [1], _FLOAT32), b.tensor("y", [1], _FLOAT32)]
    loop = b.op("WHILE", [0], [1], ("WhileOptions", Table({0: ("i", 1), 1: ("i", 2)})))
    b.subgraph("main", main, [0], [1], [loop])
    cond = [b.tensor("a", [1], _FLOAT32), b.tensor("ten", [1], _FLOAT32, data=np.array([10], np.float32)),
            b.tensor("keep_going", [1], _BOOL)]
    b.subgraph("cond", cond, [0], [2], [b.op("LESS", [0, 1], [2])])
    body = [b.tensor("a", [1], _FLOAT32), b.tensor("one", [1], _FLOAT32, data=np.array([1], np.float32)),
            b.tensor("a_next", [1], _FLOAT32)]
    b.subgraph("body", body, [0], [2], [b.op("ADD", [0, 1], [2], ("AddOptions", Table({0: ("b", 0)})))])
    return b.finish("tiny while loop")


def _tflite_if() -> bytes:
    """y = x + 1 if flag else x * 3."""
    b = TfliteBuilder()
    main = [b.tensor("flag", [1], _BOOL), b.tensor("x", [1, 3], _FLOAT32), b.tensor("y", [1, 3], _FLOAT32)]
    branch = b.op("IF", [0, 1], [2], ("IfOptions", Table({0: ("i", 1), 1: ("i", 2)})))
    b.subgraph("main", main, [0, 1], [2], [branch])
    then = [b.tensor("x", [1, 3], _FLOAT32), b.tensor("one", [1], _FLOAT32, data=np.array([1], np.float32)),
            b.tensor("out", [1, 3], _FLOAT32)]
    b.subgraph("then", then, [0], [2], [b.op("ADD", [0, 1], [2], ("AddOptions", Table({0: ("b", 0)})))])
    other = [b.tensor("x", [1, 3], _FLOAT32), b.tensor("three", [1], _FLOAT32, data=np.array([3], np.float32)),
             b.tensor("out", [1, 3], _FLOAT32)]
    b.subgraph("else", other, [0], [2], [b.op("MUL", [0, 1], [2], ("MulOptions", Table({0: ("b", 0)})))])
    return b.finish("tiny if")


def tflite_models() -> dict[str, bytes]:
    """Tiny TFLite models by name (file content)."""
    return {"tiny_add": _tflite_add(), "tiny_conv": _tflite_conv(), "tiny_quant": _tflite_quant(),
            "tiny_while": _tflite_while(), "tiny_if": _tflite_if()}


#: Output of each tiny TFLite model when every input is zero.
TFLITE_ZERO_OUTPUTS: dict[str, np.ndarray] = {
    "tiny_add": np.broadcast_to(np.array([1, 2, 3], np.float32), (1, 4, 4, 3)),
    "tiny_quant": np.zeros((1, 8, 8, 3), np.float32),
    "tiny_while": np.array([10], np.float32),
    "tiny_if": np.zeros((1, 3), np.float32),
}

# ---------------------------------------------------------------- ONNX
_F32, _U8, _I64, _BOOL_T = 1, 2, 7, 9
EXTERNAL_DATA_NAME = "tiny_external.weights"


def _value_info(name: str | bytes, elem: int, dims: list[int]) -> bytes:
    shape = b"".join(field_msg(1, field_varint(1, d)) for d in dims)
    tensor_type = field_varint(1, elem) + field_msg(2, shape)
    return field_str(1, name) + field_msg(2, field_msg(1, tensor_type))


def _tensor(name: str, array: np.ndarray, elem: int) -> bytes:
    dims = b"".join(field_varint(1, d) for d in array.shape)
    return dims + field_varint(2, elem) + field_str(8, name) + field_bytes(9, np.ascontiguousarray(array).tobytes())


def _external_tensor(name: str, dims: list[int], elem: int, location: str, offset: int, length: int) -> bytes:
    entries = [("location", location), ("offset", str(offset)), ("length", str(length))]
    ext = b"".join(field_msg(13, field_str(1, k), field_str(2, v)) for k, v in entries)
    return b"".join(field_varint(1, d) for d in dims) + field_varint(2, elem) + field_str(8, name) + ext \
        + field_varint(14, 1)


def _attr_int(name: str, value: int) -> bytes:
    return field_str(1, name) + field_varint(3, value) + field_varint(20, 2)


def _attr_ints(name: str, values: list[int]) -> bytes:
    return field_str(1, name) + packed_varints(8, values) + field_varint(20, 7)


def _attr_graph(name: str, graph: bytes) -> bytes:
    return field_str(1, name) + field_msg(6, graph) + field_varint(20, 5)


def _node(op: str, inputs: list, outputs: list, attrs: list[bytes] = (), name: str = "") -> bytes:
    parts = [field_str(1, i) for i in inputs] + [field_str(2, o) for o in outputs]
    parts += [field_str(3, name or f"{op}_{outputs[0]}"), field_str(4, op)]
    parts += [field_msg(5, a) for a in attrs]
    return b"".join(parts)


def _graph(name: str, nodes: list[bytes], inputs: list[bytes], outputs: list[bytes],
           initializers: list[bytes] = ()) -> bytes:
    parts = [field_msg(1, n) for n in nodes] + [field_str(2, name)]
    parts += [field_msg(5, t) for t in initializers]
    parts += [field_msg(11, v) for v in inputs] + [field_msg(12, v) for v in outputs]
    return b"".join(parts)


def _model(graph: bytes, opset: int = 17) -> bytes:
    return (field_varint(1, 8) + field_str(2, "edgecv-tests") + field_msg(7, graph)
            + field_msg(8, field_str(1, ""), field_varint(2, opset)))


def _onnx_conv_relu() -> bytes:
    rng = np.random.default_rng(11)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    bias = np.array([0.5, -0.5, 1.0, 0.0], np.float32)
    nodes = [_node("Conv", ["x", "w", "b"], ["c"], [_attr_ints("pads", [1, 1, 1, 1]), _attr_ints("kernel_shape", [3, 3])]),
             _node("Relu", ["c"], ["y"])]
    graph = _graph("conv_relu", nodes, [_value_info("x", _F32, [1, 3, 8, 8])], [_value_info("y", _F32, [1, 4, 8, 8])],
                   [_tensor("w", w, _F32), _tensor("b", bias, _F32)])
    return _model(graph)


def _onnx_if() -> bytes:
    """y = x + 1 if flag else x * 3 (branch constants live inside the subgraphs)."""
    then = _graph("then", [_node("Add", ["x", "one"], ["t_out"])], [], [_value_info("t_out", _F32, [1, 3])],
                  [_tensor("one", np.array([1], np.float32), _F32)])
    other = _graph("else", [_node("Mul", ["x", "three"], ["e_out"])], [], [_value_info("e_out", _F32, [1, 3])],
                   [_tensor("three", np.array([3], np.float32), _F32)])
    node = _node("If", ["flag"], ["y"], [_attr_graph("then_branch", then), _attr_graph("else_branch", other)])
    graph = _graph("if", [node], [_value_info("flag", _BOOL_T, []), _value_info("x", _F32, [1, 3])],
                   [_value_info("y", _F32, [1, 3])])
    return _model(graph)


def _onnx_loop() -> bytes:
    """y = x + 3, by a Loop of 3 iterations adding 1."""
    body = _graph("body", [_node("Identity", ["cond_in"], ["cond_out"]), _node("Add", ["v_in", "one"], ["v_out"])],
                  [_value_info("i", _I64, []), _value_info("cond_in", _BOOL_T, []), _value_info("v_in", _F32, [1, 3])],
                  [_value_info("cond_out", _BOOL_T, []), _value_info("v_out", _F32, [1, 3])],
                  [_tensor("one", np.array([1], np.float32), _F32)])
    node = _node("Loop", ["trips", "go", "x"], ["y"], [_attr_graph("body", body)])
    graph = _graph("loop", [node], [_value_info("x", _F32, [1, 3])], [_value_info("y", _F32, [1, 3])],
                   [_tensor("trips", np.array(3, np.int64), _I64), _tensor("go", np.array(True), _BOOL_T)])
    return _model(graph, opset=16)


def external_weights() -> bytes:
    """The content of :data:`EXTERNAL_DATA_NAME` that the external-data model reads."""
    return np.arange(1, 5, dtype=np.float32).tobytes()


def _onnx_external() -> bytes:
    node = _node("Add", ["x", "w"], ["y"])
    graph = _graph("external", [node], [_value_info("x", _F32, [1, 4])], [_value_info("y", _F32, [1, 4])],
                   [_external_tensor("w", [4], _F32, EXTERNAL_DATA_NAME, 0, 16)])
    return _model(graph)


def _onnx_uint8() -> bytes:
    nodes = [_node("Cast", ["x"], ["xf"], [_attr_int("to", _F32)]), _node("Mul", ["xf", "scale"], ["y"])]
    graph = _graph("uint8", nodes, [_value_info("x", _U8, [1, 3, 4, 4])], [_value_info("y", _F32, [1, 3, 4, 4])],
                   [_tensor("scale", np.array([1 / 255], np.float32), _F32)])
    return _model(graph)


def onnx_embedder(size: int = 32, dim: int = 16, seed: int = 5, projection: int | None = None) -> bytes:
    """A tiny ONNX embedder: NCHW float [1,3,size,size] -> Conv 3x3 -> Relu -> GlobalAveragePool -> [1, dim].

    With *projection*, a final MatMul by a random [dim, projection] matrix gives [1, projection] (a big
    file on purpose: 64 bytes per unit of projection).
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.2, (dim, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, dim).astype(np.float32)
    flat = "embedding" if projection is None else "flat"
    nodes = [_node("Conv", ["image", "w", "b"], ["c"], [_attr_ints("pads", [1, 1, 1, 1])]),
             _node("Relu", ["c"], ["r"]), _node("GlobalAveragePool", ["r"], ["p"]),
             _node("Flatten", ["p"], [flat], [_attr_int("axis", 1)])]
    inits = [_tensor("w", w, _F32), _tensor("b", bias, _F32)]
    if projection is not None:
        nodes.append(_node("MatMul", ["flat", "proj"], ["embedding"]))
        inits.append(_tensor("proj", rng.normal(0, 0.1, (dim, projection)).astype(np.float32), _F32))
    graph = _graph("embedder", nodes, [_value_info("image", _F32, [1, 3, size, size])],
                   [_value_info("embedding", _F32, [1, projection or dim])], inits)
    return _model(graph)


def onnx_models() -> dict[str, bytes]:
    """Tiny ONNX models by name (file content). ``tiny_external`` needs :func:`external_weights` beside it."""
    return {"tiny_conv_relu": _onnx_conv_relu(), "tiny_if": _onnx_if(), "tiny_loop": _onnx_loop(),
            "tiny_external": _onnx_external(), "tiny_uint8": _onnx_uint8(), "tiny_embedder": onnx_embedder()}


#: Output of each tiny ONNX model when every input is zero.
ONNX_ZERO_OUTPUTS: dict[str, np.ndarray] = {
    "tiny_if": np.zeros((1, 3), np.float32),
    "tiny_loop": np.full((1, 3), 3, np.float32),
    "tiny_external": np.arange(1, 5, dtype=np.float32).reshape(1, 4),
    "tiny_uint8": np.zeros((1, 3, 4, 4), np.float32),
}
