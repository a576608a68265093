"""The pure-Python ONNX reader: real fixtures, hand-encoded models, external data, corrupt input."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from edgecv.errors import ModelLoadError
from edgecv.formats.onnx import check_external_location, parse_onnx, read_onnx, resolve_external_data

# --- a minimal protobuf encoder, enough to write ModelProto by hand (no onnx package needed) ---


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def f_int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def f_bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def f_str(field: int, text: str) -> bytes:
    return f_bytes(field, text.encode("utf-8"))


def entry(key: str, value: str) -> bytes:
    return f_str(1, key) + f_str(2, value)


def value_info(name: str, elem_type: int, dims) -> bytes:
    shape = b""
    for d in dims:
        if isinstance(d, int):
            shape += f_bytes(1, f_int(1, d))
        elif isinstance(d, str):
            shape += f_bytes(1, f_str(2, d))
        else:
            shape += f_bytes(1, b"")          # a dimension with neither value nor param
    tensor_type = f_int(1, elem_type) + f_bytes(2, shape)
    return f_str(1, name) + f_bytes(2, f_bytes(1, tensor_type))


def node(op_type: str, inputs, outputs, name: str = "", domain: str = "", attributes=()) -> bytes:
    out = b"".join(f_str(1, i) for i in inputs) + b"".join(f_str(2, o) for o in outputs)
    out += f_str(3, name) + f_str(4, op_type)
    out += b"".join(f_bytes(5, a) for a in attributes)
    if domain:
        out += f_str(7, domain)
    return out


def initializer(name: str, data_type: int, dims, raw: bytes = b"", external=None) -> bytes:
    out = b"".join(f_int(1, d) for d in dims) + f_int(2, data_type) + f_str(8, name)
    if external is None:
        out += f_bytes(9, raw)
    else:
        out += b"".join(f_bytes(13, entry(k, v)) for k, v in external) + f_int(14, 1)
    return out


def graph(nodes=(), inits=(), inputs=(), outputs=(), name: str = "g") -> bytes:
    return (b"".join(f_bytes(1, n) for n in nodes) + f_str(2, name) + b"".join(f_bytes(5, i) for i in inits)
            + b"".join(f_bytes(11, v) for v in inputs) + b"".join(f_bytes(12, v) for v in outputs))


def model(graph_bytes: bytes, opset: int = 13, metadata=(), ir_version: int = 8, producer: str = "edgecv-test") -> bytes:
    return (f_int(1, ir_version) + f_str(2, producer) + f_str(3, "0.1") + f_bytes(7, graph_bytes)
            + f_bytes(8, f_str(1, "") + f_int(2, opset)) + b"".join(f_bytes(14, entry(k, v)) for k, v in metadata))


def relu_model(batch="N", metadata=()) -> bytes:
    g = graph(nodes=[node("Relu", ["x"], ["y"], name="relu0")],
              inputs=[value_info("x", 1, [batch, 3, 8, 8])], outputs=[value_info("y", 1, [batch, 3, 8, 8])])
    return model(g, metadata=metadata)


# --- real fixtures ---


@pytest.mark.device
def test_reads_ultraface_rfb_graph(fixtures):
    m = read_onnx(fixtures / "detection" / "ultraface_rfb_320.onnx")
    assert (m.ir_version, m.opset, m.producer_name, m.producer_version) == (4, 9, "pytorch", "1.2")
    assert m.opset_import == (("", 9),)
    assert len(m.graph.nodes) == 242 and len(m.graph.initializers) == 244
    assert len(m.graph.inputs) == 245            # IR 4 export lists every weight as an input too
    (inp,) = m.graph.runtime_inputs
    assert (inp.name, inp.dtype, inp.shape, inp.is_dynamic) == ("input", "float32", (1, 3, 240, 320), False)
    assert [(o.name, o.dtype, o.shape) for o in m.graph.outputs] == [
        ("scores", "float32", (1, 4420, 2)), ("boxes", "float32", (1, 4420, 4))]
    counts = Counter(m.op_types())
    assert counts["Conv"] == 52 and counts["Relu"] == 37 and counts["BatchNormalization"] == 35
    assert counts["Softmax"] == 1 and counts["Exp"] == 1          # box decoding is inside this model
    first = m.graph.initializers[0]
    assert (first.name, first.dtype, first.dims, first.data_location) == (
        "base_net.0.0.weight", "float32", (16, 3, 3, 3), "default")
    assert first.raw_data_bytes == 16 * 3 * 3 * 3 * 4
    assert m.external_data() == () and m.metadata_props == {}
    assert all(n.domain == "" for n in m.graph.nodes)


@pytest.mark.device
def test_reads_ultraface_slim_raw_graph(fixtures):
    m = read_onnx(fixtures / "detection" / "ultraface_slim_320_raw.onnx")
    assert len(m.graph.nodes) == 192 and len(m.graph.initializers) == 184
    counts = Counter(m.op_types())
    assert counts["Conv"] == 42 and counts["Relu"] == 34 and counts["Softmax"] == 1
    assert "Exp" not in counts                                    # raw offsets: no decoding in the graph
    assert [v.name for v in m.graph.runtime_inputs] == ["input"]
    assert [(o.name, o.shape) for o in m.graph.outputs] == [("scores", (1, 4420, 2)), ("boxes", (1, 4420, 4))]
    assert Counter(i.dtype for i in m.graph.initializers) == Counter({"float32": 159, "int64": 25})


@pytest.mark.device
def test_every_truncation_of_a_real_model_is_a_model_load_error(fixtures):
    data = (fixtures / "detection" / "ultraface_slim_320_raw.onnx").read_bytes()
    cuts = sorted(set(range(0, 64)) | set(range(0, len(data), max(1, len(data) // 300))) | {len(data) - 1})
    for cut in cuts:
        with pytest.raises(ModelLoadError):
            parse_onnx(data[:cut])


@pytest.mark.device
def test_garbage_is_a_model_load_error(fixtures):
    rng = random.Random(1234)
    tflite = (fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()[:4096]
    samples = [b"", b"\x00" * 16, b"\xff" * 64, b"not an onnx model at all\n" * 10, tflite,
               bytes(rng.randrange(256) for _ in range(2000)),
               b"\x0a\xff\xff\xff\xff\x0f",                  # a field claiming 4 GiB
               b"\x08" + b"\x80" * 12]                         # a varint longer than 10 bytes
    for sample in samples:
        with pytest.raises(ModelLoadError):
            parse_onnx(sample)


@pytest.mark.device
def test_mutated_real_model_raises_only_model_load_error(fixtures):
    data = (fixtures / "detection" / "ultraface_slim_320_raw.onnx").read_bytes()
    rng = random.Random(7)
    failures = 0
    for _ in range(200):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            parse_onnx(bytes(buf))
        except ModelLoadError:
            failures += 1
    assert failures > 0    # some mutations hit headers; none may escape as another exception type


@pytest.mark.device
def test_missing_file_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot read"):
        read_onnx(tmp_path / "absent.onnx")


# --- hand-encoded models ---


@pytest.mark.device
def test_dynamic_dims_and_metadata():
    m = parse_onnx(relu_model(batch="N", metadata=[("edgecv.manifest", '{"task": "x"}'), ("author", "me")]))
    (x,) = m.graph.inputs
    assert x.shape == ("N", 3, 8, 8) and x.is_dynamic
    assert m.metadata_props == {"edgecv.manifest": '{"task": "x"}', "author": "me"}
    assert (m.ir_version, m.opset, m.producer_name) == (8, 13, "edgecv-test")
    unknown = parse_onnx(relu_model(batch=None)).graph.inputs[0]
    assert unknown.shape == (None, 3, 8, 8) and unknown.is_dynamic
    fixed = parse_onnx(relu_model(batch=1)).graph.inputs[0]
    assert fixed.shape == (1, 3, 8, 8) and not fixed.is_dynamic


@pytest.mark.device
def test_packed_dims_negative_values_and_custom_domain():
    packed_dims = f_bytes(1, _varint(2) + _varint(5))            # dims written packed instead of one per field
    init = packed_dims + f_int(2, 7) + f_str(8, "shape_const")
    g = graph(nodes=[node("MyOp", ["x", "shape_const"], ["y"], domain="com.example")],
              inits=[init], inputs=[value_info("x", 10, [-1, 4])], outputs=[value_info("y", 10, [2, 5])])
    m = parse_onnx(model(g))
    (t,) = m.graph.initializers
    assert (t.dims, t.dtype) == ((2, 5), "int64")
    assert m.graph.inputs[0].shape == (-1, 4) and m.graph.inputs[0].is_dynamic
    assert m.graph.inputs[0].dtype == "float16"
    assert (m.graph.nodes[0].op_type, m.graph.nodes[0].domain) == ("MyOp", "com.example")


@pytest.mark.device
def test_subgraphs_in_attributes_are_walked():
    then_branch = graph(nodes=[node("Sigmoid", ["x"], ["t"])], outputs=[value_info("t", 1, [1])], name="then")
    else_branch = graph(nodes=[node("Tanh", ["x"], ["e"])], outputs=[value_info("e", 1, [1])], name="else")
    attrs = [f_str(1, "then_branch") + f_int(20, 5) + f_bytes(6, then_branch),
             f_str(1, "else_branch") + f_int(20, 5) + f_bytes(6, else_branch)]
    g = graph(nodes=[node("If", ["cond"], ["out"], attributes=attrs)],
              inputs=[value_info("cond", 9, [1])], outputs=[value_info("out", 1, [1])])
    m = parse_onnx(model(g))
    assert m.op_types() == ["If", "Sigmoid", "Tanh"]
    assert [s.name for s in m.graph.nodes[0].subgraphs] == ["then", "else"]


@pytest.mark.device
def test_pathological_nesting_is_refused():
    inner = graph(nodes=[node("Relu", ["x"], ["y"])])
    for _ in range(80):
        inner = graph(nodes=[node("If", ["c"], ["y"], attributes=[f_str(1, "then_branch") + f_bytes(6, inner)])])
    with pytest.raises(ModelLoadError, match="nesting"):
        parse_onnx(model(inner))


@pytest.mark.device
def test_wrong_wire_type_and_missing_parts_are_refused():
    with pytest.raises(ModelLoadError, match="wire type"):
        parse_onnx(f_int(1, 8) + f_int(7, 3) + f_bytes(8, f_int(2, 13)))      # graph written as a varint
    with pytest.raises(ModelLoadError, match="no graph"):
        parse_onnx(f_int(1, 8) + f_bytes(8, f_int(2, 13)))
    with pytest.raises(ModelLoadError, match="opset_import"):
        parse_onnx(f_int(1, 8) + f_bytes(7, graph()))
    with pytest.raises(ModelLoadError, match="op_type"):
        parse_onnx(model(graph(nodes=[f_str(1, "x") + f_str(2, "y")])))


def _external_model(location: str) -> bytes:
    init = initializer("w", 1, [4], external=[("location", location), ("offset", "0"), ("length", "16")])
    g = graph(nodes=[node("Add", ["x", "w"], ["y"])], inits=[init],
              inputs=[value_info("x", 1, [4])], outputs=[value_info("y", 1, [4])])
    return model(g)


@pytest.mark.device
def test_external_data_locations_are_exposed_and_confined(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 16)
    path = tmp_path / "m.onnx"
    path.write_bytes(_external_model("weights.bin"))
    m = read_onnx(path)
    (ref,) = m.external_data()
    assert (ref.tensor, ref.location, ref.offset, ref.length, ref.checksum) == ("w", "weights.bin", 0, 16, None)
    assert m.graph.initializers[0].data_location == "external"
    assert resolve_external_data(m, path) == (os.path.realpath(tmp_path / "weights.bin"),)

    for bad, why in (("../outside.bin", "outside the model folder"), ("/etc/passwd", "absolute path"),
                     ("missing.bin", "missing"), ("", "no location")):
        with pytest.raises(ModelLoadError, match=why):
            resolve_external_data(parse_onnx(_external_model(bad)), path)

    outside = tmp_path.parent / f"{tmp_path.name}_outside.bin"
    outside.write_bytes(b"\x00" * 16)
    os.symlink(outside, tmp_path / "link.bin")
    with pytest.raises(ModelLoadError, match="outside the model folder"):
        check_external_location("link.bin", tmp_path, "w")


# --- agreement with the onnx package (workstation environment only) ---


def test_agrees_with_onnx_package_on_a_helper_built_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], np.ones(9, dtype=np.float32).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["y"], name="relu"),
             helper.make_node("Custom", ["y"], ["z"], name="custom", domain="ai.edgecv")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3, None, 16])],
                          initializer=[weight])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.edgecv", 1)],
                          producer_name="unit")
    helper.set_model_props(m, {"edgecv.manifest": "{}"})
    ours = parse_onnx(m.SerializeToString())
    assert ours.ir_version == m.ir_version and ours.opset == 17
    assert ours.opset_import == (("", 17), ("ai.edgecv", 1))
    assert [(n.name, n.op_type, n.domain, n.inputs, n.outputs) for n in ours.graph.nodes] == [
        (n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output)) for n in m.graph.node]
    assert ours.graph.inputs[0].shape == ("batch", 3, 16, 16)
    assert ours.graph.outputs[0].shape == ("batch", 3, None, 16)
    assert (ours.graph.initializers[0].dims, ours.graph.initializers[0].dtype) == ((3, 3, 1, 1), "float32")
    assert ours.metadata_props == {"edgecv.manifest": "{}"}

    # the hand encoder used by the device tests writes what onnx itself reads
    parsed = onnx.load_from_string(relu_model(batch="N", metadata=[("k", "v")]))
    assert parsed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert [(p.key, p.value) for p in parsed.metadata_props] == [("k", "v")]

    # external data written by onnx.save is found and resolved
    big = onnx.numpy_helper.from_array(np.zeros(4096, dtype=np.float32), name="big")   # raw_data, so it goes external
    g2 = helper.make_graph([helper.make_node("Add", ["x", "big"], ["y"])], "g2",
                           [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4096])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4096])], initializer=[big])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(g2), str(path), save_as_external_data=True, location="ext.data",
              size_threshold=0)
    ext = read_onnx(path)
    assert [(r.tensor, r.location) for r in ext.external_data()] == [("big", "ext.data")]
    assert resolve_external_data(ext, path) == (os.path.realpath(tmp_path / "ext.data"),)
