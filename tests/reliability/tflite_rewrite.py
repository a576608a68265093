"""Decode a TFLite file into the test flatbuffer writer's objects, edit them, and serialize again.

Float32 tensors usually leave their ``type`` field out (it defaults to 0), so a
type cannot be changed by patching bytes in place; rebuilding the flatbuffer
from the schema (:mod:`edgecv.formats.tflite_schema`) can set any field. Used by
the fuzz mutations that retype tensors or reorder/duplicate a subgraph's
outputs. A zip archive appended after the flatbuffer (packed label files) is
appended again after the rebuilt one.
"""

from __future__ import annotations

import io
import struct
import zipfile

from edgecv.formats.flatbuffer import FlatbufferReader
from edgecv.formats.tflite_schema import TABLES, UNIONS

from .flatbuffer import Bytes, String, Table, TableVector, Vector, serialize

__all__ = ["decode", "rebuild", "appended_archive", "retype_tensor", "set_outputs", "graph_io"]

_FMT = {"1": "B", "2": "H", "4": "I", "8": "Q"}


def _table(fb: FlatbufferReader, pos: int, name: str) -> Table:
    fields: dict = {}
    kinds = TABLES.get(name, {})
    for slot, kind in kinds.items():
        where = fb.field_pos(pos, slot)
        if where is None:
            continue
        if kind in _FMT:
            fields[slot] = (_FMT[kind], struct.unpack_from("<" + _FMT[kind], fb.data, where)[0])
        elif kind == "s":
            start, n = fb.vector(pos, slot)
            fields[slot] = String(bytes(fb.data[start:start + n]))
        elif kind.startswith("t:"):
            fields[slot] = _table(fb, fb.indirect(where), kind[2:])
        elif kind.startswith("vt:"):
            fields[slot] = TableVector([_table(fb, t, kind[3:]) for t in fb.table_vector(pos, slot)])
        elif kind == "vs":
            start, n = fb.vector(pos, slot)
            strings = []
            for i in range(n):
                s = fb.indirect(start + 4 * i)
                strings.append(String(bytes(fb.data[s + 4:s + 4 + fb.u32(s)])))
            fields[slot] = TableVector(strings)  # type: ignore[arg-type]  # the writer writes any object listed
        elif kind == "v1":
            start, n = fb.bytes_vector(pos, slot)
            fields[slot] = Bytes(bytes(fb.data[start:start + n]), align=16 if name == "Buffer" else 4)
        elif kind.startswith("v"):
            fields[slot] = Vector(_FMT[kind[1:]], fb.scalar_vector(pos, slot, _FMT[kind[1:]]))
        elif kind.startswith("u:"):
            member = UNIONS.get(kind[2:], {}).get(int(fb.scalar(pos, slot - 1, "B", 0)))
            if member is None:
                fields.pop(slot - 1, None)
            else:
                fields[slot] = _table(fb, fb.indirect(where), member)
    return Table(fields)


def appended_archive(data: bytes) -> bytes:
    """The zip archive appended to a TFLite file (b"" when there is none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            return data[min(i.header_offset for i in infos):] if infos else b""
    except zipfile.BadZipFile:
        return b""


def rebuild(model: Table, original: bytes) -> bytes:
    """*model* serialized, with *original*'s appended archive after it."""
    return serialize(model, b"TFL3") + appended_archive(original)


def decode(data: bytes) -> Table:
    """The Model table of a TFLite file, as writer objects (``serialize(decode(d), b"TFL3")`` rebuilds it)."""
    fb = FlatbufferReader(data, "TFLite model")
    return _table(fb, fb.root(), "Model")


def graph_io(model: Table, graph: int = 0) -> tuple[list[int], list[int]]:
    """``(inputs, outputs)`` tensor indices of subgraph *graph*."""
    sg = model.fields[2].tables[graph]
    return list(sg.fields[1].values), list(sg.fields[2].values)


def retype_tensor(data: bytes, tensor: int, type_code: int, *, graph: int = 0) -> bytes:
    """*data* with tensor *tensor* of subgraph *graph* given TFLite type *type_code*."""
    model = decode(data)
    model.fields[2].tables[graph].fields[0].tables[tensor].fields[1] = ("B", type_code)
    return rebuild(model, data)


def set_outputs(data: bytes, outputs: list[int], *, graph: int = 0) -> bytes:
    """*data* with the output list of subgraph *graph* replaced by *outputs*."""
    model = decode(data)
    model.fields[2].tables[graph].fields[2] = Vector("i", list(outputs))
    return rebuild(model, data)
