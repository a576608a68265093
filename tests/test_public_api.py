"""The public API: every name the packages export resolves, and none that existed before the restructuring is gone."""

import importlib

import pytest

#: the __all__ of each package at 8b2c8f3 (before typed heads, the CLI package and the NMS split)
BEFORE = {
    "edgecv": (
        '__version__', 'draw', 'load', 'Model', 'TensorSpec', 'QuantParams', 'Manifest', 'Preprocessing',
        'read_labels', 'Preprocessor', 'ImageTransform', 'read_image', 'nms', 'soft_nms', 'scores_above',
        'dequantize', 'box_iou', 'decode_center_size', 'encode_center_size', 'clip_boxes', 'BoxCoder', 'BoxDecoder',
        'AnchorSpec', 'generate_anchors', 'Classifier', 'Detector', 'Segmenter', 'Embedder', 'Gallery',
        'ClassificationResult', 'Category', 'DetectionResult', 'Detection', 'Box', 'SegmentationResult', 'ClassArea',
        'Embedding', 'EmbeddingEvaluation', 'Timing', 'cosine_distance', 'euclidean_distance', 'atomic_write',
        'atomic_path', 'bench', 'compare', 'BenchReport', 'check_regression', 'EdgeCVError', 'ConfigError',
        'BackendNotAvailable', 'ModelLoadError', 'IncompatibleModelError', 'InferenceError', 'ConversionError',
        'CalibrationError', 'UnsupportedOpError', 'UnknownTargetError'
    ),
    "converters": (
        'convert', 'ConversionResult', 'ConversionReport', 'ArtifactReport', 'Artifact', 'ValidationSet',
        'PRECISIONS', 'FORMATS', 'IO_DTYPES', 'DEFAULT_BUDGET_POINTS', 'MIN_CALIBRATION_SAMPLES',
        'RECOMMENDED_CALIBRATION_SAMPLES'
    ),
    "targets": (
        'Target', 'Constraints', 'get', 'all', 'names', 'resolve', 'load_profile', 'FORMATS', 'PRECISIONS',
        'IO_DTYPES', 'Recipe', 'recipe', 'check', 'check_graph', 'CheckReport', 'Problem', 'ModelSummary', 'EXIT_OK',
        'EXIT_WARNINGS', 'EXIT_ERRORS', 'ModelGraph', 'OpInfo', 'TensorInfo', 'read_graph', 'providers_for',
        'granted_report', 'trt_cache_dir', 'default_cache_root', 'model_sha256', 'ensure_cache_dirs', 'detect',
        'HostReport', 'RuntimeInfo', 'EdgeTpuInfo'
    ),
}


@pytest.mark.device
@pytest.mark.parametrize("package", ["edgecv", "targets"])
def test_runtime_names_resolve(package):
    module = importlib.import_module(package)
    missing = [n for n in (*module.__all__, *BEFORE[package]) if not hasattr(module, n)]
    assert not missing


def test_converter_names_resolve():
    pytest.importorskip("tensorflow")
    module = importlib.import_module("converters")
    assert not [n for n in (*module.__all__, *BEFORE["converters"]) if not hasattr(module, n)]


@pytest.mark.device
def test_edgecv_nms_is_the_function():
    import edgecv
    import edgecv.tasks  # noqa: F401  (importing the tasks once hid edgecv.nms behind its module)

    assert callable(edgecv.nms) and edgecv.nms.__module__.startswith("edgecv.suppression")
