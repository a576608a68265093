"""Full structural verification of a TFLite flatbuffer before any native runtime reads it.

Walks every table, vector, string and union of the TFLite schema (as data in
:mod:`edgecv.formats.tflite_schema`) and checks what the flatbuffers verifier
checks: each offset lands inside the buffer, vtables and tables are in
bounds and aligned, vectors and strings fit (strings end in a NUL), scalars
are aligned to their size, nesting stays below 64 levels and the walk visits
at most a million tables. Older interpreters (tflite-runtime 2.14, what a
Raspberry Pi runs) skip this step and follow corrupt offsets straight into a
segmentation fault; running it here turns those files into
:class:`ModelLoadError`. Union members this schema does not know are skipped,
as the flatbuffers verifier does.
"""

from __future__ import annotations

import struct

from ..errors import ModelLoadError
from .tflite_schema import TABLES, UNIONS

__all__ = ["verify_tflite_flatbuffer", "MAX_DEPTH", "MAX_TABLES"]

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
_MAX_BUFFER_SIZE = (1 << 31) - 1  # flatbuffers' 32-bit offsets
_SCALAR = {"1": 1, "2": 2, "4": 4, "8": 8}


class _Verifier:
    def __init__(self, data: bytes | memoryview, what: str) -> None:
        self.buf = memoryview(data).cast("B")
        self.size = min(len(self.buf), _MAX_BUFFER_SIZE)
        self.what = what
        self.tables = 0

    def fail(self, why: str) -> ModelLoadError:
        return ModelLoadError(f"corrupt {self.what}: {why}; the file is damaged or not a TFLite model, "
                              "re-export or re-copy it")

    def check(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise self.fail(f"{what} at byte {pos} (+{length}) lies outside the {self.size}-byte file")

    def aligned(self, pos: int, align: int, what: str) -> None:
        if pos % align:
            raise self.fail(f"{what} at byte {pos} is not {align}-byte aligned")

    def offset(self, pos: int, what: str) -> int:
        """Follow the uoffset stored at *pos*; return the absolute position it points at."""
        self.aligned(pos, 4, what)
        self.check(pos, 4, what)
        rel = struct.unpack_from("<I", self.buf, pos)[0]
        if rel == 0 or rel >= 1 << 31:
            raise self.fail(f"{what} at byte {pos} has invalid offset {rel}")
        target = pos + rel
        self.check(target, 1, what)
        return target

    def vector(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        """``(first element position, length)`` of the vector at *pos*, checked to fit."""
        self.aligned(pos, 4, what)
        self.check(pos, 4, what)
        n = struct.unpack_from("<I", self.buf, pos)[0]
        if n >= _MAX_BUFFER_SIZE // elem_size:
            raise self.fail(f"{what} at byte {pos} claims {n} elements")
        self.check(pos + 4, n * elem_size, what)
        return pos + 4, n

    def string(self, pos: int, what: str) -> None:
        start, n = self.vector(pos, 1, what)
        self.check(start + n, 1, what + " terminator")
        if self.buf[start + n] != 0:
            raise self.fail(f"{what} at byte {pos} is not NUL-terminated")

    def table(self, pos: int, name: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"tables nested deeper than {MAX_DEPTH} levels")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise self.fail(f"more than {MAX_TABLES} tables")
        self.aligned(pos, 4, name)
        self.check(pos, 4, name)
        vtable = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.aligned(vtable, 2, f"{name} vtable")
        self.check(vtable, 2, f"{name} vtable")
        vsize = struct.unpack_from("<H", self.buf, vtable)[0]
        if vsize & 1:
            raise self.fail(f"{name} vtable at byte {vtable} has odd size {vsize}")
        self.check(vtable, vsize, f"{name} vtable")
        fields = TABLES.get(name, {})
        for slot, kind in fields.items():
            entry = 4 + 2 * slot
            if entry + 2 > vsize:
                continue
            rel = struct.unpack_from("<H", self.buf, vtable + entry)[0]
            if rel == 0:
                continue
            field = pos + rel
            label = f"{name} field {slot}"
            if kind in _SCALAR:
                self.aligned(field, _SCALAR[kind], label)
                self.check(field, _SCALAR[kind], label)
            elif kind == "s":
                self.string(self.offset(field, label), label)
            elif kind.startswith("t:"):
                self.table(self.offset(field, label), kind[2:], depth + 1)
            elif kind.startswith("vt:"):
                start, n = self.vector(self.offset(field, label), 4, label)
                for i in range(n):
                    self.table(self.offset(start + 4 * i, label), kind[3:], depth + 1)
            elif kind == "vs":
                start, n = self.vector(self.offset(field, label), 4, label)
                for i in range(n):
                    self.string(self.offset(start + 4 * i, label), label)
            elif kind.startswith("v"):
                self.vector(self.offset(field, label), _SCALAR[kind[1:]], label)
            elif kind.startswith("u:"):
                member = UNIONS.get(kind[2:], {}).get(self._union_type(pos, vtable, vsize, slot - 1))
                if member is not None:
                    self.table(self.offset(field, label), member, depth + 1)

    def _union_type(self, pos: int, vtable: int, vsize: int, slot: int) -> int:
        entry = 4 + 2 * slot
        if slot < 0 or entry + 2 > vsize:
            return 0
        rel = struct.unpack_from("<H", self.buf, vtable + entry)[0]
        if rel == 0:
            return 0
        self.check(pos + rel, 1, "union type")
        return self.buf[pos + rel]


def verify_tflite_flatbuffer(data: bytes | memoryview, *, what: str = "TFLite model") -> None:
    """Check the whole flatbuffer structure of a TFLite file.

    Args:
        data: the whole file content (must carry the ``TFL3`` identifier at byte 4).
        what: how to name the file in error messages.

    Raises:
        ModelLoadError: any offset, vector, string, vtable or union outside the
            file or misaligned, or nesting / table count beyond the limits.
    """
    v = _Verifier(data, what)
    if v.size < 8:
        raise ModelLoadError(f"{what} is {v.size} bytes, too short to be a TFLite model; the file is empty or truncated")
    try:
        v.table(v.offset(0, "root table"), "Model", 0)
    except RecursionError as exc:  # defensive: MAX_DEPTH keeps the walk far below Python's limit
        raise v.fail("tables nested too deeply") from exc
