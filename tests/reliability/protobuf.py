"""A minimal protobuf wire-format writer, enough to hand-encode ONNX models in tests (no onnx package)."""

from __future__ import annotations

import struct

__all__ = ["varint", "field_varint", "field_bytes", "field_str", "field_msg", "field_float", "packed_varints"]


def varint(value: int) -> bytes:
    """Encode an int as a protobuf varint (negative numbers as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def field_varint(number: int, value: int) -> bytes:
    return _key(number, 0) + varint(value)


def field_bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + varint(len(data)) + data


def field_str(number: int, text: str | bytes) -> bytes:
    """A string field; bytes are written as they are (to build invalid UTF-8 on purpose)."""
    return field_bytes(number, text.encode("utf-8") if isinstance(text, str) else text)


def field_msg(number: int, *parts: bytes) -> bytes:
    return field_bytes(number, b"".join(parts))


def field_float(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", value)


def packed_varints(number: int, values: list[int]) -> bytes:
    return field_bytes(number, b"".join(varint(v) for v in values))
