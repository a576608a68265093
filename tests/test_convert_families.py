"""The four reference families, trained briefly on synthetic shapes, converted to every precision and validated.

Each family is trained once per module (a few seconds on two cores), converted
with ``target=None`` to TFLite fp32/fp16/dynamic/int8 (uint8 I/O) and ONNX
fp32/fp16/dynamic/int8 (QDQ), and every artifact is run through its edgecv
task on held-out synthetic images by ``convert`` itself. The assertions read
the report and re-check a few figures from the written files.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import converters  # noqa: E402
import edgecv  # noqa: E402
from converters import reference  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

pytestmark = pytest.mark.slow

# (training images, epochs) per family: enough for a useful float model in seconds
TRAINING = {"classification": (2000, 6), "detection": (2000, 8), "segmentation": (1200, 5), "embedding": (2000, 8)}
VALIDATION_IMAGES = 200
CALIBRATION_IMAGES = 100
EVERY = [("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "dynamic"), ("tflite", "int8"),
         ("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "dynamic"), ("onnx", "int8")]


def _convert(family, tmp_path_factory, **extra):
    n, epochs = TRAINING[family]
    data = reference.make_data(family, n, seed=10)
    model = reference.train(family, data, epochs=epochs, seed=0)
    calibration = reference.make_data(family, CALIBRATION_IMAGES, seed=11).images
    validation = reference.make_data(family, VALIDATION_IMAGES, seed=12)
    out = tmp_path_factory.mktemp(family)
    result = converters.convert(model, target=None, calibration=calibration, validation=validation, output_dir=out,
                                name=family, **reference.convert_options(family, data), **extra)
    return model, validation, result


def _check_common(result, task):
    report = result.report
    assert report.task == task and report.validation_size == VALIDATION_IMAGES
    assert report.calibration["size"] == CALIBRATION_IMAGES
    built = [(a.format, a.precision) for a in result.artifacts]
    assert built == EVERY
    fp32 = {a.format: a for a in result.artifacts if a.precision == "fp32"}
    for a in result.artifacts:
        with edgecv.load(a.path) as model:     # the manifest travels inside every file
            m = model.manifest
            assert m.task == task and m.quantization["precision"] == a.precision and m.source == "edgecv"
            assert m.preprocessing == reference.PREPROCESSING.__class__(mean=(127.5,), std=(127.5,), color="rgb",
                                                                       layout="nhwc")
            assert m.provenance["source_sha256"] == report.source["sha256"]
        if a.precision in ("int8", "dynamic", "fp16"):
            assert a.size_bytes < fp32[a.format].size_bytes
    ref = report.artifacts[0]
    assert ref.reference and ref.precision == "fp32" and ref.max_abs_diff < 1e-4
    assert report.recommended is not None
    return report


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    return _convert("classification", tmp_path_factory)


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    return _convert("detection", tmp_path_factory)


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory):
    return _convert("segmentation", tmp_path_factory)


@pytest.fixture(scope="module")
def embedding(tmp_path_factory):
    return _convert("embedding", tmp_path_factory)


def test_classifier_every_precision(classification):
    model, validation, result = classification
    report = _check_common(result, "classification")
    float_acc = report.artifacts[0].metrics["top1_accuracy"]
    assert float_acc > 0.6, "the reference classifier did not learn; the comparison would be meaningless"
    for a in report.artifacts:
        assert a.validated, a.notes
        assert abs(a.metrics["top1_accuracy"] - float_acc) <= 0.02, a.name     # within 2 points
        assert a.metrics["top1_agreement"] >= 0.95, a.name
    assert report.find("tflite", "int8").io_dtype == "uint8"
    # re-measure the TFLite int8 accuracy from the written file, through the Classifier
    from edgecv.tasks.classifier import Classifier

    path = result.artifact("tflite", "int8").path
    with Classifier(path, top_k=1) as clf:
        hits = sum(clf.classify(img).categories[0].index == label
                   for img, label in zip(validation.images, validation.labels))
        assert clf.classify(validation.images[0]).categories[0].label in reference.CLASS_NAMES
    assert hits / len(validation) == pytest.approx(report.find("tflite", "int8").metrics["top1_accuracy"])


def test_detector_every_precision(detection):
    model, validation, result = detection
    report = _check_common(result, "detection")
    float_map = report.artifacts[0].metrics["map50"]
    assert float_map > 0.4, "the reference detector did not learn"
    for a in report.artifacts:
        assert a.validated, a.notes
        assert abs(a.metrics["map50"] - float_map) <= 0.03, a.name
        assert a.metrics["detection_f1"] >= 0.9, a.name
    with edgecv.load(result.artifact("tflite", "int8").path) as m:
        head = m.manifest.head
        assert head["form"] == "raw" and head["anchors"] == reference.default_anchors(64).to_dict()
        assert head["box_coder"] == {"convention": "tf", "scales": [10.0, 10.0, 5.0, 5.0]}
        assert set(m.manifest.outputs) == {"boxes", "scores"}
        assert all(spec.dtype in ("uint8", "int8") for spec in m.outputs)
    # the Detector thresholds the int8 model's stored outputs and dequantizes candidates only:
    # the same detections as dequantizing both outputs first
    from edgecv.tasks.detector import Detector

    with Detector(result.artifact("tflite", "int8").path, score_threshold=0.05) as det:
        assert det._dequantize is False
        stored = [det.detect(img).to_dict()["detections"] for img in validation.images[:16]]
        det._dequantize, det._quant = True, (None, None)
        real = [det.detect(img).to_dict()["detections"] for img in validation.images[:16]]
    assert stored == real and sum(map(len, stored)) > 16


def test_segmenter_every_precision(segmentation, tmp_path):
    model, validation, result = segmentation
    report = _check_common(result, "segmentation")
    float_miou = report.artifacts[0].metrics["miou"]
    assert float_miou > 0.4, "the reference segmenter did not learn"
    for a in report.artifacts:  # the int8 one has uint8 logits (dequantized by the runtime)
        assert a.validated, a.notes
        assert abs(a.metrics["miou"] - float_miou) <= 0.02, a.name
        assert a.metrics["pixel_agreement"] >= 0.97, a.name
    # full-integer TFLite with float I/O: same int8 graph inside, float logits out
    floatio = converters.convert(model, target=None, precision="int8", formats="tflite", io_dtype="float32",
                                 calibration=reference.make_data("segmentation", CALIBRATION_IMAGES, seed=11).images,
                                 validation=validation, output_dir=tmp_path, name="seg",
                                 **reference.convert_options("segmentation"))
    int8 = floatio.report.find("tflite", "int8")
    assert int8.validated and abs(int8.metrics["miou"] - float_miou) <= 0.02


def test_embedder_every_precision(embedding):
    model, validation, result = embedding
    report = _check_common(result, "embedding")
    ref = report.artifacts[0].metrics
    assert ref["recall_at_1"] > 0.3, "the reference embedder did not learn"
    for a in report.artifacts:
        assert a.validated, a.notes
        assert a.metrics["mean_cosine"] >= (0.95 if a.precision in ("int8", "dynamic") else 0.999), a.name
        assert abs(a.metrics["tar_at_far_1e-2"] - ref["tar_at_far_1e-2"]) <= 0.05, a.name
    # unit-length vectors straight out of the int8 model (L2_NORMALIZATION kept in int8)
    from edgecv.tasks.embedder import Embedder

    with Embedder(result.artifact("tflite", "int8").path, l2_normalize=False) as emb:
        v = emb.embed(validation.images[0]).vector
    assert abs(float(np.linalg.norm(v)) - 1.0) < 0.02
    with edgecv.load(result.artifact("onnx", "int8").path) as m:
        assert m.manifest.head == {"l2_normalized": True}
        assert m.manifest.quantization["format"] == "QDQ"
