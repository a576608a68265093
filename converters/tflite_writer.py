"""Writing into TFLite flatbuffers: edgecv's manifest entry, and reading signature names.

The manifest is stored as a ``Model.metadata`` entry named ``EDGECV_MANIFEST``
whose buffer holds the UTF-8 JSON (the same place the standard TFLite
metadata lives, so interpreters ignore it). The flatbuffer is unpacked with
TensorFlow's generated object API (``tensorflow.lite.python.schema_py_generated``),
the entry added or replaced, and the model packed again with the ``TFL3``
file identifier. edgecv's own reader (:mod:`edgecv.formats.tflite`) reads it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecv.errors import ConversionError
from edgecv.formats.tflite import TENSOR_TYPE_NAMES, parse_tflite

from ._env import import_tensorflow

__all__ = ["embed_metadata", "signature_outputs", "float_compute_ops"]

_FILE_IDENTIFIER = b"TFL3"


def _schema() -> Any:
    import_tensorflow()
    try:
        from tensorflow.lite.python import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - shipped with every TensorFlow 2.x
        raise ConversionError("this TensorFlow has no TFLite schema module; upgrade tensorflow") from exc
    return schema


def _unpack(model_bytes: bytes) -> Any:
    schema = _schema()
    buf = bytearray(model_bytes)
    try:
        if not schema.Model.ModelBufferHasIdentifier(buf, 0):
            raise ConversionError("the converter produced something that is not a TFLite flatbuffer")
        return schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"cannot read the TFLite flatbuffer to embed the manifest: {exc}") from exc


def _pack(model_t: Any) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def embed_metadata(model_bytes: bytes, name: str, payload: bytes) -> bytes:
    """Return *model_bytes* with metadata entry *name* set to *payload* (replacing an old one).

    Raises:
        ConversionError: not a TFLite flatbuffer, or one that stores its buffers
            outside the flatbuffer (models over 2 GB), which this writer does not handle.
    """
    schema = _schema()
    model = _unpack(model_bytes)
    if any(getattr(b, "offset", 0) > 1 for b in model.buffers or []):
        raise ConversionError("this TFLite model keeps its weights outside the flatbuffer (> 2 GB); edgecv "
                              "cannot embed a manifest in it: ship the <model>.json sidecar instead")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(payload), np.uint8)
    entries = [m for m in (model.metadata or []) if _text(m.name) != name]
    model.buffers = list(model.buffers or [])
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    out = _pack(model)
    parsed = parse_tflite(out, what="TFLite model with embedded manifest")
    if parsed.metadata.get(name) != bytes(payload):
        raise ConversionError("the manifest did not read back from the written TFLite model; please report this")
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def signature_outputs(model_bytes: bytes, signature: str = "serving_default") -> dict[str, str]:
    """``{signature output key: tensor name}`` of one signature of a TFLite model.

    Raises:
        ConversionError: the model has no such signature.
    """
    model = _unpack(model_bytes)
    for sig in model.signatureDefs or []:
        if _text(sig.signatureKey) == signature:
            tensors = model.subgraphs[sig.subgraphIndex].tensors
            return {_text(t.name): _text(tensors[t.tensorIndex].name) for t in sig.outputs or []}
    raise ConversionError(f"the converted TFLite model has no {signature!r} signature; cannot map its outputs")


def float_compute_ops(model_bytes: bytes) -> list[str]:
    """Ops of the main graph that read or write float tensors other than at the model's edges.

    QUANTIZE ops reading the float model input and DEQUANTIZE ops writing the
    float model output are edge conversions, not float compute.
    """
    parsed = parse_tflite(model_bytes, what="converted TFLite model")
    sg = parsed.main
    float_types = {TENSOR_TYPE_NAMES[0], TENSOR_TYPE_NAMES[1]}
    edges_in, edges_out = set(sg.inputs), set(sg.outputs)
    found = []
    for op in sg.operators:
        if op.opcode == "QUANTIZE" and set(op.inputs) <= edges_in:
            continue
        if op.opcode == "DEQUANTIZE" and set(op.outputs) <= edges_out:
            continue
        tensors = [sg.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
        if any(t.dtype in float_types for t in tensors):
            found.append(op.opcode)
    return found
