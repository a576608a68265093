"""Bounds-checked reader for ONNX model files (protobuf wire format, no onnx package).

Reads what edgecv needs without the ``onnx`` or ``protobuf`` packages: the
model header (IR version, opset imports, producer, ``metadata_props``) and the
graph (nodes with op type and domain, initializers with type, dims and where
their data lives, graph inputs and outputs with element type and dims,
including ``dim_param`` names of dynamic dimensions). Subgraphs held in node
attributes (``If``, ``Loop``, ``Scan``) are read too.

Tensor payloads are skipped, never copied, except small ones (at most 256
bytes: scales and zero points): a 100 MB model costs a walk over
its field headers. Every length, varint and nesting level is checked against
the buffer, so a truncated or corrupt file raises :class:`ModelLoadError`
instead of ``IndexError`` or ``struct.error``.

Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
OperatorSetIdProto, StringStringEntryProto).

The pieces live in their own modules and are importable from here as before:
:mod:`~edgecv.formats.protobuf` (bounds-checked wire-format reads),
:mod:`~edgecv.formats.onnx_types` (the result dataclasses),
:mod:`~edgecv.formats.onnx_external` (external-data locations).
"""

from __future__ import annotations

import os
import struct
from typing import Any

from ..errors import ModelLoadError
from . import read_model_bytes
from .onnx_external import check_external_location, resolve_external_data
from .onnx_types import (
    ONNX_DTYPE_NAMES,
    SMALL_PAYLOAD_BYTES,
    Dim,
    ExternalDataRef,
    OnnxGraph,
    OnnxInitializer,
    OnnxModel,
    OnnxNode,
    OnnxValueInfo,
)
from .protobuf import LEN, WireReader, int_field, repeated_varints

__all__ = [
    "ONNX_DTYPE_NAMES",
    "OnnxValueInfo",
    "OnnxInitializer",
    "OnnxNode",
    "OnnxGraph",
    "OnnxModel",
    "ExternalDataRef",
    "parse_onnx",
    "read_onnx",
    "resolve_external_data",
    "check_external_location",
]

# Deeper nesting than this is not a real model (graph → node → attribute → graph ...).
_MAX_DEPTH = 64

# ModelProto fields read as they are: field number -> OnnxModel field.
_MODEL_INT_FIELDS = {1: "ir_version", 5: "model_version"}
_MODEL_TEXT_FIELDS = {2: "producer_name", 3: "producer_version", 4: "domain", 6: "doc_string"}
_MODEL_LEN_FIELDS = frozenset((*_MODEL_TEXT_FIELDS, 7, 8, 14, 25))   # text, graph, opset, metadata, functions


def _string_entry(w: WireReader, a: int, b: int) -> tuple[str, str]:
    key = value = ""
    for number, wire, x, y in w.fields(a, b):
        if number in (1, 2):
            w.expect(number, wire, LEN, "StringStringEntryProto")
            if number == 1:
                key = w.string(x, y)
            else:
                value = w.string(x, y)
    return key, value


def _parse_shape(w: WireReader, a: int, b: int) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for number, wire, x, y in w.fields(a, b):
        if number != 1:
            continue
        w.expect(number, wire, LEN, "TensorShapeProto")
        dim: Dim = None
        for n2, w2, x2, y2 in w.fields(x, y):
            if n2 == 1:
                dim = int_field(w, n2, w2, x2, "Dimension")
            elif n2 == 2:
                w.expect(n2, w2, LEN, "Dimension")
                dim = w.string(x2, y2)
        dims.append(dim)
    return tuple(dims)


def _parse_type(w: WireReader, a: int, b: int, depth: int) -> tuple[str, int, tuple[Dim, ...] | None]:
    """TypeProto → (kind, elem_type, shape)."""
    if depth > _MAX_DEPTH:
        raise w.fail("type nesting deeper than 64 levels")
    kinds = {1: "tensor", 4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}
    kind, elem, shape = "unknown", 0, None
    for number, wire, x, y in w.fields(a, b):
        if number not in kinds:
            continue
        w.expect(number, wire, LEN, "TypeProto")
        kind = kinds[number]
        if number in (1, 8):        # Tensor / SparseTensor: elem_type = 1, shape = 2
            for n2, w2, x2, y2 in w.fields(x, y):
                if n2 == 1:
                    elem = int_field(w, n2, w2, x2, "TypeProto.Tensor")
                elif n2 == 2:
                    w.expect(n2, w2, LEN, "TypeProto.Tensor")
                    shape = _parse_shape(w, x2, y2)
        elif number in (4, 9):      # Sequence / Optional: elem_type = 1 (a TypeProto)
            for n2, w2, x2, y2 in w.fields(x, y):
                if n2 == 1:
                    w.expect(n2, w2, LEN, "TypeProto.Sequence")
                    _, elem, shape = _parse_type(w, x2, y2, depth + 1)
    return kind, elem, shape


def _parse_value_info(w: WireReader, a: int, b: int, depth: int) -> OnnxValueInfo:
    name, kind, elem, shape = "", "unknown", 0, None
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            w.expect(number, wire, LEN, "ValueInfoProto")
            name = w.string(x, y)
        elif number == 2:
            w.expect(number, wire, LEN, "ValueInfoProto")
            kind, elem, shape = _parse_type(w, x, y, depth + 1)
    return OnnxValueInfo(name=name, kind=kind, elem_type=elem,
                         dtype=ONNX_DTYPE_NAMES.get(elem, f"type{elem}"), shape=shape)


def _parse_tensor(w: WireReader, a: int, b: int) -> OnnxInitializer:
    name, data_type, location, raw, small_raw = "", 0, 0, 0, b""
    dims: list[int] = []
    int32_data: list[int] = []
    external: list[tuple[str, str]] = []
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            dims.extend(repeated_varints(w, wire, x, y, "TensorProto.dims"))
        elif number == 5 and _small(wire, x, y) and len(int32_data) <= SMALL_PAYLOAD_BYTES:
            int32_data.extend(repeated_varints(w, wire, x, y, "TensorProto.int32_data"))
        elif number == 2:
            data_type = int_field(w, number, wire, x, "TensorProto")
        elif number == 8:
            w.expect(number, wire, LEN, "TensorProto")
            name = w.string(x, y)
        elif number == 9:
            w.expect(number, wire, LEN, "TensorProto")
            raw = y - x
            small_raw = bytes(w.data[x:y]) if raw <= SMALL_PAYLOAD_BYTES else b""
        elif number == 13:
            w.expect(number, wire, LEN, "TensorProto")
            external.append(_string_entry(w, x, y))
        elif number == 14:
            location = int_field(w, number, wire, x, "TensorProto")
    return OnnxInitializer(
        name=name, data_type=data_type, dtype=ONNX_DTYPE_NAMES.get(data_type, f"type{data_type}"),
        dims=tuple(dims), data_location="external" if location == 1 else "default",
        external_data=tuple(external), raw_data_bytes=raw, small_raw=small_raw,
        int32_data=tuple(int32_data) if len(int32_data) <= SMALL_PAYLOAD_BYTES else (),
    )


def _small(wire: int, a: int, b: int) -> bool:
    """A repeated-int field worth keeping: one varint, or a packed run of at most SMALL_PAYLOAD_BYTES."""
    return wire != LEN or b - a <= SMALL_PAYLOAD_BYTES


def _parse_attribute_graphs(w: WireReader, a: int, b: int, depth: int) -> list[OnnxGraph]:
    """Subgraphs held by an AttributeProto (field g = 6, graphs = 11)."""
    graphs = []
    for number, wire, x, y in w.fields(a, b):
        if number in (6, 11):
            w.expect(number, wire, LEN, "AttributeProto")
            graphs.append(_parse_graph(w, x, y, depth + 1))
    return graphs


def _parse_node(w: WireReader, a: int, b: int, depth: int) -> OnnxNode:
    name, op_type, domain = "", "", ""
    inputs: list[str] = []
    outputs: list[str] = []
    subgraphs: list[OnnxGraph] = []
    for number, wire, x, y in w.fields(a, b):
        if number in (1, 2, 3, 4, 7):
            w.expect(number, wire, LEN, "NodeProto")
            text = w.string(x, y)
            if number == 1:
                inputs.append(text)
            elif number == 2:
                outputs.append(text)
            elif number == 3:
                name = text
            elif number == 4:
                op_type = text
            else:
                domain = text
        elif number == 5:
            w.expect(number, wire, LEN, "NodeProto")
            subgraphs.extend(_parse_attribute_graphs(w, x, y, depth + 1))
    if not op_type:
        raise w.fail(f"node '{name}' has no op_type")
    return OnnxNode(name=name, op_type=op_type, domain=domain, inputs=tuple(inputs),
                    outputs=tuple(outputs), subgraphs=tuple(subgraphs))


def _parse_graph(w: WireReader, a: int, b: int, depth: int) -> OnnxGraph:
    if depth > _MAX_DEPTH:
        raise w.fail("graph nesting deeper than 64 levels")
    name = ""
    nodes: list[OnnxNode] = []
    inits: list[OnnxInitializer] = []
    inputs: list[OnnxValueInfo] = []
    outputs: list[OnnxValueInfo] = []
    value_info: list[OnnxValueInfo] = []
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            w.expect(number, wire, LEN, "GraphProto")
            nodes.append(_parse_node(w, x, y, depth))
        elif number == 2:
            w.expect(number, wire, LEN, "GraphProto")
            name = w.text(x, y)
        elif number == 5:
            w.expect(number, wire, LEN, "GraphProto")
            inits.append(_parse_tensor(w, x, y))
        elif number in (11, 12, 13):
            w.expect(number, wire, LEN, "GraphProto")
            info = _parse_value_info(w, x, y, depth)
            (inputs if number == 11 else outputs if number == 12 else value_info).append(info)
    return OnnxGraph(name=name, nodes=tuple(nodes), initializers=tuple(inits),
                     inputs=tuple(inputs), outputs=tuple(outputs), value_info=tuple(value_info))


def parse_onnx(data: bytes | bytearray | memoryview, *, what: str = "ONNX model") -> OnnxModel:
    """Parse a serialized ONNX ModelProto.

    Args:
        data: the whole file content.
        what: how to name the file in error messages.

    Raises:
        ModelLoadError: empty, truncated or corrupt data, a field of the wrong
            wire type, nesting deeper than 64 levels, or a ModelProto without a
            graph or without an opset import (both required by the ONNX spec).
    """
    try:
        w = WireReader(data, what)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{what}: cannot read the data as bytes ({exc})") from exc
    if w.size == 0:
        raise ModelLoadError(f"{what} is empty; the file is truncated or was never written, re-export it")
    try:
        fields = _read_model_fields(w)
    except RecursionError as exc:
        raise w.fail("nesting too deep to read") from exc
    except (IndexError, struct.error, ValueError, OverflowError) as exc:  # defensive: never leak these
        raise w.fail(f"unreadable field ({type(exc).__name__}: {exc})") from exc
    if fields["graph"] is None:
        raise ModelLoadError(f"{what} holds no graph: it is not an ONNX model or it is truncated; re-export it")
    if not fields["opset_import"]:
        raise ModelLoadError(
            f"{what} declares no opset_import (required by the ONNX spec): the file is truncated or not an ONNX model"
        )
    return OnnxModel(**fields, size_bytes=w.size)


def _read_model_fields(w: WireReader) -> dict[str, Any]:
    """:class:`OnnxModel`'s fields from the ModelProto in *w* (``graph`` None when the model has none).

    Raises:
        ModelLoadError: a field of the wrong wire type or corrupt data.
    """
    fields: dict[str, Any] = {"ir_version": 0, "model_version": 0, "producer_name": "", "producer_version": "",
                              "domain": "", "doc_string": "", "graph": None}
    opsets: list[tuple[str, int]] = []
    metadata: dict[str, str] = {}
    functions: list[str] = []
    for number, wire, x, y in w.fields(0, w.size):
        if number in _MODEL_INT_FIELDS:
            fields[_MODEL_INT_FIELDS[number]] = int_field(w, number, wire, x, "ModelProto")
            continue
        if number not in _MODEL_LEN_FIELDS:
            continue
        w.expect(number, wire, LEN, "ModelProto")
        if number in _MODEL_TEXT_FIELDS:
            fields[_MODEL_TEXT_FIELDS[number]] = w.text(x, y)
        elif number == 7:
            fields["graph"] = _parse_graph(w, x, y, 0)
        elif number == 8:
            opsets.append(_parse_opset(w, x, y))
        elif number == 14:
            key, value = _string_entry(w, x, y)
            metadata[key] = value
        else:
            functions.extend(w.string(x2, y2) for n2, w2, x2, y2 in w.fields(x, y) if n2 == 1 and w2 == LEN)
    fields.update(opset_import=tuple(opsets), metadata_props=metadata, function_names=tuple(functions))
    return fields


def _parse_opset(w: WireReader, a: int, b: int) -> tuple[str, int]:
    """An OperatorSetIdProto: ``(domain, version)``.

    Raises:
        ModelLoadError: a field of the wrong wire type or corrupt data.
    """
    domain, version = "", 0
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            w.expect(number, wire, LEN, "OperatorSetIdProto")
            domain = w.string(x, y)
        elif number == 2:
            version = int_field(w, number, wire, x, "OperatorSetIdProto")
    return domain, version


def read_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """Read and parse an ``.onnx`` file (external tensor data is not opened).

    Raises:
        ModelLoadError: unreadable, truncated or corrupt file.
    """
    data = read_model_bytes(path)
    return parse_onnx(data, what=f"ONNX model {os.fspath(path)}")

