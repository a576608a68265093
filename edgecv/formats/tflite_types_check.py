"""Tensor types checked against the ops and graph boundary that use them, before a TFLite runtime sees a model.

TFLite kernels choose their code path from the type of their first input and
write the output buffer the way that path computes, without checking the
output's declared type. A float SOFTMAX whose output is declared UINT8 writes
four bytes per element into a one-byte-per-element buffer and corrupts the
heap; the Python binding segfaults making a numpy view of a STRING or
RESOURCE graph output. :func:`check_tensor_types` refuses such models with
:class:`~edgecv.errors.ModelLoadError`.
"""

from __future__ import annotations

from .flatbuffer import FlatbufferReader
from .tflite_types import TfliteSubgraph

__all__ = ["GRAPH_IO_TYPES", "TYPE_PRESERVING_OPS", "check_tensor_types"]

#: Types a model's own inputs and outputs may have: real numbers and booleans, which edgecv reads as arrays.
GRAPH_IO_TYPES = frozenset({"float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                            "int64", "uint64", "bool"})

#: Ops whose float kernel (chosen when the first input is float32) writes float32 into every output.
TYPE_PRESERVING_OPS = frozenset({
    "ADD", "SUB", "MUL", "DIV", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV",
    "AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D", "SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH", "ELU", "GELU", "EXP", "LOG", "SQRT",
    "RSQRT", "SQUARE", "ABS", "NEG", "FLOOR", "CEIL", "ROUND", "SIN", "COS", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
    "CONCATENATION", "PAD", "PADV2", "MIRROR_PAD", "TRANSPOSE", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN",
    "REDUCE_PROD", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "STRIDED_SLICE", "SLICE", "SPLIT_V",
    "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "MAXIMUM", "MINIMUM",
    "L2_NORMALIZATION", "LOCAL_RESPONSE_NORMALIZATION", "SQUARED_DIFFERENCE", "POW", "TILE", "BROADCAST_TO",
    "PACK", "UNPACK", "BATCH_MATMUL",
})

#: Custom ops with fixed output types: op -> type of every output.
_CUSTOM_OUTPUT_TYPES = {"TFLite_Detection_PostProcess": "float32"}


def check_tensor_types(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph]) -> None:
    """The main graph's inputs/outputs have array types; float ops and known custom ops write the declared type.

    Raises:
        ModelLoadError: a graph input or output typed STRING, RESOURCE, VARIANT, COMPLEX64 or another type
            edgecv cannot read; a float op (first input float32) or TFLite_Detection_PostProcess whose
            output is declared another type than it writes.
    """
    main = subgraphs[0]
    for kind, indices in (("input", main.inputs), ("output", main.outputs)):
        for t in indices:
            tensor = main.tensors[t]
            if tensor.dtype not in GRAPH_IO_TYPES:
                raise fb._fail(f"model {kind} {tensor.name!r} has type {tensor.dtype}; edgecv reads inputs and "
                               f"outputs of real-number or boolean types ({', '.join(sorted(GRAPH_IO_TYPES))})")
    for g, sg in enumerate(subgraphs):
        for op in sg.operators:
            if op.custom:
                wanted = _CUSTOM_OUTPUT_TYPES.get(op.opcode)
            elif op.opcode in TYPE_PRESERVING_OPS and op.inputs and op.inputs[0] >= 0 \
                    and sg.tensors[op.inputs[0]].dtype == "float32":
                wanted = "float32"
            else:
                continue
            if wanted is None:
                continue
            for t in op.outputs:
                if t >= 0 and sg.tensors[t].dtype != wanted:
                    raise fb._fail(f"{op.opcode} in subgraph {g} computes {wanted} but its output "
                                   f"{sg.tensors[t].name!r} is declared {sg.tensors[t].dtype}; running it would "
                                   "write past the tensor's memory")
