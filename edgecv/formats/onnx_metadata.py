"""Writing one ``metadata_props`` entry into a serialized ONNX ModelProto, without the onnx package.

Protobuf messages are sequences of fields, so the ModelProto is copied field by field with the
entries of the same key left out and the new entry appended (field 14,
``StringStringEntryProto {1: key, 2: value}``). Everything else stays byte for byte.
"""

from __future__ import annotations

from .onnx import _string_entry, parse_onnx
from .protobuf import LEN, WireReader

__all__ = ["with_metadata_prop"]

_METADATA_FIELD = 14


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | LEN) + _varint(len(payload)) + payload


def with_metadata_prop(data: bytes, key: str, value: str, *, what: str = "ONNX model") -> bytes:
    """*data* (a whole .onnx file) with ``metadata_props[key] = value``, earlier entries of *key* removed.

    Raises:
        ModelLoadError: *data* is not a readable ONNX model.
    """
    parse_onnx(data, what=what)                 # refuse anything that is not a model before copying it
    w = WireReader(data, what)
    kept = []
    pos = 0
    for number, wire, a, b in w.fields(0, w.size):
        end = b if wire == LEN else (a + 8 if wire == 1 else a + 4 if wire == 5 else None)
        if end is None:                          # a varint: fields() gives its value, find where it ends
            _, end = w.varint(_skip_key(w, pos), w.size)
        if not (number == _METADATA_FIELD and wire == LEN and _string_entry(w, a, b)[0] == key):
            kept.append(bytes(w.data[pos:end]))
        pos = end
    entry = _len_field(1, key.encode("utf-8")) + _len_field(2, value.encode("utf-8"))
    return b"".join(kept) + _len_field(_METADATA_FIELD, entry)


def _skip_key(w: WireReader, pos: int) -> int:
    """The position after the field key at *pos*."""
    return w.varint(pos, w.size)[1]
