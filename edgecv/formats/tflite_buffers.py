"""The buffers of a TFLite model: size, bounds and bytes of one ``Buffer`` table.

A buffer holds its bytes inline (field 0, a byte vector) or, in files over
2 GiB, as an offset/size pair (fields 1 and 2) pointing past the flatbuffer.
"""

from __future__ import annotations

from .flatbuffer import FlatbufferReader

__all__ = ["buffer_size", "check_buffer_range", "buffer_bytes"]


def buffer_size(fb: FlatbufferReader, buffer_table: int) -> int:
    """Bytes the buffer at *buffer_table* holds (0 for an empty buffer)."""
    vec = fb.bytes_vector(buffer_table, 0)
    if vec is not None:
        return vec[1]
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    return int(fb.scalar(buffer_table, 2, "Q", 0)) if offset > 1 else 0


def check_buffer_range(fb: FlatbufferReader, buffer_table: int, index: int) -> None:
    """Buffers stored after the flatbuffer (offset/size form) must lie inside the file.

    Raises:
        ModelLoadError: buffer *index* reaches past the end of the file.
    """
    if fb.bytes_vector(buffer_table, 0) is not None:
        return
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    size = int(fb.scalar(buffer_table, 2, "Q", 0))
    if offset > 1 and (size > fb.size or offset > fb.size - size):
        raise fb._fail(f"buffer {index} claims bytes {offset}..{offset + size}, beyond the end of the file")


def buffer_bytes(fb: FlatbufferReader, buffer_table: int) -> bytes:
    """A copy of the buffer's bytes (``b""`` for an empty buffer).

    Raises:
        ModelLoadError: an offset/size buffer reaches past the end of the file.
    """
    vec = fb.bytes_vector(buffer_table, 0)
    if vec is not None:
        start, length = vec
        return bytes(fb.data[start:start + length])
    offset = int(fb.scalar(buffer_table, 1, "Q", 0))
    size = int(fb.scalar(buffer_table, 2, "Q", 0))
    if offset > 1 and size:
        fb._check(offset, size)
        return bytes(fb.data[offset:offset + size])
    return b""

