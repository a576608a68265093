"""Seeded mutations of model files: truncation, byte flips, zero length, random bytes, wrong suffix, and the
well-formed-but-wrong kinds of :mod:`.typed_mutations` (retyped tensors, reordered or duplicated outputs,
NaN/inf in custom options, a few bytes cut off).

``plan_corpus(sources, out_dir, seed=...)`` returns one :class:`Mutant` recipe
per file: where it goes, its source model, its mutation kind and its own seed.
:func:`mutant_bytes` turns a recipe into the file content, the same bytes
every time, so worker processes write each mutant just before loading it and
delete it after (a corpus of big models never sits on disk at once).
"Structure" flips avoid tensor payloads (TFLite buffer data, ONNX
``raw_data``) so they hit the tables, shapes, offsets and indices that a
native runtime trusts; "body" flips land anywhere.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Mutant", "KINDS", "plan_corpus", "mutant_bytes", "payload_ranges", "mutate"]

#: Mutation kinds, in report order (the well-formed-but-wrong kinds are in :mod:`.typed_mutations`).
KINDS = ("truncate", "flip_header", "flip_structure", "flip_body", "zero_length", "random_bytes", "wrong_suffix",
         "truncate_few", "retype_input", "retype_output", "reorder_outputs", "duplicate_output", "options_nonfinite")

_HEADER_BYTES = 64
_INTERESTING_32 = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                   0xFFFFFFFE, 1_000_000, 0x40000000)


@dataclass(frozen=True)
class Mutant:
    """How to make one fuzz file: ``mutant_bytes(m)`` gives its content, to be written at ``path``."""

    path: Path
    kind: str
    source: str                  # name of the model it came from ("random", "empty" for kinds without one)
    format: str                  # "tflite" or "onnx": the format of the source, whatever the suffix says
    source_path: Path | None     # file holding the source model
    seed: tuple[int, int]        # (corpus seed, mutant index)

    def to_json(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "source": self.source, "format": self.format,
                "source_path": str(self.source_path) if self.source_path else None, "seed": list(self.seed)}

    @classmethod
    def from_json(cls, d: dict) -> Mutant:
        return cls(Path(d["path"]), d["kind"], d["source"], d["format"],
                   Path(d["source_path"]) if d["source_path"] else None, tuple(d["seed"]))


def payload_ranges(data: bytes, fmt: str) -> list[tuple[int, int]]:
    """Byte ranges ``[start, end)`` holding tensor payloads (buffer data / raw_data), sorted."""
    ranges = _tflite_payloads(data) if fmt == "tflite" else _onnx_payloads(data)
    return sorted(r for r in ranges if r[1] > r[0])


def _tflite_payloads(data: bytes) -> list[tuple[int, int]]:
    from edgecv.formats.tflite import FlatbufferReader

    fb = FlatbufferReader(data)
    out = []
    for buffer in fb.table_vector(fb.root(), 4):
        vec = fb.bytes_vector(buffer, 0)
        if vec is not None:
            out.append((vec[0], vec[0] + vec[1]))
    return out


def _pb_fields(data: bytes, start: int, end: int):
    pos = start
    while pos < end:
        key, pos = _pb_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _pb_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _pb_varint(data, pos)
            yield number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"wire type {wire}")


def _pb_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _onnx_graph_payloads(data: bytes, start: int, end: int, out: list) -> None:
    for number, a, b in _pb_fields(data, start, end):
        if number == 5:  # initializer (TensorProto): raw_data = 9
            out.extend((x, y) for n, x, y in _pb_fields(data, a, b) if n == 9)
        elif number == 1:  # node: attribute = 5 -> g = 6, graphs = 11, t = 5
            for n, x, y in _pb_fields(data, a, b):
                if n == 5:
                    for n2, x2, y2 in _pb_fields(data, x, y):
                        if n2 in (6, 11):
                            _onnx_graph_payloads(data, x2, y2, out)
                        elif n2 == 5:
                            out.extend((p, q) for n3, p, q in _pb_fields(data, x2, y2) if n3 == 9)


def _onnx_payloads(data: bytes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for number, a, b in _pb_fields(data, 0, len(data)):
        if number == 7:
            _onnx_graph_payloads(data, a, b, out)
    return out


def _structure_positions(size: int, payloads: list[tuple[int, int]]) -> np.ndarray:
    mask = np.ones(size, bool)
    for a, b in payloads:
        mask[a:b] = False
    return np.flatnonzero(mask)


def _edit(buf: bytearray, pos: int, rng: np.random.Generator) -> None:
    """One edit at *pos*: flip a bit, set a random byte, or write an interesting 32-bit value."""
    choice = rng.integers(3)
    if choice == 0:
        buf[pos] ^= 1 << int(rng.integers(8))
    elif choice == 1:
        buf[pos] = int(rng.integers(256))
    else:
        pos -= pos % 4
        if pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, _INTERESTING_32[int(rng.integers(len(_INTERESTING_32)))])


def mutate(data: bytes, kind: str, rng: np.random.Generator, payloads: list[tuple[int, int]]) -> bytes:
    """Apply one mutation of *kind* (not "wrong_suffix") to *data*."""
    if kind == "zero_length":
        return b""
    if kind == "random_bytes":
        return rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    if kind == "truncate":
        # half the cuts in the first 4 KiB (tables, headers), half anywhere
        limit = min(len(data) - 1, 4096) if rng.integers(2) else len(data) - 1
        return data[: int(rng.integers(1, max(2, limit)))]
    buf = bytearray(data)
    if kind == "flip_header":
        positions = np.arange(min(len(buf), _HEADER_BYTES))
    elif kind == "flip_structure":
        positions = _structure_positions(len(buf), payloads)
    elif kind == "flip_body":
        positions = np.arange(len(buf))
    else:
        raise ValueError(f"unknown mutation kind {kind!r}")
    for _ in range(int(rng.integers(1, 5))):
        _edit(buf, int(positions[rng.integers(len(positions))]), rng)
    return bytes(buf)


_MAGIC = {"tflite": b"\x1c\0\0\0TFL3", "onnx": b"\x08\x08\x12"}
_SOURCES: dict[Path, tuple[bytes, list[tuple[int, int]]]] = {}


def _source(path: Path, fmt: str) -> tuple[bytes, list[tuple[int, int]]]:
    if path not in _SOURCES:
        data = path.read_bytes()
        _SOURCES.clear()  # keep one source in memory at a time; recipes come grouped by source
        _SOURCES[path] = (data, payload_ranges(data, fmt))
    return _SOURCES[path]


def mutant_bytes(m: Mutant) -> bytes:
    """The content of mutant *m* (deterministic: a function of its source file and seed)."""
    rng = np.random.default_rng(list(m.seed))
    if m.kind == "zero_length":
        return b""
    if m.kind == "random_bytes":
        noise = mutate(b"", "random_bytes", rng, [])
        return _MAGIC[m.format] + noise if m.seed[1] % 2 else noise
    data, payloads = _source(m.source_path, m.format)
    if m.kind == "wrong_suffix":
        return data
    from .typed_mutations import TYPED_KINDS, typed_mutation  # it reads protobuf fields with this module's helpers

    if m.kind in TYPED_KINDS:
        return typed_mutation(data, m.format, m.kind, rng)
    return mutate(data, m.kind, rng, payloads)


def plan_corpus(sources: dict[str, Path], out_dir: Path, *, fmt: str, seed: int,
                per_source: dict[str, int], random_files: int = 10, zero_files: int = 2) -> list[Mutant]:
    """Recipes for mutated copies of *sources* (all of format *fmt*), to be written into *out_dir*.

    Args:
        sources: name -> file holding the model.
        out_dir: folder the mutants will be written to (created).
        fmt: "tflite" or "onnx".
        seed: corpus seed; the same seed gives the same files.
        per_source: mutants per source for each kind it names (truncate, flip_*, and the typed kinds, which
            are skipped for a source they would not change, e.g. options_nonfinite without custom options);
            each source also gets two "wrong_suffix" copies (the other format's suffix, and ".bin").
        random_files: random-byte files (every other one starts with the format's magic bytes).
        zero_files: zero-length files.

    Returns:
        One :class:`Mutant` per file, in a deterministic order, grouped by source.
    """
    from .typed_mutations import TYPED_KINDS, applicable

    out_dir.mkdir(parents=True, exist_ok=True)
    mutants: list[Mutant] = []

    def plan(kind: str, source: str, source_path: Path | None, suffix: str) -> None:
        index = len(mutants)
        path = out_dir / f"{source}.{kind}.{index:04d}{suffix}"
        mutants.append(Mutant(path, kind, source, fmt, source_path, (seed, index)))

    for source, source_path in sources.items():
        for kind, count in per_source.items():
            if kind in TYPED_KINDS and not applicable(kind, source_path.read_bytes(), fmt):
                continue
            for _ in range(count):
                plan(kind, source, source_path, "." + fmt)
        plan("wrong_suffix", source, source_path, ".onnx" if fmt == "tflite" else ".tflite")
        plan("wrong_suffix", source, source_path, ".bin")
    for _ in range(random_files):
        plan("random_bytes", "random", None, "." + fmt)
    for _ in range(zero_files):
        plan("zero_length", "empty", None, "." + fmt)
    return mutants
