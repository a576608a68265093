"""A small forward-laid-out flatbuffer writer, enough to hand-encode TFLite models in tests.

Objects are written root first and children after their parents, so every
offset (``uoffset``, unsigned) points forward as the format requires. Each
table's vtable sits right before it. Scalars, vectors and tables are aligned
the way the flatbuffers verifier checks them; byte vectors can ask for a
larger alignment (TFLite buffers use 16).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

__all__ = ["Table", "Vector", "TableVector", "String", "Bytes", "serialize"]


@dataclass
class Vector:
    """A vector of scalars; ``fmt`` is a struct code ("i", "I", "f", "q", "b", "B")."""

    fmt: str
    values: list


@dataclass
class TableVector:
    tables: list[Table]


@dataclass
class String:
    text: str | bytes   # bytes are written as they are (to build invalid UTF-8 on purpose)


@dataclass
class Bytes:
    data: bytes
    align: int = 16


Ref = Union["Table", Vector, TableVector, String, Bytes]


@dataclass
class Table:
    """Fields by slot index: a ``(fmt, value)`` scalar or a referenced object."""

    fields: dict[int, tuple[str, int | float] | Ref] = field(default_factory=dict)


def _pad_to(out: bytearray, align: int, *, extra: int = 0) -> None:
    """Pad so that ``len(out) + extra`` is a multiple of *align*."""
    while (len(out) + extra) % align:
        out.append(0)


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.pending: list[tuple[int, Ref]] = []

    def ref(self, field_pos: int, obj: Ref) -> None:
        self.pending.append((field_pos, obj))

    def write(self, obj: Ref) -> int:
        if isinstance(obj, Table):
            return self._table(obj)
        if isinstance(obj, Vector):
            size = struct.calcsize(obj.fmt)
            _pad_to(self.out, max(4, size), extra=4)
            pos = len(self.out)
            self.out += struct.pack(f"<I{len(obj.values)}{obj.fmt}", len(obj.values), *obj.values)
            return pos
        if isinstance(obj, Bytes):
            _pad_to(self.out, max(4, obj.align), extra=4)
            pos = len(self.out)
            self.out += struct.pack("<I", len(obj.data)) + obj.data
            return pos
        if isinstance(obj, String):
            _pad_to(self.out, 4)
            raw = obj.text.encode("utf-8") if isinstance(obj.text, str) else obj.text
            pos = len(self.out)
            self.out += struct.pack("<I", len(raw)) + raw + b"\0"
            return pos
        if isinstance(obj, TableVector):
            _pad_to(self.out, 4)
            pos = len(self.out)
            self.out += struct.pack("<I", len(obj.tables))
            for t in obj.tables:
                self.ref(len(self.out), t)
                self.out += b"\0\0\0\0"
            return pos
        raise TypeError(f"cannot serialize {type(obj).__name__}")

    def _table(self, table: Table) -> int:
        items = []
        for slot, value in table.fields.items():
            if isinstance(value, tuple):
                items.append((struct.calcsize(value[0]), slot, value))
            else:
                items.append((4, slot, value))
        items.sort(key=lambda x: (-x[0], x[1]))
        # table body layout: soffset (4 bytes) then fields, each aligned to its size
        offsets: dict[int, int] = {}
        cursor = 4
        for size, slot, _ in items:
            cursor = (cursor + size - 1) // size * size
            offsets[slot] = cursor
            cursor += size
        body_size = cursor
        align = max([4] + [s for s, _, _ in items])
        n_slots = max(table.fields, default=-1) + 1
        vtable = struct.pack(f"<HH{n_slots}H", 4 + 2 * n_slots, body_size,
                             *[offsets.get(i, 0) for i in range(n_slots)])
        _pad_to(self.out, 2)
        # the table must start aligned; the vtable goes immediately before it (with padding between)
        vt_pos = len(self.out)
        self.out += vtable
        _pad_to(self.out, align)
        table_pos = len(self.out)
        body = bytearray(body_size)
        struct.pack_into("<i", body, 0, table_pos - vt_pos)
        for _, slot, value in items:
            if isinstance(value, tuple):
                struct.pack_into("<" + value[0], body, offsets[slot], value[1])
        self.out += body
        for _, slot, value in items:
            if not isinstance(value, tuple):
                self.ref(table_pos + offsets[slot], value)
        return table_pos

    def finish(self) -> None:
        while self.pending:
            field_pos, obj = self.pending.pop(0)
            target = self.write(obj)
            struct.pack_into("<I", self.out, field_pos, target - field_pos)


def serialize(root: Table, identifier: bytes = b"") -> bytes:
    """Serialize *root* with an optional 4-byte file identifier."""
    if identifier and len(identifier) != 4:
        raise ValueError("a flatbuffer file identifier is 4 bytes")
    w = _Writer()
    w.out += b"\0" * 8 if identifier else b"\0" * 4
    if identifier:
        w.out[4:8] = identifier
    root_pos = w.write(root)
    struct.pack_into("<I", w.out, 0, root_pos)
    w.finish()
    _pad_to(w.out, 16)
    return bytes(w.out)
