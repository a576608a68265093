"""Bounds-checked access to a flatbuffer (the container format of TFLite models).

Every read checks its offset and length against the buffer, so a truncated or
corrupt file raises :class:`~edgecv.errors.ModelLoadError` instead of
``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from ..errors import ModelLoadError

__all__ = ["FlatbufferReader"]


class FlatbufferReader:
    """Minimal flatbuffer table access with bounds checks on every read."""

    def __init__(self, data: bytes | memoryview, what: str = "model") -> None:
        self.data = memoryview(data)
        self.size = len(self.data)
        self.what = what

    def _fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(f"corrupt {self.what}: {why}; the file is damaged or not this format, re-export or re-copy it")

    def _check(self, pos: int, length: int) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise self._fail(f"offset {pos}+{length} outside the {self.size}-byte buffer")

    def u8(self, pos: int) -> int:
        self._check(pos, 1)
        return self.data[pos]

    def i32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        self._check(pos, 4)
        return struct.unpack_from("<I", self.data, pos)[0]

    def u16(self, pos: int) -> int:
        self._check(pos, 2)
        return struct.unpack_from("<H", self.data, pos)[0]

    def root(self) -> int:
        return self.u32(0)

    def field_pos(self, table: int, index: int) -> int | None:
        """Absolute position of field *index* of the table at *table*, or None if absent."""
        vtable = table - self.i32(table)
        vt_size = self.u16(vtable)
        if vt_size < 4 or vt_size % 2:
            raise self._fail("bad vtable size")
        slot = 4 + 2 * index
        if slot >= vt_size:
            return None
        off = self.u16(vtable + slot)
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self.field_pos(table, index)
        if pos is None:
            return default
        n = struct.calcsize(fmt)
        self._check(pos, n)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def indirect(self, pos: int) -> int:
        target = pos + self.u32(pos)
        self._check(target, 4)
        return target

    def table(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else self.indirect(pos)

    def vector(self, table: int, index: int) -> tuple[int, int] | None:
        """``(start, length)`` of a vector field, or None."""
        pos = self.field_pos(table, index)
        if pos is None:
            return None
        vec = self.indirect(pos)
        length = self.u32(vec)
        return vec + 4, length

    def string(self, table: int, index: int) -> str | None:
        vec = self.vector(table, index)
        if vec is None:
            return None
        start, length = vec
        self._check(start, length)
        return bytes(self.data[start:start + length]).decode("utf-8", errors="replace")

    def table_vector(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index)
        if vec is None:
            return []
        start, length = vec
        self._check(start, 4 * length)
        return [self.indirect(start + 4 * i) for i in range(length)]

    def scalar_vector(self, table: int, index: int, fmt: str) -> list:
        vec = self.vector(table, index)
        if vec is None:
            return []
        start, length = vec
        n = struct.calcsize(fmt)
        self._check(start, n * length)
        return list(struct.unpack_from(f"<{length}{fmt}", self.data, start))

    def bytes_vector(self, table: int, index: int) -> tuple[int, int] | None:
        vec = self.vector(table, index)
        if vec is None:
            return None
        start, length = vec
        self._check(start, length)
        return start, length

