"""Writing one ``Model.metadata`` entry into a TFLite flatbuffer, without TensorFlow.

Flatbuffer offsets point forward, so the model is not rebuilt: a new header and a new root
``Model`` table are put in front of the original bytes (which follow unchanged, at a multiple
of 64 bytes so every buffer keeps its alignment). The new table reuses every original field
except two vectors written anew: ``buffers`` (the original Buffer tables plus one holding the
payload) and ``metadata`` (the original entries, without those of the same name, plus the new
one). Models whose buffers live outside the flatbuffer (``Buffer.offset``, the >2 GB format)
hold absolute file offsets that a prefix would break: :func:`with_metadata_entry` returns None
for them, and for a Model table with fields this writer does not know.
"""

from __future__ import annotations

import struct

from .flatbuffer import FlatbufferReader
from .tflite import parse_tflite

__all__ = ["with_metadata_entry"]

_MODEL_FIELDS = 8     # version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata, signature_defs
_VERSION, _BUFFERS, _METADATA = 0, 4, 6
_ALIGN = 64


class _Builder:
    """Bytes laid out front to back, with forward offsets patched once the prefix length is known."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.fixups: list[tuple[int, str, int]] = []    # (slot position, "old" | "new", target)

    def align(self, n: int, extra: int = 0) -> None:
        """Pad so that ``len + extra`` is a multiple of *n*."""
        self.out.extend(b"\0" * (-(len(self.out) + extra) % n))

    def u32(self, value: int = 0) -> int:
        pos = len(self.out)
        self.out.extend(struct.pack("<I", value))
        return pos

    def table(self, present: list[bool]) -> tuple[int, list[int]]:
        """A vtable, then its table of 4-byte slots (zeroed); ``(table position, slot positions)``."""
        self.align(4)
        vtable = len(self.out)
        offsets = [4 + 4 * i if p else 0 for i, p in enumerate(present)]
        self.out.extend(struct.pack(f"<HH{len(present)}H", 4 + 2 * len(present), 4 + 4 * len(present), *offsets))
        self.align(4)
        table = len(self.out)
        self.out.extend(struct.pack("<i", table - vtable))
        return table, [self.u32() for _ in present]

    def vector(self, targets: list[tuple[str, int]]) -> int:
        """A vector of offsets to *targets*; its position."""
        self.align(4)
        start = self.u32(len(targets))
        for kind, target in targets:
            self.fixups.append((self.u32(), kind, target))
        return start

    def blob(self, data: bytes, align: int = 4) -> int:
        """A byte vector (a string gets its NUL after it), its bytes aligned to *align*; its position."""
        self.align(align, extra=4)
        start = self.u32(len(data))
        self.out.extend(data + b"\0")
        return start

    def finish(self, root: int) -> bytes:
        self.align(_ALIGN)
        prefix = len(self.out)
        struct.pack_into("<I", self.out, 0, root)
        for pos, kind, target in self.fixups:
            struct.pack_into("<I", self.out, pos, (prefix + target if kind == "old" else target) - pos)
        return bytes(self.out)


def _old_fields(fb: FlatbufferReader, root: int) -> dict[int, int] | None:
    """Absolute targets of the root's offset fields (and the version value), or None for unknown fields."""
    vtable = root - fb.i32(root)
    count = (fb.u16(vtable) - 4) // 2
    if any(fb.u16(vtable + 4 + 2 * i) for i in range(_MODEL_FIELDS, count)):
        return None
    fields = {}
    for index in range(_MODEL_FIELDS):
        pos = fb.field_pos(root, index)
        if pos is not None and index not in (_BUFFERS, _METADATA):
            fields[index] = fb.u32(pos) if index == _VERSION else fb.indirect(pos)
    return fields


def with_metadata_entry(data: bytes, name: str, payload: bytes, *, what: str = "TFLite model") -> bytes | None:
    """*data* (a whole .tflite file) with metadata entry *name* holding *payload* (earlier ones of *name* dropped).

    Returns None when this model cannot be written this way (buffers outside the flatbuffer,
    unknown Model fields); the caller writes a sidecar instead.

    Raises:
        ModelLoadError: *data* is not a valid TFLite model.
    """
    parse_tflite(data, what=what)                 # verified before anything is copied
    fb = FlatbufferReader(data, what)
    root = fb.root()
    buffers = fb.table_vector(root, _BUFFERS)
    if any(int(fb.scalar(b, 1, "Q", 0)) > 1 for b in buffers):
        return None
    fields = _old_fields(fb, root)
    if fields is None:
        return None
    kept = [m for m in fb.table_vector(root, _METADATA) if (fb.string(m, 0) or "") != name]
    b = _Builder()
    b.u32()
    b.out.extend(b"TFL3")
    present = [i in fields or i in (_BUFFERS, _METADATA) for i in range(_MODEL_FIELDS)]
    model, slots = b.table(present)
    for index, target in fields.items():
        if index == _VERSION:
            struct.pack_into("<I", b.out, slots[index], target)
        else:
            b.fixups.append((slots[index], "old", target))
    buffers_vec = b.vector([("old", t) for t in buffers] + [("new", 0)])
    metadata_vec = b.vector([("old", t) for t in kept] + [("new", 0)])
    b.fixups.extend([(slots[_BUFFERS], "new", buffers_vec), (slots[_METADATA], "new", metadata_vec)])
    new_buffer, (data_slot,) = b.table([True])
    new_entry, (name_slot, index_slot) = b.table([True, True])
    struct.pack_into("<I", b.out, index_slot, len(buffers))
    b.fixups.append((name_slot, "new", b.blob(name.encode("utf-8"))))
    b.fixups.append((data_slot, "new", b.blob(payload, align=16)))
    last_buffer = buffers_vec + 4 + 4 * len(buffers)
    last_entry = metadata_vec + 4 + 4 * len(kept)
    b.fixups = [(pos, kind, new_buffer if pos == last_buffer else new_entry if pos == last_entry else target)
                for pos, kind, target in b.fixups]
    return b.finish(model) + bytes(data)
