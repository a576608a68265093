"""The parts of an ONNX model that edgecv reads, as frozen dataclasses (see :mod:`edgecv.formats.onnx`)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

__all__ = ["ONNX_DTYPE_NAMES", "SMALL_PAYLOAD_BYTES", "Dim", "OnnxValueInfo", "ExternalDataRef", "OnnxInitializer", "OnnxNode", "OnnxGraph",
           "OnnxModel"]

#: TensorProto.DataType values → numpy-style names.
#: Payloads up to this size are kept by the reader (scales and zero points), larger ones only measured.
SMALL_PAYLOAD_BYTES = 256
_INTEGER_CODES = {"int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i", "uint32": "I",
                  "int64": "q", "uint64": "Q"}

ONNX_DTYPE_NAMES: dict[int, str] = {
    0: "undefined", 1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
    6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
    12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
    27: "float6e2m3", 28: "float6e3m2",
}

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
    small_raw: bytes = b""    # raw_data itself when at most SMALL_PAYLOAD_BYTES (scales, zero points)
    int32_data: tuple[int, ...] = ()   # int32_data when at most SMALL_PAYLOAD_BYTES values

    def integer_values(self) -> tuple[int, ...] | None:
        """The values of a small integer tensor (a zero point), or None when its payload was not kept."""
        if self.int32_data:
            return self.int32_data
        code = _INTEGER_CODES.get(self.dtype)
        if code is None or not self.small_raw or len(self.small_raw) % struct.calcsize(code):
            return None
        return tuple(v for (v,) in struct.iter_unpack("<" + code, self.small_raw))

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

