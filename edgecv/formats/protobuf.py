"""Bounds-checked reader for the protobuf wire format (what ONNX files are written in).

Every length, varint and field header is checked against the buffer, so a
truncated or corrupt file raises :class:`~edgecv.errors.ModelLoadError`
instead of ``IndexError`` or ``struct.error``. No ``protobuf`` package needed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ModelLoadError

__all__ = ["VARINT", "FIXED64", "LEN", "FIXED32", "WireReader", "signed64", "int_field", "repeated_varints"]

# Wire types of the protobuf encoding.
VARINT, FIXED64, LEN, GROUP_START, GROUP_END, FIXED32 = 0, 1, 2, 3, 4, 5


class WireReader:
    """Protobuf wire-format access with a bounds check on every read.

    Errors name *what* (e.g. "ONNX model x.onnx") and say how to fix the file.
    """

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        self.size = len(self.data)
        self.what = what

    def fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(
            f"corrupt {self.what}: {why}; the file is truncated, damaged or not an ONNX model, re-export or re-copy it"
        )

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """``(value, next position)`` of the varint at *pos*, which must end before *end*."""
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise self.fail(f"varint runs past the end of its field at byte {pos}")
            byte = self.data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.fail(f"varint longer than 10 bytes at byte {pos}")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(field_number, wire_type, a, b)`` for each field in ``[start, end)``.

        For varints ``a`` is the value; for fixed32/64 ``a`` is the offset; for
        length-delimited fields ``(a, b)`` is the byte range of the payload.
        """
        pos = start
        while pos < end:
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise self.fail(f"field number 0 at byte {pos}")
            if wire == VARINT:
                value, pos = self.varint(pos, end)
                yield number, wire, value, 0
            elif wire == FIXED64:
                if pos + 8 > end:
                    raise self.fail(f"fixed64 field {number} runs past the end at byte {pos}")
                yield number, wire, pos, 0
                pos += 8
            elif wire == FIXED32:
                if pos + 4 > end:
                    raise self.fail(f"fixed32 field {number} runs past the end at byte {pos}")
                yield number, wire, pos, 0
                pos += 4
            elif wire == LEN:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise self.fail(f"field {number} claims {length} bytes but only {end - pos} remain at byte {pos}")
                yield number, wire, pos, pos + length
                pos += length
            else:
                raise self.fail(f"unsupported wire type {wire} for field {number} at byte {pos}")

    def string(self, a: int, b: int) -> str:
        """A name-like string field; not UTF-8 is corruption (ONNX Runtime would hand Python undecodable names)."""
        try:
            return bytes(self.data[a:b]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string at byte {a} is not valid UTF-8") from exc

    def text(self, a: int, b: int) -> str:
        """A descriptive string (doc, producer): undecodable bytes are replaced, not refused."""
        return bytes(self.data[a:b]).decode("utf-8", errors="replace")

    def expect(self, number: int, wire: int, wanted: int, message: str) -> None:
        """Refuse field *number* of *message* unless its wire type is *wanted*."""
        if wire != wanted:
            raise self.fail(f"{message} field {number} has wire type {wire}, expected {wanted}")


def signed64(value: int) -> int:
    """A varint read as a two's-complement int64 (how protobuf stores negative int32/int64)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def int_field(w: WireReader, number: int, wire: int, a: int, message: str) -> int:
    """An int32/int64 field's value.

    Raises:
        ModelLoadError: the field is not a varint.
    """
    w.expect(number, wire, VARINT, message)
    return signed64(a)


def repeated_varints(w: WireReader, wire: int, a: int, b: int, message: str) -> list[int]:
    """A repeated int field: one varint (unpacked) or a packed run of varints.

    Raises:
        ModelLoadError: another wire type, or a varint running past the field.
    """
    if wire == VARINT:
        return [signed64(a)]
    if wire != LEN:
        raise w.fail(f"{message} repeated int field has wire type {wire}")
    out = []
    pos = a
    while pos < b:
        value, pos = w.varint(pos, b)
        out.append(signed64(value))
    return out

