"""The workstation side of edgecv: convert, quantize and validate models for edge targets.

    >>> import converters
    >>> result = converters.convert("model.keras", task="classification", target="rpi4",
    ...                             calibration="calib_images/", validation=val_set,
    ...                             preprocessing={"mean": 127.5, "std": 127.5}, output_dir="out")
    >>> print(result.report.table())

Also here: :mod:`converters.reference` (small reference models for the four
tasks) and :mod:`converters.synthetic` (a deterministic "shapes" data set).
TensorFlow, tf2onnx, onnx and onnxruntime are imported only when a
conversion runs.
"""

from .calibration import MIN_CALIBRATION_SAMPLES, RECOMMENDED_CALIBRATION_SAMPLES
from .conversion_report import Artifact, ArtifactReport, ConversionReport, ConversionResult
from .pipeline import DEFAULT_BUDGET_POINTS, convert
from .plan import FORMATS, IO_DTYPES, PRECISIONS
from .validate import ValidationSet

__all__ = [
    "convert", "ConversionResult", "ConversionReport", "ArtifactReport", "Artifact", "ValidationSet",
    "PRECISIONS", "FORMATS", "IO_DTYPES", "DEFAULT_BUDGET_POINTS",
    "MIN_CALIBRATION_SAMPLES", "RECOMMENDED_CALIBRATION_SAMPLES",
]
