"""Bounds-checked reader for the flat FlexBuffers maps that TFLite custom ops keep their options in.

Reads a root map of scalars (int, uint, float, bool), which is what
TFLite_Detection_PostProcess and similar ops store; nested values are
reported as None. Every read is checked against the buffer, so damaged
options raise :class:`~edgecv.errors.ModelLoadError` instead of being handed
to the op's parser. Layout per the FlexBuffers specification: the buffer ends
with the root value, its packed type and its byte width; a map's element
vector is preceded by its keys vector offset, the keys' byte width and its
length, and followed by one packed type byte per value.
"""

from __future__ import annotations

import struct

from ..errors import ModelLoadError

__all__ = ["read_flexbuffer_map"]

_INT, _UINT, _FLOAT, _KEY = 1, 2, 3, 4
_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT, _MAP, _BOOL = 6, 7, 8, 9, 26
_MAX_KEYS = 4096


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = bytes(data)
        self.what = what

    def fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(f"corrupt {self.what}: {why}; re-export the model")

    def uint(self, pos: int, width: int) -> int:
        if width not in (1, 2, 4, 8) or pos < 0 or pos + width > len(self.data):
            raise self.fail(f"a {width}-byte value at byte {pos} lies outside its {len(self.data)} bytes")
        return int.from_bytes(self.data[pos:pos + width], "little")

    def int(self, pos: int, width: int) -> int:
        value = self.uint(pos, width)
        return value - (1 << (8 * width)) if value >> (8 * width - 1) else value

    def float(self, pos: int, width: int) -> float:
        if width not in (4, 8):
            raise self.fail(f"a float of {width} bytes")
        self.uint(pos, width)
        return struct.unpack_from("<f" if width == 4 else "<d", self.data, pos)[0]

    def target(self, pos: int, width: int) -> int:
        """The position an offset stored at *pos* points back to."""
        where = pos - self.uint(pos, width)
        if where < 0:
            raise self.fail(f"an offset at byte {pos} points before the start")
        return where

    def key(self, pos: int) -> str:
        end = self.data.find(b"\0", pos)
        if end < 0:
            raise self.fail(f"a key at byte {pos} has no terminating NUL")
        return self.data[pos:end].decode("utf-8", errors="replace")

    def value(self, pos: int, parent_width: int, packed: int) -> int | float | bool | None:
        kind, width = packed >> 2, 1 << (packed & 3)
        if kind == _INT:
            return self.int(pos, parent_width)
        if kind == _UINT:
            return self.uint(pos, parent_width)
        if kind == _FLOAT:
            return self.float(pos, parent_width)
        if kind == _BOOL:
            return bool(self.uint(pos, parent_width))
        if kind in (_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT):
            at = self.target(pos, parent_width)
            return {_INDIRECT_INT: self.int, _INDIRECT_UINT: self.uint, _INDIRECT_FLOAT: self.float}[kind](at, width)
        return None


def read_flexbuffer_map(data: bytes, *, what: str = "custom options") -> dict[str, int | float | bool | None]:
    """The root map of a FlexBuffer as ``{key: scalar}`` (None for values that are not scalars).

    Raises:
        ModelLoadError: the buffer is too short, the root is not a map, or an offset, key or value
            lies outside the buffer.
    """
    r = _Reader(data, what)
    if len(r.data) < 3:
        raise r.fail(f"{len(r.data)} bytes, too short for a FlexBuffer")
    root_width = r.data[-1]
    packed = r.data[-2]
    root_pos = len(r.data) - 2 - root_width
    if packed >> 2 != _MAP:
        raise r.fail(f"the root is of type {packed >> 2}, not a map")
    width = 1 << (packed & 3)
    elems = r.target(root_pos, root_width)
    n = r.uint(elems - width, width)
    if n > _MAX_KEYS:
        raise r.fail(f"a map of {n} entries")
    keys_width = r.uint(elems - 2 * width, width)
    keys = r.target(elems - 3 * width, width)
    if r.uint(keys - keys_width, keys_width) != n:
        raise r.fail("the keys and values of the root map differ in number")
    out: dict[str, int | float | bool | None] = {}
    for i in range(n):
        name = r.key(r.target(keys + i * keys_width, keys_width))
        out[name] = r.value(elems + i * width, width, r.uint(elems + n * width + i, 1))
    return out
