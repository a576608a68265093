"""What a detector must be told (edgecv/tasks/sanity.py) and the first-frame warnings, on synthetic outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgecv.heads import DetectionHead
from edgecv.tasks.sanity import detection_warnings, missing_detection_settings, rows_are_probabilities

pytestmark = pytest.mark.device

RNG = np.random.default_rng(0)
TOP_LEFT = RNG.uniform(0.05, 0.6, (50, 2))
CORNERS = np.concatenate([TOP_LEFT, TOP_LEFT + RNG.uniform(0.05, 0.3, (50, 2))], axis=1)   # x1, y1, x2, y2 in 0..1
LOGITS = RNG.normal(0, 3, (50, 3))
SOFTMAX = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)


def _warnings(boxes, scores, **head):
    return detection_warnings(boxes, scores, DetectionHead(**head), background_column=0)


def test_what_must_be_stated():
    everything = ["form", "background_class", "score_activation", "box_format"]
    assert missing_detection_settings(DetectionHead(), 2, anchors_known=False) == everything
    assert missing_detection_settings(DetectionHead(), 2, anchors_known=True) == ["background_class",
                                                                                 "score_activation"]
    assert missing_detection_settings(DetectionHead(form="decoded"), 1, anchors_known=False) == [
        "score_activation", "box_format"]
    assert missing_detection_settings(DetectionHead(form="decoded", score_activation="none", box_format="xyxy"), 1,
                                      anchors_known=False) == []
    assert missing_detection_settings(DetectionHead(form="raw", background_class="none"), 91, True) == [
        "score_activation"]
    assert missing_detection_settings(DetectionHead(form="raw", background_class="none", score_activation="sigmoid"),
                                      91, True) == []


def test_the_error_says_how_to_state_each_missing_setting():
    from edgecv.tasks.sanity import missing_settings_error

    error = str(missing_settings_error(["score_activation", "box_format"], "m.onnx", "outputs ..."))
    assert "score_activation and box_format not stated" in error
    assert "score_activation='none'" in error and "box_format='xyxy'" in error
    assert "--score-activation none|sigmoid|softmax --box-format xyxy|yxyx" in error


def test_consistent_settings_give_no_warning():
    assert rows_are_probabilities(SOFTMAX) and not rows_are_probabilities(LOGITS)
    assert _warnings(CORNERS, SOFTMAX, score_activation="none", box_normalized=True) == []
    assert _warnings(CORNERS, LOGITS, score_activation="softmax", box_normalized=True) == []
    assert _warnings(CORNERS * 300, LOGITS, score_activation="sigmoid", box_normalized=False) == []


def test_contradicted_settings_are_warned_about():
    assert "a second softmax" in _warnings(CORNERS, SOFTMAX, score_activation="softmax")[0]
    assert "a sigmoid squeezes" in _warnings(CORNERS, SOFTMAX, score_activation="sigmoid")[0]
    assert "not probabilities" in _warnings(CORNERS, LOGITS, score_activation="none")[0]
    assert "box_normalized=False" in _warnings(CORNERS * 300, SOFTMAX, score_activation="none",
                                               box_normalized=True)[0]
    assert "look like 0..1" in _warnings(CORNERS, SOFTMAX, score_activation="none", box_normalized=False)[0]


def test_raw_boxes_that_decode_far_outside_the_input_are_warned_about():
    def decode(rows, index):
        return rows * 40.0          # a box coder / anchor mismatch
    found = detection_warnings(CORNERS, SOFTMAX, DetectionHead(score_activation="none"), background_column=0,
                               decode=decode)
    assert len(found) == 1 and "check the anchors and the box coder" in found[0]


def test_a_float_model_without_stated_preprocessing_is_refused_and_the_fixes_it_names_work(fixtures, tmp_path):
    """The float MobileNet states no normalisation (no manifest, no NormalizationOptions): refused, naming the
    input; the keyword and the annotate command the error names both make it run."""
    from edgecv.cli import EXIT_OK, main
    from edgecv.errors import ConfigError
    from edgecv.tasks.classifier import Classifier

    path = fixtures / "classification" / "mobilenet_v1_0.25_224_float.tflite"
    with pytest.raises(ConfigError) as info:
        Classifier(path)
    msg = str(info.value)
    assert msg.startswith("Classifier: preprocessing not stated") and "'input'[1, 224, 224, 3] is float32" in msg
    assert "preprocessing={'mean': ..., 'std': ...}" in msg and "--task classify --mean M --std S" in msg
    with pytest.raises(ConfigError, match=r"only mean \[127.5\] is stated"):
        Classifier(path, preprocessing={"mean": 127.5})
    with Classifier(path, preprocessing={"mean": 127.5, "std": 127.5}) as clf:
        assert clf.model.warnings == ()
        top = clf(fixtures / "images" / "cat.bmp").categories[0].index
    out = tmp_path / "annotated.tflite"
    assert main(["annotate", str(path), "--task", "classify", "--mean", "127.5", "--std", "127.5", "-o", str(out)]) \
        == EXIT_OK
    with Classifier(out) as clf:
        assert clf(fixtures / "images" / "cat.bmp").categories[0].index == top
