"""Reader for the standard TFLite model metadata (``TFLITE_METADATA``, schema "M001").

Models published with the TFLite Support metadata carry a ``ModelMetadata``
flatbuffer in a metadata buffer, and their associated files (label maps) are
packed as a zip archive appended to the model. edgecv reads the tensor names,
input normalisation, colour space, bounding-box layout and the label files.

Field indices follow tensorflow/lite/support metadata_schema.fbs.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field

from ..errors import ModelLoadError
from .tflite import FlatbufferReader

# AssociatedFileType
TENSOR_AXIS_LABELS = 2
TENSOR_VALUE_LABELS = 3
# ProcessUnitOptions union
NORMALIZATION_OPTIONS = 1
# ContentProperties union
IMAGE_PROPERTIES = 2
BOUNDING_BOX_PROPERTIES = 3
_COLOR_SPACES = {1: "rgb", 2: "grayscale"}
_BOX_TYPES = {1: "boundaries", 2: "upper_left", 3: "center"}
_COORD_TYPES = {0: "ratio", 1: "pixel"}

MAX_LABEL_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class AssociatedFile:
    name: str
    type: int


@dataclass(frozen=True)
class TensorMetadata:
    name: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    color_space: str | None = None
    box_index: tuple[int, ...] | None = None   # order of (left, top, right, bottom) in the box vector
    box_type: str | None = None
    box_coordinates: str | None = None
    label_file: str | None = None
    label_file_type: int | None = None


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]
    files: dict[str, bytes] = field(default_factory=dict)
    wanted_files: frozenset[str] = frozenset()   # packed files the metadata names (label maps)


def _associated_files(fb: FlatbufferReader, table: int, index: int) -> list[AssociatedFile]:
    return [AssociatedFile(fb.string(t, 0) or "", int(fb.scalar(t, 2, "b", 0))) for t in fb.table_vector(table, index)]


def _tensor(fb: FlatbufferReader, t: int) -> TensorMetadata:
    mean = std = color = box_index = box_type = coords = None
    for unit in fb.table_vector(t, 4):
        if int(fb.scalar(unit, 0, "B", 0)) == NORMALIZATION_OPTIONS:
            opts = fb.table(unit, 1)
            if opts is not None:
                mean = tuple(float(v) for v in fb.scalar_vector(opts, 0, "f")) or None
                std = tuple(float(v) for v in fb.scalar_vector(opts, 1, "f")) or None
    content = fb.table(t, 3)
    if content is not None:
        kind = int(fb.scalar(content, 0, "B", 0))
        props = fb.table(content, 1)
        if props is not None and kind == IMAGE_PROPERTIES:
            color = _COLOR_SPACES.get(int(fb.scalar(props, 0, "b", 0)))
        elif props is not None and kind == BOUNDING_BOX_PROPERTIES:
            box_index = tuple(int(v) for v in fb.scalar_vector(props, 0, "I")) or None
            box_type = _BOX_TYPES.get(int(fb.scalar(props, 1, "b", 0)))
            coords = _COORD_TYPES.get(int(fb.scalar(props, 2, "b", 0)))
    label_file = label_type = None
    for f in _associated_files(fb, t, 6):
        if f.type in (TENSOR_AXIS_LABELS, TENSOR_VALUE_LABELS):
            label_file, label_type = f.name, f.type
            break
    return TensorMetadata(fb.string(t, 0) or "", mean, std, color, box_index, box_type, coords, label_file, label_type)


def packed_files(model_bytes: bytes, wanted: set[str] | frozenset[str]) -> dict[str, bytes]:
    """The files named in *wanted* from the zip archive appended to the model.

    Raises:
        ModelLoadError: the metadata names packed files but the archive is missing or damaged
            (a truncated copy cuts the archive's directory, which sits at the very end of the file).
    """
    if not wanted:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            out = {}
            for info in archive.infolist():
                if info.filename in wanted and info.file_size <= MAX_LABEL_FILE_BYTES:
                    out[info.filename] = archive.read(info)
            return out
    except (NotImplementedError, RuntimeError):
        return {}  # an unsupported compression method or encryption: no packed label files
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise ModelLoadError(
            f"the model's metadata names packed files {sorted(wanted)} but the archive appended to the model is "
            f"missing or damaged ({exc}); the file is truncated or corrupt: re-copy or re-export it") from exc


def parse_model_metadata(buffer: bytes, model_bytes: bytes | None = None) -> ModelMetadata:
    """Parse a ``TFLITE_METADATA`` buffer; with *model_bytes*, also unpack its label files.

    Raises:
        ModelLoadError: the metadata flatbuffer is corrupt, or (with *model_bytes*) the packed files'
            archive is missing or damaged (see :func:`packed_files`).
    """
    fb = FlatbufferReader(buffer, "TFLite metadata")
    if fb.size < 8:
        raise ModelLoadError("corrupt TFLite metadata: buffer too short; re-export the model's metadata")
    root = fb.root()
    subgraphs = fb.table_vector(root, 3)
    inputs: tuple[TensorMetadata, ...] = ()
    outputs: tuple[TensorMetadata, ...] = ()
    if subgraphs:
        inputs = tuple(_tensor(fb, t) for t in fb.table_vector(subgraphs[0], 2))
        outputs = tuple(_tensor(fb, t) for t in fb.table_vector(subgraphs[0], 3))
    wanted = {t.label_file for t in inputs + outputs if t.label_file}
    wanted |= {f.name for f in _associated_files(fb, root, 6)}
    files = packed_files(model_bytes, wanted) if model_bytes is not None else {}
    return ModelMetadata(fb.string(root, 0) or "", inputs, outputs, files, frozenset(wanted))
