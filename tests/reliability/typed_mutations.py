"""Mutations that keep a model well-formed but wrong: retyped tensors, reordered or duplicated outputs,
NaN/inf in custom options, a few bytes cut off the end.

These are the files a structural verifier passes and a native runtime still
trusts (issue 21: a float output retyped UINT8 corrupted the heap, STRING
segfaulted, reversed SSD outputs raised ValueError). TFLite files are rebuilt
through :mod:`.tflite_rewrite`; ONNX files are edited field by field.
"""

from __future__ import annotations

import struct

import numpy as np

from .flatbuffer import Vector
from .mutations import _pb_varint
from .tflite_rewrite import decode, graph_io, rebuild

__all__ = ["TYPED_KINDS", "applicable", "typed_mutation"]

TYPED_KINDS = ("truncate_few", "retype_input", "retype_output", "reorder_outputs", "duplicate_output",
               "options_nonfinite")

# TFLite: STRING, RESOURCE, VARIANT, COMPLEX64, UINT8, INT8, INT64, BOOL, FLOAT16, INT32, FLOAT32, FLOAT64, INT16
_TFLITE_TYPES = (5, 13, 14, 8, 3, 9, 4, 6, 1, 2, 0, 10, 7)
# ONNX: FLOAT, UINT8, INT8, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE, COMPLEX64, BFLOAT16, UINT64
_ONNX_TYPES = (1, 2, 3, 6, 7, 8, 9, 10, 11, 14, 16, 13)
_NONFINITE = (float("nan"), float("inf"), float("-inf"))


def applicable(kind: str, data: bytes, fmt: str) -> bool:
    """Whether *kind* changes anything in this source model."""
    if kind == "options_nonfinite":
        return fmt == "tflite" and bool(_option_floats(data))
    if kind == "reorder_outputs":
        return len(_outputs(data, fmt)) >= 2
    return True


def typed_mutation(data: bytes, fmt: str, kind: str, rng: np.random.Generator) -> bytes:
    """Apply one of :data:`TYPED_KINDS` to the model *data* of format *fmt*."""
    if kind == "truncate_few":
        return data[:max(1, len(data) - int(rng.integers(1, 9)))]
    if kind == "options_nonfinite":
        buf = bytearray(data)
        positions = _option_floats(data)
        pos, width = positions[int(rng.integers(len(positions)))]
        struct.pack_into("<f" if width == 4 else "<d", buf, pos, _NONFINITE[int(rng.integers(3))])
        return bytes(buf)
    if fmt == "tflite":
        return _tflite(data, kind, rng)
    return _onnx(data, kind, rng)


# ------------------------------------------------------------------ TFLite
def _tflite(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    model = decode(data)
    inputs, outputs = graph_io(model)
    sg = model.fields[2].tables[0]
    if kind in ("retype_input", "retype_output"):
        tensor = sg.fields[0].tables[_pick(inputs if kind == "retype_input" else outputs, rng)]
        current = tensor.fields.get(1, ("B", 0))[1]
        tensor.fields[1] = ("B", _other(_TFLITE_TYPES, current, rng))
    elif kind == "reorder_outputs":
        sg.fields[2] = Vector("i", _reordered(outputs, rng))
    elif kind == "duplicate_output":
        sg.fields[2] = Vector("i", _duplicated(outputs, rng))
    else:
        raise ValueError(f"unknown mutation kind {kind!r}")
    return rebuild(model, data)


def _option_floats(data: bytes) -> list[tuple[int, int]]:
    """``(position, width)`` of the float-looking words in every TFLite op's custom options."""
    from edgecv.formats.flatbuffer import FlatbufferReader

    fb = FlatbufferReader(data)
    found = []
    for sg in fb.table_vector(fb.root(), 2):
        for op in fb.table_vector(sg, 3):
            vec = fb.bytes_vector(op, 5)
            if vec is None:
                continue
            start, n = vec
            for pos in range(start + (-start) % 4, start + n - 3, 4):
                value = struct.unpack_from("<f", data, pos)[0]
                if np.isfinite(value) and 1e-12 < abs(value) < 1e7:
                    found.append((pos, 4))
    return found


# ------------------------------------------------------------------ ONNX
def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """``(number, wire, field start, payload start, field end)`` of each field in ``data[start:end]``."""
    out = []
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _pb_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _pb_varint(data, pos)
        elif wire == 1:
            after = pos + 8
        elif wire == 5:
            after = pos + 4
        elif wire == 2:
            length, pos = _pb_varint(data, pos)
            after = pos + length
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, wire, field_start, pos, after))
        pos = after
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _graph(data: bytes) -> tuple[int, int, int]:
    """``(field start, payload start, field end)`` of the ModelProto's graph."""
    for number, _, fs, ps, fe in _fields(data, 0, len(data)):
        if number == 7:
            return fs, ps, fe
    raise ValueError("no graph")


def _outputs(data: bytes, fmt: str) -> list:
    if fmt == "tflite":
        return graph_io(decode(data))[1]
    _, a, b = _graph(data)
    return [f for f in _fields(data, a, b) if f[0] == 12]


def _onnx(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    gs, ga, gb = _graph(data)
    fields = _fields(data, ga, gb)
    if kind in ("retype_input", "retype_output"):
        chosen = _pick([f for f in fields if f[0] == (11 if kind == "retype_input" else 12)], rng)
        return _retype_value_info(data, chosen[3], chosen[4], rng)
    pieces = [data[f[2]:f[4]] for f in fields]
    slots = [i for i, f in enumerate(fields) if f[0] == 12]
    if kind == "reorder_outputs":
        order = _reordered(slots, rng)
        new = list(pieces)
        for slot, source in zip(slots, order):
            new[slot] = pieces[source]
    elif kind == "duplicate_output":
        new = pieces[:slots[-1] + 1] + [pieces[_pick(slots, rng)]] + pieces[slots[-1] + 1:]
    else:
        raise ValueError(f"unknown mutation kind {kind!r}")
    graph = b"".join(new)
    return data[:gs] + b"\x3a" + _varint(len(graph)) + graph + data[gb:]


def _retype_value_info(data: bytes, a: int, b: int, rng: np.random.Generator) -> bytes:
    """Set the elem_type of the ValueInfoProto in ``data[a:b]`` (type -> tensor_type -> elem_type)."""
    for number, _, _, ta, tb in _fields(data, a, b):
        if number != 2:
            continue
        for n2, _, _, xa, xb in _fields(data, ta, tb):
            if n2 != 1:
                continue
            for n3, wire, _, ps, fe in _fields(data, xa, xb):
                if n3 == 1 and wire == 0 and fe - ps == 1:
                    buf = bytearray(data)
                    buf[ps] = _other(_ONNX_TYPES, data[ps], rng)
                    return bytes(buf)
    return data


def _pick(values: list, rng: np.random.Generator):
    return values[int(rng.integers(len(values)))]


def _other(choices: tuple[int, ...], current: int, rng: np.random.Generator) -> int:
    options = [c for c in choices if c != current]
    return options[int(rng.integers(len(options)))]


def _reordered(values: list, rng: np.random.Generator) -> list:
    if len(values) < 2:
        return list(values)
    if rng.integers(2):
        return list(values[::-1])
    order = list(values)
    while order == list(values):
        order = [values[i] for i in rng.permutation(len(values))]
    return order


def _duplicated(values: list, rng: np.random.Generator) -> list:
    return list(values) + [_pick(values, rng)]
