"""Each TFLite structure check, on a hand-built model that breaks exactly that rule.

These are the cases that crashed a native interpreter (segmentation fault)
before edgecv checked them: a WHILE whose body is the main graph (recursion),
options tables pointing outside the file (tflite-runtime 2.14 does not run
the flatbuffers verifier), and their relatives.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

import edgecv
from edgecv.formats.tflite import FlatbufferReader, parse_tflite
from edgecv.formats.tflite_verify import verify_tflite_flatbuffer

from .flatbuffer import Table
from .tiny_models import _BOOL, _FLOAT32, _UINT8, TfliteBuilder, tflite_models

pytestmark = pytest.mark.device


def _while_model(cond_index: int = 1, body_index: int = 2, with_options: bool = True, body_outputs: int = 1) -> bytes:
    b = TfliteBuilder()
    options = ("WhileOptions", Table({0: ("i", cond_index), 1: ("i", body_index)})) if with_options else None
    b.subgraph("main", [b.tensor("x", [1], _FLOAT32), b.tensor("y", [1], _FLOAT32)], [0], [1],
               [b.op("WHILE", [0], [1], options)])
    cond = [b.tensor("a", [1], _FLOAT32), b.tensor("ten", [1], _FLOAT32, data=np.array([10], np.float32)),
            b.tensor("go", [1], _BOOL)]
    b.subgraph("cond", cond, [0], [2], [b.op("LESS", [0, 1], [2])])
    body = [b.tensor("a", [1], _FLOAT32), b.tensor("one", [1], _FLOAT32, data=np.array([1], np.float32)),
            b.tensor("a2", [1], _FLOAT32)]
    b.subgraph("body", body, [0], [2] * body_outputs, [b.op("ADD", [0, 1], [2])])
    return b.finish("while")


def _one_tensor_model(shape, *, dtype=_FLOAT32, data=None, quant=None, name: str | bytes = "c") -> bytes:
    """y = x + c with c as given."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4], _FLOAT32), b.tensor(name, shape, dtype, data=data, quant=quant),
               b.tensor("y", [1, 4], _FLOAT32)]
    b.subgraph("main", tensors, [0], [2], [b.op("ADD", [0, 1], [2])])
    return b.finish("one tensor")


def _load(tmp_path, data: bytes, name: str = "m.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return edgecv.load(path)


def test_valid_while_model_runs(tmp_path):
    with _load(tmp_path, _while_model()) as m:
        np.testing.assert_array_equal(m.run(np.zeros(1, np.float32))[0], [10.0])
        assert parse_tflite(_while_model()).main.operators[0].subgraphs == (1, 2)


@pytest.mark.parametrize("cond, body", [(1, 0), (0, 2), (2, 2)])
def test_while_recursion_is_refused(tmp_path, cond, body):
    """WHILE whose condition or body is (or leads back to) the graph running it used to segfault."""
    with pytest.raises(edgecv.ModelLoadError, match="recursion|does not match|calls itself"):
        _load(tmp_path, _while_model(cond, body))


def test_while_without_options_reads_as_subgraph_zero_and_is_refused(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="recursion|calls itself"):
        _load(tmp_path, _while_model(with_options=False))


@pytest.mark.parametrize("index", [3, 1000, -1])
def test_while_refers_to_missing_subgraph(tmp_path, index):
    with pytest.raises(edgecv.ModelLoadError, match=f"subgraph {index} of 3"):
        _load(tmp_path, _while_model(body_index=index))


def test_while_arity_mismatch(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="do not match"):
        _load(tmp_path, _while_model(body_outputs=2))


def _options_offset_position(data: bytes) -> int:
    fb = FlatbufferReader(data)
    sg = fb.table_vector(fb.root(), 2)[0]
    op = fb.table_vector(sg, 3)[0]
    return fb.field_pos(op, 4)


@pytest.mark.parametrize("relative", [0x7FFF0000, 0xFFFFFFF0, 3])
def test_options_table_outside_the_file_is_refused(tmp_path, relative):
    """tflite-runtime 2.14 follows this offset without checking it (segmentation fault)."""
    data = bytearray(tflite_models()["tiny_add"])
    struct.pack_into("<I", data, _options_offset_position(bytes(data)), relative)
    with pytest.raises(edgecv.ModelLoadError, match="corrupt"):
        verify_tflite_flatbuffer(bytes(data))
    with pytest.raises(edgecv.ModelLoadError, match="corrupt"):
        _load(tmp_path, bytes(data))


def test_string_without_terminator_is_refused():
    data = bytearray(tflite_models()["tiny_add"])
    fb = FlatbufferReader(bytes(data))
    description = fb.vector(fb.root(), 3)
    start, length = description
    data[start + length] = ord("x")  # overwrite the NUL after "tiny add"
    with pytest.raises(edgecv.ModelLoadError, match="NUL"):
        verify_tflite_flatbuffer(bytes(data))


def test_every_real_and_tiny_model_verifies(fixtures):
    models = {p.name: p.read_bytes() for p in fixtures.rglob("*.tflite")}
    models.update(tflite_models())
    assert len(models) >= 10
    for name, data in models.items():
        verify_tflite_flatbuffer(data, what=name)
        parse_tflite(data, what=name)


def test_negative_dimension(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="negative dimension"):
        _load(tmp_path, _one_tensor_model([1, -4]))


def test_huge_tensor(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="byte limit"):
        _load(tmp_path, _one_tensor_model([1 << 20, 1 << 20]))


def test_constant_buffer_smaller_than_its_shape(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="constant buffer holds 8"):
        _load(tmp_path, _one_tensor_model([1, 4], data=np.ones(2, np.float32)))


def test_constant_tensor_fitting_its_buffer_runs(tmp_path):
    with _load(tmp_path, _one_tensor_model([1, 4], data=np.arange(4, dtype=np.float32))) as m:
        np.testing.assert_array_equal(m.run(np.ones((1, 4), np.float32))[0], [[1, 2, 3, 4]])


@pytest.mark.parametrize("scales, axis", [([0.1, 0.2, 0.3], 1), ([0.1, 0.2, 0.3, 0.4], 5)])
def test_per_channel_quantization_not_fitting_the_shape(tmp_path, scales, axis):
    quant = (scales, [0] * len(scales), axis)
    with pytest.raises(edgecv.ModelLoadError, match="per-channel"):
        _load(tmp_path, _one_tensor_model([1, 4], dtype=_UINT8, data=np.zeros(4, np.uint8), quant=quant))


def test_tensor_name_not_utf8(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="UTF-8"):
        _load(tmp_path, _one_tensor_model([1, 4], name=b"bad\xff\xfename"))


def test_dynamic_batch_model_runs_through_the_copy_path(tmp_path):
    """Dynamic models use edgecv-owned buffers; the interpreter must still accept invoke() (it refused to while
    edgecv held a bound reference to its native Invoke)."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4], _FLOAT32, signature=[-1, 4]),
               b.tensor("c", [4], _FLOAT32, data=np.arange(4, dtype=np.float32)),
               b.tensor("y", [1, 4], _FLOAT32, signature=[-1, 4])]
    b.subgraph("main", tensors, [0], [2], [b.op("ADD", [0, 1], [2])])
    with _load(tmp_path, b.finish("dynamic batch")) as m:
        assert m._backend.direct is False
        np.testing.assert_array_equal(m.run(np.ones((1, 4), np.float32))[0], [[1, 2, 3, 4]])
        np.testing.assert_array_equal(m.run(np.full((1, 4), 2, np.float32))[0], [[2, 3, 4, 5]])


def _quant_add(out_scale: float, in_scale: float = 0.1, opcode: str = "ADD") -> bytes:
    """uint8 y = x + c with c = 10 (real 1.0 at scale 0.1)."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4], _UINT8, quant=(in_scale, 0)),
               b.tensor("c", [1, 4], _UINT8, data=np.full(4, 10, np.uint8), quant=(0.1, 0)),
               b.tensor("y", [1, 4], _UINT8, quant=(out_scale, 0))]
    b.subgraph("main", tensors, [0], [2], [b.op(opcode, [0, 1], [2])])
    return b.finish("quantized add")


def test_quantized_add_runs(tmp_path):
    with _load(tmp_path, _quant_add(0.1)) as m:
        np.testing.assert_allclose(m.run(np.array([[0, 10, 20, 30]], np.uint8))[0], [[1, 2, 3, 4]], atol=1e-6)


@pytest.mark.parametrize("out_scale", [1e-8, 1e-40, float("nan"), -0.1, 3e38])
def test_quantized_add_scales_that_abort_tflite_are_refused(tmp_path, out_scale):
    """A scale ratio the ADD kernel asserts on (process abort), denormal, NaN, negative or overflowing scales."""
    with pytest.raises(edgecv.ModelLoadError, match="scale"):
        _load(tmp_path, _quant_add(out_scale))


def test_quantized_add_without_output_scale_is_refused(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="positive quantization scale"):
        _load(tmp_path, _quant_add(0.0))


def test_requantize_without_input_scale_is_refused(tmp_path):
    """uint8 -> uint8 QUANTIZE with a zero input scale crashed ai_edge_litert (segmentation fault)."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4], _UINT8, quant=(0.0, 0)), b.tensor("y", [1, 4], _UINT8, quant=(0.1, 0))]
    b.subgraph("main", tensors, [0], [1], [b.op("QUANTIZE", [0], [1])])
    with pytest.raises(edgecv.ModelLoadError, match="requantizes"):
        _load(tmp_path, b.finish("requantize"))


def _conv(options: Table | None) -> bytes:
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4, 4, 1], _FLOAT32), b.tensor("w", [1, 1, 1, 1], _FLOAT32, data=np.ones(1, np.float32)),
               b.tensor("b", [1], _FLOAT32, data=np.zeros(1, np.float32)), b.tensor("y", [1, 4, 4, 1], _FLOAT32)]
    b.subgraph("main", tensors, [0], [3], [b.op("CONV_2D", [0, 1, 2], [3], ("Conv2DOptions", options) if options else None)])
    return b.finish("conv")


def test_conv_runs_with_valid_strides(tmp_path):
    with _load(tmp_path, _conv(Table({1: ("i", 1), 2: ("i", 1)}))) as m:
        x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        np.testing.assert_array_equal(m.run(x)[0], x)


@pytest.mark.parametrize("options", [Table({1: ("i", 0), 2: ("i", 1)}), Table({1: ("i", 1), 2: ("i", 1), 4: ("i", 0)}),
                                     Table({1: ("i", -3), 2: ("i", 1)}), None])
def test_conv_stride_or_dilation_below_one_is_refused(tmp_path, options):
    """A CONV_2D with stride 0 crashed tflite-runtime 2.14 (segmentation fault); missing options read as 0."""
    with pytest.raises(edgecv.ModelLoadError, match="stride/dilation"):
        _load(tmp_path, _conv(options))


def test_subgraph_output_nothing_computes_is_refused(tmp_path):
    """A WHILE body whose output no op writes crashed tflite-runtime 2.14 (segmentation fault)."""
    b = TfliteBuilder()
    b.subgraph("main", [b.tensor("x", [1], _FLOAT32), b.tensor("y", [1], _FLOAT32)], [0], [1],
               [b.op("WHILE", [0], [1], ("WhileOptions", Table({0: ("i", 1), 1: ("i", 2)})))])
    cond = [b.tensor("a", [1], _FLOAT32), b.tensor("ten", [1], _FLOAT32, data=np.array([10], np.float32)),
            b.tensor("go", [1], _BOOL)]
    b.subgraph("cond", cond, [0], [2], [b.op("LESS", [0, 1], [2])])
    b.subgraph("body", [b.tensor("a", [1], _FLOAT32), b.tensor("a2", [1], _FLOAT32)], [0], [1], [])
    with pytest.raises(edgecv.ModelLoadError, match="never computed"):
        _load(tmp_path, b.finish("empty body"))


def test_out_of_memory_while_preparing_is_a_model_load_error(tmp_path, monkeypatch):
    from edgecv.backends import litert

    interpreter_cls, _, _ = litert.resolve_interpreter()

    def no_memory(self):
        raise MemoryError("std::bad_alloc")

    monkeypatch.setattr(interpreter_cls, "allocate_tensors", no_memory)
    with pytest.raises(edgecv.ModelLoadError, match="not enough memory"):
        _load(tmp_path, tflite_models()["tiny_add"])


def test_constant_graph_input_is_refused(tmp_path):
    """Writing into an input that is a constant (read-only file memory) segfaulted."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4], _FLOAT32), b.tensor("c", [1, 4], _FLOAT32, data=np.ones(4, np.float32)),
               b.tensor("y", [1, 4], _FLOAT32)]
    b.subgraph("main", tensors, [0, 1], [2], [b.op("ADD", [0, 1], [2])])
    with pytest.raises(edgecv.ModelLoadError, match="is a constant"):
        _load(tmp_path, b.finish("constant input"))


def _depthwise(inputs: list[int]) -> bytes:
    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4, 4, 2], _FLOAT32),
               b.tensor("w", [1, 3, 3, 2], _FLOAT32, data=np.ones((1, 3, 3, 2), np.float32)),
               b.tensor("b", [2], _FLOAT32, data=np.array([1, 2], np.float32)), b.tensor("y", [1, 4, 4, 2], _FLOAT32)]
    options = ("DepthwiseConv2DOptions", Table({1: ("i", 1), 2: ("i", 1), 3: ("i", 1)}))
    b.subgraph("main", tensors, [0], [3], [b.op("DEPTHWISE_CONV_2D", inputs, [3], options)])
    return b.finish("depthwise")


def test_depthwise_with_bias_runs(tmp_path):
    with _load(tmp_path, _depthwise([0, 1, 2])) as m:
        out = m.run(np.zeros((1, 4, 4, 2), np.float32))[0]
        np.testing.assert_array_equal(out[0, 1, 1], [1, 2])


def test_depthwise_without_bias_is_refused(tmp_path):
    """Both ai_edge_litert 2.3 and tflite-runtime 2.14 segfault on a DEPTHWISE_CONV_2D with two inputs."""
    with pytest.raises(edgecv.ModelLoadError, match="needs 3"):
        _load(tmp_path, _depthwise([0, 1]))


def test_scalar_input_model_runs(tmp_path):
    """A 0-d tensor maps to a numpy scalar (a copy), so such models use the copy path."""
    b = TfliteBuilder()
    tensors = [b.tensor("x", [], _FLOAT32), b.tensor("c", [], _FLOAT32, data=np.array(2, np.float32)),
               b.tensor("y", [], _FLOAT32)]
    b.subgraph("main", tensors, [0], [2], [b.op("ADD", [0, 1], [2])])
    with _load(tmp_path, b.finish("scalar")) as m:
        m.input_buffer(0)[...] = 3
        assert float(m.invoke()[0]) == 5.0
        assert float(m.run(np.array(1, np.float32))[0]) == 3.0


def _input_constant_output():
    """A builder and its three float [1, 4] tensors: input x, constant c (ones), output y."""
    b = TfliteBuilder()
    return b, [b.tensor("x", [1, 4], _FLOAT32), b.tensor("c", [1, 4], _FLOAT32, data=np.ones(4, np.float32)),
               b.tensor("y", [1, 4], _FLOAT32)]


def test_op_writing_into_a_constant_is_refused(tmp_path):
    """An ADD whose output was redirected onto a constant tensor segfaulted tflite-runtime 2.14."""
    b, tensors = _input_constant_output()
    b.subgraph("main", tensors, [0], [2], [b.op("ADD", [0, 2], [1]), b.op("ADD", [0, 1], [2])])
    with pytest.raises(edgecv.ModelLoadError, match="into constant 'c'"):
        _load(tmp_path, b.finish("write constant"))


def test_tensor_written_twice_is_refused(tmp_path):
    b, tensors = _input_constant_output()
    b.subgraph("main", tensors, [0], [2], [b.op("ADD", [0, 1], [2]), b.op("ADD", [2, 1], [2])])
    with pytest.raises(edgecv.ModelLoadError, match="written twice"):
        _load(tmp_path, b.finish("written twice"))
