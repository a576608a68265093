"""Checks on a parsed TFLite model for what TFLite kernels trust without checking.

A model that breaks one of these crashes or aborts the interpreter's process
(segmentation fault, failed assertion) instead of raising, so
:func:`edgecv.formats.tflite.parse_tflite` refuses it first with
:class:`~edgecv.errors.ModelLoadError`: tensor shapes, sizes and quantization,
quantized ops' scales, stride/filter sizes, data flow (constants, writers,
computed outputs) and control flow (subgraph references, arity, recursion).
"""

from __future__ import annotations

from .flatbuffer import FlatbufferReader
from .tflite_buffers import buffer_size
from .tflite_types import TfliteSubgraph, TfliteTensor

__all__ = ["MAX_TENSOR_BYTES", "MIN_QUANT_SCALE", "MAX_QUANT_SCALE", "check_tensor", "check_quantized_ops",
           "check_op_options", "check_dataflow", "check_control_flow"]

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


def check_tensor(fb: FlatbufferReader, tensor: TfliteTensor, buffers: list[int], *, sparse: bool) -> None:
    """Shape, size and quantization sanity of one tensor (what an interpreter trusts without checking).

    Raises:
        ModelLoadError: the model breaks the check (message names the tensor or op).
    """
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
        held = buffer_size(fb, buffers[tensor.buffer])
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


def check_quantized_ops(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph]) -> None:
    """Quantization parameters that TFLite kernels assert on (abort the process) instead of reporting.

    Quantized ADD/SUB need positive scales and ``2 * max(input scales) < 2**shift * output scale``
    (shift 20 for 8-bit, 15 for 16-bit outputs); ops that rescale into a quantized output need its
    scale above zero, and a requantizing QUANTIZE (integer in, integer out) a positive input scale.
    A model breaking these kills the interpreter's process (abort or segmentation fault) while it
    is prepared.

    Raises:
        ModelLoadError: the model breaks the check (message names the tensor or op).
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


def check_op_options(fb: FlatbufferReader, op: int, opcode: str, graph: int) -> None:
    """Strides, dilations, filter and block sizes between 1 and 65536 (0 crashes TFLite kernels).

    Raises:
        ModelLoadError: the model breaks the check (message names the tensor or op).
    """
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


def check_dataflow(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph], buffers: list[int]) -> None:
    """Inputs and op outputs are not constants, each tensor has one writer, every output is computed,
    and ops get the inputs their kernels read.

    A subgraph input with constant data lives in the read-only model file: writing the input (edgecv,
    or a control-flow op copying into its subgraph) crashes. Control-flow ops copy their subgraphs'
    outputs; one that nothing writes has no memory behind it and tflite-runtime 2.14 crashes copying it.

    Raises:
        ModelLoadError: the model breaks the check (message names the tensor or op).
    """
    for g, sg in enumerate(subgraphs):
        for t in sg.inputs:
            tensor = sg.tensors[t]
            if tensor.buffer > 0 and buffer_size(fb, buffers[tensor.buffer]) > 0:
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
                if tensor.buffer > 0 and buffer_size(fb, buffers[tensor.buffer]) > 0:
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
            constant = tensor.buffer > 0 and buffer_size(fb, buffers[tensor.buffer]) > 0
            if t not in written and not constant and not tensor.is_variable:
                raise fb._fail(f"output {tensor.name!r} of subgraph {g} is never computed: no op writes it")




def check_control_flow(fb: FlatbufferReader, subgraphs: list[TfliteSubgraph]) -> None:
    """Every subgraph reference in range, no recursion, and IF/WHILE arity matching their subgraphs.

    Raises:
        ModelLoadError: the model breaks the check (message names the tensor or op).
    """
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
