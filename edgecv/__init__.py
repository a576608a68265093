"""edgecv: take trained vision models to edge devices.

The whole public API of the on-device runtime is listed here. Importing
edgecv loads numpy and the standard library only; runtimes, OpenCV and
TensorFlow are imported when a model is loaded or an image is processed.

Runtime:
    load(path, *, target=None, backend=None, num_threads=None) -> Model
    Model               inputs/outputs (TensorSpec), input_buffer(), invoke(), run(), close()
    TensorSpec, QuantParams
    Preprocessing, Manifest, read_labels
    Preprocessor, ImageTransform, read_image

Errors (all subclasses of EdgeCVError):
    ConfigError, BackendNotAvailable, ModelLoadError, IncompatibleModelError,
    InferenceError, ConversionError, CalibrationError, UnsupportedOpError,
    UnknownTargetError

Benchmarking:
    bench(model_or_task, *, target=None, runs=None, warmup=None, duration_s=None, threads=None, inputs=None)
        -> BenchReport;  compare([...paths]) -> [BenchReport];  check_regression(report, baseline, tolerance)

Utilities:
    atomic_write(path, data), atomic_path(path)
"""

from ._version import __version__
from .atomic import atomic_path, atomic_write
from .benchmark import BenchReport, bench, check_regression, compare
from .errors import (
    BackendNotAvailable,
    CalibrationError,
    ConfigError,
    ConversionError,
    EdgeCVError,
    IncompatibleModelError,
    InferenceError,
    ModelLoadError,
    UnknownTargetError,
    UnsupportedOpError,
)
from .image import read_image
from .manifest import Manifest, Preprocessing, read_labels
from .model import Model, load
from .preprocess import ImageTransform, Preprocessor
from .specs import QuantParams, TensorSpec

__all__ = [
    "__version__",
    "load", "Model", "TensorSpec", "QuantParams",
    "Manifest", "Preprocessing", "read_labels",
    "Preprocessor", "ImageTransform", "read_image",
    "atomic_write", "atomic_path",
    "bench", "compare", "BenchReport", "check_regression",
    "EdgeCVError", "ConfigError", "BackendNotAvailable", "ModelLoadError", "IncompatibleModelError",
    "InferenceError", "ConversionError", "CalibrationError", "UnsupportedOpError", "UnknownTargetError",
]
