"""Third-party UltraFace models: refused unannotated, annotated through the CLI, then run with no arguments
(CLI and Python) to the same face count as an independent reference decoding of the upstream demo."""

from __future__ import annotations

import json
import os
import sys

import cv2
import numpy as np
import pytest

import edgecv
from edgecv.cli import EXIT_ERROR, EXIT_OK, main

RFB = "detection/ultraface_rfb_320.onnx"
SLIM = "detection/ultraface_slim_320_raw.onnx"
IMAGES = ("faces_group_1.jpg", "faces_group_26.jpg")
COMMON = ["--task", "detect", "--background-class", "0", "--score-activation", "none", "--mean", "127",
          "--std", "128", "--color", "rgb", "--score-threshold", "0.7", "--iou-threshold", "0.3",
          "--max-detections", "500"]
FLAGS = {RFB: ["--form", "decoded", "--box-format", "xyxy", "--box-normalized", "true"],
         SLIM: ["--form", "raw", "--anchors", "ultraface", "--box-coder", "ultraface"]}


# -- the reference: the upstream demo's decoding, written out here with numpy and ONNX Runtime --------------------

def _priors() -> np.ndarray:
    """UltraFace priors (cx, cy, w, h), as the fixtures README describes them."""
    rows = []
    for (fw, fh), sizes in zip(((40, 30), (20, 15), (10, 8), (5, 4)),
                               ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))):
        for j in range(fh):
            for i in range(fw):
                for s in sizes:
                    rows.append(((i + 0.5) / fw, (j + 0.5) / fh, s / 320, s / 240))
    return np.clip(np.array(rows), 0.0, 1.0)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = np.array(order, int)
        if not rest.size:
            break
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        overlap = inter / (area(boxes[i]) + area(boxes[rest]) - inter)
        order = [k for k, o in zip(order, overlap) if o <= iou]
    return keep


def _reference_count(model_path, image_path, raw: bool) -> int:
    import onnxruntime as ort

    image = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    x = (cv2.resize(image, (320, 240)).astype(np.float32) - 127.0) / 128.0
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    scores, boxes = session.run(["scores", "boxes"], {"input": x.transpose(2, 0, 1)[None]})
    scores, boxes = scores[0, :, 1], boxes[0].astype(np.float64)
    if raw:
        p = _priors()
        centre = boxes[:, :2] * 0.1 * p[:, 2:] + p[:, :2]
        size = np.exp(boxes[:, 2:] * 0.2) * p[:, 2:]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keep = scores > 0.7
    return len(_greedy_nms(boxes[keep], scores[keep], 0.3))


# -- the tests ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def annotated(fixtures, tmp_path_factory):
    folder = tmp_path_factory.mktemp("annotated")
    out = {}
    for model in (RFB, SLIM):
        dest = folder / os.path.basename(model)
        assert main(["annotate", str(fixtures / model), *COMMON, *FLAGS[model], "-o", str(dest)]) == EXIT_OK
        out[model] = dest
    return out


@pytest.mark.device
@pytest.mark.parametrize("model", [RFB, SLIM])
def test_unannotated_ultraface_is_refused_with_what_it_shows(fixtures, model, capsys):
    with pytest.raises(edgecv.ConfigError) as info:
        edgecv.Detector(fixtures / model)
    msg = str(info.value)
    assert "preprocessing, form, background_class, score_activation and box_format not stated" in msg
    assert "input 'input'[1, 3, 240, 320] is float32" in msg and "--mean M --std S" in msg
    assert "'scores'[1, 4420, 2]" in msg and "edgecv annotate" in msg
    assert "--score-activation none|sigmoid|softmax --box-format xyxy|yxyx" in msg
    assert main(["run", str(fixtures / model), "--task", "detect", "--source",
                 str(fixtures / "images" / IMAGES[0])]) == EXIT_ERROR
    assert "score_activation and box_format not stated" in capsys.readouterr().err
    # the raw model with its form, anchors, box coder, background column and normalisation stated lacks only
    # the score activation (no box_format: the box coder fixes the layout)
    if model == SLIM:
        with pytest.raises(edgecv.ConfigError, match="^Detector: score_activation not stated"):
            edgecv.Detector(fixtures / model, form="raw", anchors=edgecv.AnchorSpec.ultraface(320),
                            box_coder=edgecv.BoxCoder.from_variances(0.1, 0.2), background_class=0,
                            preprocessing={"mean": 127, "std": 128})


@pytest.mark.device
@pytest.mark.parametrize("model", [RFB, SLIM])
def test_annotated_ultraface_counts_the_reference_faces(fixtures, annotated, model, capsys):
    for image in IMAGES:
        expected = _reference_count(fixtures / model, fixtures / "images" / image, raw=model == SLIM)
        with edgecv.Detector(annotated[model]) as det:
            found = det(fixtures / "images" / image)
            assert det.model.warnings == ()
        assert len(found.detections) == expected
        assert all(d.class_id == 0 for d in found.detections)
        capsys.readouterr()
        assert main(["run", str(annotated[model]), "--source", str(fixtures / "images" / image), "--json"]) == EXIT_OK
        frame = json.loads(capsys.readouterr().out.splitlines()[0])
        assert frame["task"] == "detect" and len(frame["result"]["detections"]) == expected


@pytest.mark.device
def test_annotate_never_writes_its_input_and_probes_first(fixtures, annotated, tmp_path, capsys):
    model = annotated[RFB]
    before = model.read_bytes()
    assert main(["annotate", str(model), "--task", "detect", "-o", str(model)]) == EXIT_ERROR
    assert "annotate writes a copy" in capsys.readouterr().err
    assert main(["annotate", str(fixtures / RFB), "--task", "detect", "-o", str(model)]) == EXIT_ERROR
    assert "exists" in capsys.readouterr().err
    assert model.read_bytes() == before
    # a setting that fails the probe: nothing is written
    bad = tmp_path / "bad.onnx"
    assert main(["annotate", str(fixtures / SLIM), "--task", "detect", "--form", "raw", "--anchors", "tf-ssd",
                 "--box-coder", "tf", "--background-class", "0", "--score-activation", "none", "--mean", "127",
                 "--std", "128", "-o", str(bad)]) == EXIT_ERROR
    assert "anchors" in capsys.readouterr().err and not bad.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.device
def test_annotate_warns_about_a_second_softmax_and_reads_toml_config(fixtures, tmp_path, capsys):
    config = tmp_path / "faces.toml"
    config.write_text('form = "decoded"\nbox_format = "xyxy"\nbackground_class = 0\nscore_activation = "softmax"\n'
                      'mean = [127.0]\nstd = [128.0]\ncolor = "rgb"\n')
    out = tmp_path / "faces.onnx"
    old_mask = os.umask(0o022)
    try:
        assert main(["annotate", str(fixtures / RFB), "--task", "detect", "--config", str(config), "-o", str(out)]) == 0
    finally:
        os.umask(old_mask)
    assert "a second softmax" in capsys.readouterr().err
    assert out.stat().st_mode & 0o777 == 0o644            # the annotated copy honours the umask
    with edgecv.load(out) as model:
        assert model.manifest.head["score_activation"] == "softmax" and model.manifest.task == "detection"


@pytest.mark.device
def test_describe_lists_tensors_and_what_is_missing(fixtures, annotated, capsys):
    assert main(["describe", str(fixtures / RFB), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in report["outputs"]] == ["scores", "boxes"] and report["manifest"] is None
    assert not report["tasks"]["detection"]["ready"]
    assert "background_class" in report["tasks"]["detection"]["missing"]
    assert main(["describe", str(annotated[SLIM])]) == EXIT_OK
    text = capsys.readouterr().out
    assert "detection: ready" in text and "'form': 'raw'" in text


@pytest.mark.device
def test_annotate_tflite_writes_into_the_model(fixtures, tmp_path):
    """The manifest goes into the TFLite metadata (the standard metadata stays); the model computes the same."""
    source = fixtures / "detection/ssd_mobilenet_v1_coco_quant_postprocess.tflite"
    out = tmp_path / "ssd.tflite"
    labels = tmp_path / "coco.txt"
    labels.write_text("???\n" + (fixtures / "detection" / "coco_labelmap.txt").read_text())
    assert main(["annotate", str(source), "--task", "detect", "--labels", str(labels), "--score-threshold", "0.35",
                 "-o", str(out)]) == EXIT_OK
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.txt", "ssd.tflite"]     # no sidecar
    image = fixtures / "images" / "cats_and_dogs.jpg"
    with edgecv.Detector(out) as det:
        assert det.manifest.task == "detection" and det.score_threshold == 0.35
        assert len(det.labels) == 90 and det.labels[0] == "person"     # the ??? background row dropped
        annotated = det(image).to_dict()["detections"]
    with edgecv.Detector(source, score_threshold=0.35) as det:
        assert det.manifest.source == "tflite-metadata"
        original = det(image).to_dict()["detections"]
    assert annotated == original and {d["label"] for d in original} == {"cat", "dog"}
    again = tmp_path / "again.tflite"           # annotating an annotated model replaces the entry
    assert main(["annotate", str(out), "--task", "detect", "--score-threshold", "0.6", "-o", str(again)]) == EXIT_OK
    with edgecv.load(again) as model:
        assert model.manifest.head["score_threshold"] == 0.6 and len(model.manifest.labels) == 91


@pytest.mark.device
def test_run_without_task_needs_a_model_that_states_it(fixtures, capsys):
    assert main(["run", str(fixtures / RFB), "--source", str(fixtures / "images" / IMAGES[0])]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--task is needed" in err and "edgecv annotate" in err


@pytest.mark.device
def test_anchors_from_a_file_and_explicit_variances_equal_the_presets(fixtures, annotated, tmp_path):
    from edgecv import AnchorSpec

    spec = tmp_path / "priors.json"
    spec.write_text(json.dumps(AnchorSpec.ultraface(320).to_dict()))
    config = tmp_path / "slim.json"
    config.write_text(json.dumps({"form": "raw", "anchors": "priors.json", "box_variances": [0.1, 0.2],
                                  "background_class": 0, "score_activation": "none", "mean": 127, "std": 128,
                                  "color": "rgb", "score_threshold": 0.7, "iou_threshold": 0.3,
                                  "max_detections": 500}))
    out = tmp_path / "slim.onnx"
    assert main(["annotate", str(fixtures / SLIM), "--task", "detect", "--config", str(config), "-o", str(out)]) == 0
    image = fixtures / "images" / IMAGES[0]
    with edgecv.Detector(out) as a, edgecv.Detector(annotated[SLIM]) as b:
        assert a(image).to_dict()["detections"] == b(image).to_dict()["detections"]


@pytest.mark.device
def test_config_files_that_cannot_be_read_are_config_errors(tmp_path, monkeypatch):
    from edgecv.cli.settings_flags import _read_config
    from edgecv.errors import ConfigError

    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        _read_config(str(nested))
    toml = tmp_path / "settings.toml"
    toml.write_text('form = "decoded"\n')
    monkeypatch.setitem(sys.modules, "tomllib", None)       # what Python 3.9 and 3.10 have
    with pytest.raises(ConfigError, match=r"TOML needs Python 3\.11.*\.json"):
        _read_config(str(toml))
