"""Bounds-checked reader for ONNX model files (protobuf wire format, no onnx package).

Reads what edgecv needs without the ``onnx`` or ``protobuf`` packages: the
model header (IR version, opset imports, producer, ``metadata_props``) and the
graph (nodes with op type and domain, initializers with type, dims and where
their data lives, graph inputs and outputs with element type and dims,
including ``dim_param`` names of dynamic dimensions). Subgraphs held in node
attributes (``If``, ``Loop``, ``Scan``) are read too.

Tensor payloads are skipped, never copied: a 100 MB model costs a walk over
its field headers. Every length, varint and nesting level is checked against
the buffer, so a truncated or corrupt file raises :class:`ModelLoadError`
instead of ``IndexError`` or ``struct.error``.

Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
OperatorSetIdProto, StringStringEntryProto).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from ..errors import ModelLoadError
from . import read_model_bytes

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

#: TensorProto.DataType values → numpy-style names.
ONNX_DTYPE_NAMES: dict[int, str] = {
    0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
    6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
    12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
    27: "float6e2m3", 28: "float6e3m2",
}

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LEN, _GROUP_START, _GROUP_END, _FIXED32 = 0, 1, 2, 3, 4, 5

# Deeper nesting than this is not a real model (graph → node → attribute → graph ...).
_MAX_DEPTH = 64

#: One dimension: an int (``dim_value``), a str (``dim_param``) or None (unknown).
Dim = Union[int, str, None]


@dataclass(frozen=True)
class OnnxValueInfo:
    """A graph input, output or value_info entry.

    ``shape`` is None when the type carries no shape at all (rank unknown);
    otherwise one entry per dimension: int, dim_param name, or None.
    """

    name: str
    kind: str                 # "tensor", "sparse_tensor", "sequence", "map", "optional", "opaque", "unknown"
    elem_type: int
    dtype: str
    shape: tuple[Dim, ...] | None

    @property
    def is_dynamic(self) -> bool:
        """True when the rank or any dimension is not a fixed non-negative integer."""
        if self.shape is None:
            return True
        return any(not isinstance(d, int) or d < 0 for d in self.shape)


@dataclass(frozen=True)
class ExternalDataRef:
    """Where an initializer's bytes live outside the model file."""

    tensor: str
    location: str
    offset: int | None
    length: int | None
    checksum: str | None


@dataclass(frozen=True)
class OnnxInitializer:
    """A constant tensor (TensorProto) of the graph; its payload is not read."""

    name: str
    data_type: int
    dtype: str
    dims: tuple[int, ...]
    data_location: str        # "default" or "external"
    external_data: tuple[tuple[str, str], ...]
    raw_data_bytes: int       # size of raw_data when the payload is stored that way

    def external_ref(self) -> ExternalDataRef | None:
        """The external-data entry of this tensor, or None when stored inline."""
        if self.data_location != "external" and not self.external_data:
            return None
        entries = dict(self.external_data)
        return ExternalDataRef(
            tensor=self.name,
            location=entries.get("location", ""),
            offset=_int_or_none(entries.get("offset")),
            length=_int_or_none(entries.get("length")),
            checksum=entries.get("checksum"),
        )


@dataclass(frozen=True)
class OnnxNode:
    name: str
    op_type: str
    domain: str               # "" is the default ONNX domain
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    subgraphs: tuple[OnnxGraph, ...] = ()


@dataclass(frozen=True)
class OnnxGraph:
    name: str
    nodes: tuple[OnnxNode, ...]
    initializers: tuple[OnnxInitializer, ...]
    inputs: tuple[OnnxValueInfo, ...]
    outputs: tuple[OnnxValueInfo, ...]
    value_info: tuple[OnnxValueInfo, ...] = ()

    @property
    def runtime_inputs(self) -> tuple[OnnxValueInfo, ...]:
        """Inputs a caller must feed: graph inputs that are not initializers (IR < 4 lists both)."""
        constant = {t.name for t in self.initializers}
        return tuple(v for v in self.inputs if v.name not in constant)

    def walk_nodes(self) -> Iterator[OnnxNode]:
        """Every node of this graph and of the subgraphs inside it, depth first."""
        for node in self.nodes:
            yield node
            for sub in node.subgraphs:
                yield from sub.walk_nodes()

    def walk_initializers(self) -> Iterator[OnnxInitializer]:
        yield from self.initializers
        for node in self.nodes:
            for sub in node.subgraphs:
                yield from sub.walk_initializers()


@dataclass(frozen=True)
class OnnxModel:
    """The parts of an ONNX ModelProto that edgecv reads."""

    ir_version: int
    opset_import: tuple[tuple[str, int], ...]     # (domain, version); "" is ai.onnx
    producer_name: str
    producer_version: str
    domain: str
    model_version: int
    doc_string: str
    graph: OnnxGraph
    metadata_props: dict = field(default_factory=dict)
    function_names: tuple[str, ...] = ()
    size_bytes: int = 0

    @property
    def opset(self) -> int | None:
        """Version of the default ONNX operator set (domain "" or "ai.onnx"), or None."""
        for domain, version in self.opset_import:
            if domain in ("", "ai.onnx"):
                return version
        return None

    def op_types(self) -> list[str]:
        """Op types of every node, subgraphs included, in graph order."""
        return [n.op_type for n in self.graph.walk_nodes()]

    def external_data(self) -> tuple[ExternalDataRef, ...]:
        """Every initializer whose data lives in another file, with its location as written."""
        refs = (t.external_ref() for t in self.graph.walk_initializers())
        return tuple(r for r in refs if r is not None)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


class _Wire:
    """Protobuf wire-format access with a bounds check on every read."""

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        self.size = len(self.data)
        self.what = what

    def fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(
            f"corrupt {self.what}: {why}; the file is truncated, damaged or not an ONNX model, re-export or re-copy it"
        )

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise self.fail(f"varint runs past the end of its field at byte {pos}")
            byte = self.data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.fail(f"varint longer than 10 bytes at byte {pos}")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(field_number, wire_type, a, b)`` for each field in ``[start, end)``.

        For varints ``a`` is the value; for fixed32/64 ``a`` is the offset; for
        length-delimited fields ``(a, b)`` is the byte range of the payload.
        """
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise self.fail(f"field number 0 at byte {pos}")
            if wire == _VARINT:
                value, pos = self.varint(pos, end)
                yield number, wire, value, 0
            elif wire == _FIXED64:
                if pos + 8 > end:
                    raise self.fail(f"fixed64 field {number} runs past the end at byte {pos}")
                yield number, wire, pos, 0
                pos += 8
            elif wire == _FIXED32:
                if pos + 4 > end:
                    raise self.fail(f"fixed32 field {number} runs past the end at byte {pos}")
                yield number, wire, pos, 0
                pos += 4
            elif wire == _LEN:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise self.fail(f"field {number} claims {length} bytes but only {end - pos} remain at byte {pos}")
                yield number, wire, pos, pos + length
                pos += length
            else:
                raise self.fail(f"unsupported wire type {wire} for field {number} at byte {pos}")

    def string(self, a: int, b: int) -> str:
        """A name-like string field; not UTF-8 is corruption (ONNX Runtime would hand Python undecodable names)."""
        try:
            return bytes(self.data[a:b]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string at byte {a} is not valid UTF-8") from exc

    def text(self, a: int, b: int) -> str:
        """A descriptive string (doc, producer): undecodable bytes are replaced, not refused."""
        return bytes(self.data[a:b]).decode("utf-8", errors="replace")

    def expect(self, number: int, wire: int, wanted: int, message: str) -> None:
        if wire != wanted:
            raise self.fail(f"{message} field {number} has wire type {wire}, expected {wanted}")


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _int_field(w: _Wire, number: int, wire: int, a: int, message: str) -> int:
    w.expect(number, wire, _VARINT, message)
    return _signed64(a)


def _repeated_varints(w: _Wire, wire: int, a: int, b: int, message: str) -> list[int]:
    """A repeated int field: one varint (unpacked) or a packed run of varints."""
    if wire == _VARINT:
        return [_signed64(a)]
    if wire != _LEN:
        raise w.fail(f"{message} repeated int field has wire type {wire}")
    out = []
    pos = a
    while pos < b:
        value, pos = w.varint(pos, b)
        out.append(_signed64(value))
    return out


def _string_entry(w: _Wire, a: int, b: int) -> tuple[str, str]:
    key = value = ""
    for number, wire, x, y in w.fields(a, b):
        if number in (1, 2):
            w.expect(number, wire, _LEN, "StringStringEntryProto")
            if number == 1:
                key = w.string(x, y)
            else:
                value = w.string(x, y)
    return key, value


def _parse_shape(w: _Wire, a: int, b: int) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for number, wire, x, y in w.fields(a, b):
        if number != 1:
            continue
        w.expect(number, wire, _LEN, "TensorShapeProto")
        dim: Dim = None
        for n2, w2, x2, y2 in w.fields(x, y):
            if n2 == 1:
                dim = _int_field(w, n2, w2, x2, "Dimension")
            elif n2 == 2:
                w.expect(n2, w2, _LEN, "Dimension")
                dim = w.string(x2, y2)
        dims.append(dim)
    return tuple(dims)


def _parse_type(w: _Wire, a: int, b: int, depth: int) -> tuple[str, int, tuple[Dim, ...] | None]:
    """TypeProto → (kind, elem_type, shape)."""
    if depth > _MAX_DEPTH:
        raise w.fail("type nesting deeper than 64 levels")
    kinds = {1: "tensor", 4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}
    kind, elem, shape = "unknown", 0, None
    for number, wire, x, y in w.fields(a, b):
        if number not in kinds:
            continue
        w.expect(number, wire, _LEN, "TypeProto")
        kind = kinds[number]
        if number in (1, 8):        # Tensor / SparseTensor: elem_type = 1, shape = 2
            for n2, w2, x2, y2 in w.fields(x, y):
                if n2 == 1:
                    elem = _int_field(w, n2, w2, x2, "TypeProto.Tensor")
                elif n2 == 2:
                    w.expect(n2, w2, _LEN, "TypeProto.Tensor")
                    shape = _parse_shape(w, x2, y2)
        elif number in (4, 9):      # Sequence / Optional: elem_type = 1 (a TypeProto)
            for n2, w2, x2, y2 in w.fields(x, y):
                if n2 == 1:
                    w.expect(n2, w2, _LEN, "TypeProto.Sequence")
                    _, elem, shape = _parse_type(w, x2, y2, depth + 1)
    return kind, elem, shape


def _parse_value_info(w: _Wire, a: int, b: int, depth: int) -> OnnxValueInfo:
    name, kind, elem, shape = "", "unknown", 0, None
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            w.expect(number, wire, _LEN, "ValueInfoProto")
            name = w.string(x, y)
        elif number == 2:
            w.expect(number, wire, _LEN, "ValueInfoProto")
            kind, elem, shape = _parse_type(w, x, y, depth + 1)
    return OnnxValueInfo(name=name, kind=kind, elem_type=elem,
                         dtype=ONNX_DTYPE_NAMES.get(elem, f"type{elem}"), shape=shape)


def _parse_tensor(w: _Wire, a: int, b: int) -> OnnxInitializer:
    name, data_type, location, raw = "", 0, 0, 0
    dims: list[int] = []
    external: list[tuple[str, str]] = []
    for number, wire, x, y in w.fields(a, b):
        if number == 1:
            dims.extend(_repeated_varints(w, wire, x, y, "TensorProto.dims"))
        elif number == 2:
            data_type = _int_field(w, number, wire, x, "TensorProto")
        elif number == 8:
            w.expect(number, wire, _LEN, "TensorProto")
            name = w.string(x, y)
        elif number == 9:
            w.expect(number, wire, _LEN, "TensorProto")
            raw = y - x
        elif number == 13:
            w.expect(number, wire, _LEN, "TensorProto")
            external.append(_string_entry(w, x, y))
        elif number == 14:
            location = _int_field(w, number, wire, x, "TensorProto")
    return OnnxInitializer(
        name=name, data_type=data_type, dtype=ONNX_DTYPE_NAMES.get(data_type, f"type{data_type}"),
        dims=tuple(dims), data_location="external" if location == 1 else "default",
        external_data=tuple(external), raw_data_bytes=raw,
    )


def _parse_attribute_graphs(w: _Wire, a: int, b: int, depth: int) -> list[OnnxGraph]:
    """Subgraphs held by an AttributeProto (field g = 6, graphs = 11)."""
    graphs = []
    for number, wire, x, y in w.fields(a, b):
        if number in (6, 11):
            w.expect(number, wire, _LEN, "AttributeProto")
            graphs.append(_parse_graph(w, x, y, depth + 1))
    return graphs


def _parse_node(w: _Wire, a: int, b: int, depth: int) -> OnnxNode:
    name, op_type, domain = "", "", ""
    inputs: list[str] = []
    outputs: list[str] = []
    subgraphs: list[OnnxGraph] = []
    for number, wire, x, y in w.fields(a, b):
        if number in (1, 2, 3, 4, 7):
            w.expect(number, wire, _LEN, "NodeProto")
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
            w.expect(number, wire, _LEN, "NodeProto")
            subgraphs.extend(_parse_attribute_graphs(w, x, y, depth + 1))
    if not op_type:
        raise w.fail(f"node '{name}' has no op_type")
    return OnnxNode(name=name, op_type=op_type, domain=domain, inputs=tuple(inputs),
                    outputs=tuple(outputs), subgraphs=tuple(subgraphs))


def _parse_graph(w: _Wire, a: int, b: int, depth: int) -> OnnxGraph:
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
            w.expect(number, wire, _LEN, "GraphProto")
            nodes.append(_parse_node(w, x, y, depth))
        elif number == 2:
            w.expect(number, wire, _LEN, "GraphProto")
            name = w.text(x, y)
        elif number == 5:
            w.expect(number, wire, _LEN, "GraphProto")
            inits.append(_parse_tensor(w, x, y))
        elif number in (11, 12, 13):
            w.expect(number, wire, _LEN, "GraphProto")
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
        w = _Wire(data, what)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{what}: cannot read the data as bytes ({exc})") from exc
    if w.size == 0:
        raise ModelLoadError(f"{what} is empty; the file is truncated or was never written, re-export it")
    ir_version = model_version = 0
    producer = producer_version = domain = doc = ""
    graph: OnnxGraph | None = None
    opsets: list[tuple[str, int]] = []
    metadata: dict[str, str] = {}
    functions: list[str] = []
    try:
        for number, wire, x, y in w.fields(0, w.size):
            if number == 1:
                ir_version = _int_field(w, number, wire, x, "ModelProto")
            elif number in (2, 3, 4, 6):
                w.expect(number, wire, _LEN, "ModelProto")
                text = w.text(x, y)
                if number == 2:
                    producer = text
                elif number == 3:
                    producer_version = text
                elif number == 4:
                    domain = text
                else:
                    doc = text
            elif number == 5:
                model_version = _int_field(w, number, wire, x, "ModelProto")
            elif number == 7:
                w.expect(number, wire, _LEN, "ModelProto")
                graph = _parse_graph(w, x, y, 0)
            elif number == 8:
                w.expect(number, wire, _LEN, "ModelProto")
                op_domain, version = "", 0
                for n2, w2, x2, y2 in w.fields(x, y):
                    if n2 == 1:
                        w.expect(n2, w2, _LEN, "OperatorSetIdProto")
                        op_domain = w.string(x2, y2)
                    elif n2 == 2:
                        version = _int_field(w, n2, w2, x2, "OperatorSetIdProto")
                opsets.append((op_domain, version))
            elif number == 14:
                w.expect(number, wire, _LEN, "ModelProto")
                key, value = _string_entry(w, x, y)
                metadata[key] = value
            elif number == 25:
                w.expect(number, wire, _LEN, "ModelProto")
                for n2, w2, x2, y2 in w.fields(x, y):
                    if n2 == 1 and w2 == _LEN:
                        functions.append(w.string(x2, y2))
    except RecursionError as exc:
        raise w.fail("nesting too deep to read") from exc
    except (IndexError, struct.error, ValueError, OverflowError) as exc:  # defensive: never leak these
        raise w.fail(f"unreadable field ({type(exc).__name__}: {exc})") from exc
    if graph is None:
        raise ModelLoadError(f"{what} holds no graph: it is not an ONNX model or it is truncated; re-export it")
    if not opsets:
        raise ModelLoadError(
            f"{what} declares no opset_import (required by the ONNX spec): the file is truncated or not an ONNX model"
        )
    return OnnxModel(
        ir_version=ir_version, opset_import=tuple(opsets), producer_name=producer,
        producer_version=producer_version, domain=domain, model_version=model_version,
        doc_string=doc, graph=graph, metadata_props=metadata, function_names=tuple(functions),
        size_bytes=w.size,
    )


def read_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """Read and parse an ``.onnx`` file (external tensor data is not opened).

    Raises:
        ModelLoadError: unreadable, truncated or corrupt file.
    """
    data = read_model_bytes(path)
    return parse_onnx(data, what=f"ONNX model {os.fspath(path)}")


def check_external_location(location: str, model_dir: str | os.PathLike[str], tensor: str = "?") -> str:
    """Absolute path of one external-data *location*, checked to stay inside *model_dir*.

    Raises:
        ModelLoadError: the location is empty, holds a NUL byte, is absolute,
            escapes the folder (``..`` or a symlink pointing out), or names a missing file.
    """
    folder = os.path.realpath(os.path.abspath(os.fspath(model_dir)))
    if not location:
        raise ModelLoadError(f"initializer '{tensor}' is marked external but names no location; re-export the model")
    if "\0" in location:
        raise ModelLoadError(f"initializer '{tensor}' names external data location {location!r} with a NUL byte; "
                             "the file is corrupt, re-export the model")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise ModelLoadError(
            f"initializer '{tensor}' points at absolute path '{location}'; external data must sit next to the "
            "model file, re-save it with a relative location"
        )
    full = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, full]) != folder:
        raise ModelLoadError(
            f"initializer '{tensor}' points at '{location}', outside the model folder {folder}; refusing to "
            "read it (re-save the model with its data files beside it)"
        )
    if not os.path.isfile(full):
        raise ModelLoadError(
            f"initializer '{tensor}' needs external data file '{location}', missing from {folder}; copy it "
            "next to the model"
        )
    return full


def resolve_external_data(model: OnnxModel, model_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Absolute paths of the external-data files *model* needs, each checked to stay inside its folder.

    Args:
        model: the parsed model.
        model_path: where the ``.onnx`` file is; locations are relative to its folder.

    Raises:
        ModelLoadError: a location is empty, absolute, escapes the model folder
            (``..`` or a symlink pointing out), or names a missing file.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(model_path)))
    paths: list[str] = []
    for ref in model.external_data():
        full = check_external_location(ref.location, folder, ref.tensor)
        if full not in paths:
            paths.append(full)
    return tuple(paths)
