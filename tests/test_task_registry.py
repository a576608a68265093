"""The task registry: one table of tasks that the runtime, the manifest and the converters read."""

import pytest

import edgecv
from edgecv.heads import ClassificationHead, DetectionHead, EmbeddingHead, SegmentationHead
from edgecv.task_registry import TASK_NAMES, TASKS, get_task, normalize_task
from edgecv.tasks import task_class


@pytest.mark.device
def test_every_task_resolves_to_its_class_head_and_result():
    expected = {
        "classification": (edgecv.Classifier, ClassificationHead, edgecv.ClassificationResult, "classify"),
        "detection": (edgecv.Detector, DetectionHead, edgecv.DetectionResult, "detect"),
        "segmentation": (edgecv.Segmenter, SegmentationHead, edgecv.SegmentationResult, "segment"),
        "embedding": (edgecv.Embedder, EmbeddingHead, edgecv.Embedding, "embed"),
    }
    assert TASK_NAMES == tuple(expected)
    for info in TASKS:
        cls, head, result, verb = expected[info.name]
        assert task_class(info.name) is cls and task_class(info.class_name) is cls and info.head_type is head
        assert getattr(edgecv, info.result_name) is result
        assert info.verb == verb and callable(getattr(cls, verb))
        assert cls.task_name == info.name and head.task == info.name
        assert set(info.export_roles) <= set(info.roles)


@pytest.mark.device
@pytest.mark.parametrize("spelling, name", [
    ("detect", "detection"), ("Detector", "detection"), ("CLASSIFY", "classification"),
    ("segmenter", "segmentation"), ("embedding", "embedding"),
])
def test_spellings(spelling, name):
    assert normalize_task(spelling) == name and get_task(spelling).name == name


@pytest.mark.device
def test_unknown_task_suggests():
    with pytest.raises(edgecv.ConfigError, match="did you mean 'detect'"):
        get_task("detcet")
    with pytest.raises(edgecv.ConfigError, match="choose one of classification"):
        get_task(3)
