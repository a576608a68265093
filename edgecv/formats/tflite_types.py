"""The parts of a TFLite model that edgecv reads, as frozen dataclasses (see :mod:`edgecv.formats.tflite`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["TENSOR_TYPE_NAMES", "TfliteQuantization", "TfliteTensor", "TfliteOperator", "TfliteSubgraph",
           "TfliteModel"]

TENSOR_TYPE_NAMES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
    6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64",
    11: "complex128", 12: "uint64", 13: "resource", 14: "variant", 15: "uint32",
    16: "uint16", 17: "int4", 18: "bfloat16", 19: "int2", 20: "uint4",
}


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
    #: the scalar custom options of a checked custom op (TFLite_Detection_PostProcess), else None
    custom_options: Mapping[str, int | float | bool | None] | None = field(default=None, compare=False)


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

