"""The examples run end to end on fixtures and synthetic data."""

import csv
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ULTRAFACE = "detection/ultraface_rfb_320.onnx"


def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _pan_video(image, path, *, width=360, step=5, frames=60):
    h = image.shape[0]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (width, h))
    for i in range(frames):
        writer.write(np.ascontiguousarray(image[:, i * step:i * step + width]))
    writer.release()
    return path


@pytest.mark.device
def test_people_counter_counts_faces_moving_left(fixtures, tmp_path):
    counter = _example("people_counter")
    image = cv2.imread(str(fixtures / "images" / "faces_group_1.jpg"))
    video = _pan_video(image, tmp_path / "pan.avi")  # the camera pans right: faces move left across the line
    result = counter.count(str(fixtures / ULTRAFACE), str(video), line="x=0.5")
    assert result["frames"] == 60
    assert result["backward"] >= 5          # many faces cross right-to-left
    assert result["forward"] <= 1           # (almost) none the other way
    assert result["tracks"] >= result["backward"]


def test_tracker_and_line_counter_unit():
    counter = _example("people_counter")
    tracker, line = counter.IoUTracker(), counter.LineCounter("x=0.5")
    for x in (30, 35, 40, 45):  # one box moving right: its centre crosses x=50 of a 100 px frame
        line.update(tracker.update(np.array([[x, 10, x + 20, 30]], float)), 100, 100)
    assert (line.forward, line.backward, len(tracker.tracks)) == (1, 0, 1)
    with pytest.raises(Exception, match="x=0.5"):
        counter.LineCounter("z=3")


@pytest.mark.device
def test_quality_control_accepts_only_confident_target_class(fixtures, tmp_path):
    qc = _example("quality_control")
    log = tmp_path / "qc.csv"
    rows = qc.inspect(str(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite"),
                      str(fixtures / "images"), accept=["cheeseburger"], threshold=0.8, log=str(log))
    verdicts = {r["source"]: r["verdict"] for r in rows}
    assert verdicts["burger.jpg"] == "accept"
    assert [s for s, v in verdicts.items() if v == "accept"] == ["burger.jpg"]
    with open(log) as f:
        assert [r["verdict"] for r in csv.DictReader(f)] == [r["verdict"] for r in rows]
    # a threshold above the burger's score rejects it too
    rows = qc.inspect(str(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite"),
                      str(fixtures / "images" / "burger.jpg"), accept=["cheeseburger"], threshold=0.99)
    assert rows[0]["verdict"] == "reject"


def _tiny_embedder(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    proj = rng.standard_normal((3 * 24 * 24, 128)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=1),   # remove brightness:
         helper.make_node("Sub", ["image", "mean"], ["centred"]),          # cosine ~ pixel correlation
         helper.make_node("Flatten", ["centred"], ["flat"]),
         helper.make_node("MatMul", ["flat", "proj"], ["embedding"])], "embedder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 24, 24])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 128])],
        initializer=[numpy_helper.from_array(proj, "proj")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_door_check_enrolls_and_recognises(fixtures, tmp_path):
    """Wiring of detector -> crops -> embedder -> gallery (save, load, identify).

    The embedder here is a random projection of mean-removed pixels, not a face
    model, so the door camera sees the enrolled photos again, brighter: the same
    face must come back as the same person and the door must stay shut for
    faces nobody enrolled.
    """
    door = _example("door_check")
    embedder = _tiny_embedder(tmp_path / "embedder.onnx")
    image = cv2.imread(str(fixtures / "images" / "faces_group_1.jpg"))
    detector = door.face_detector(str(fixtures / ULTRAFACE))
    faces = sorted(door.face_crops(detector, image), key=lambda c: -c[0].size)[:4]
    detector.close()
    people, camera = tmp_path / "people", tmp_path / "camera"
    camera.mkdir()
    for i, (_, (x1, y1, x2, y2)) in enumerate(faces):
        (people / f"person{i}").mkdir(parents=True)
        photo = image[max(0, y1 - 6):y2 + 6, max(0, x1 - 6):x2 + 6]  # one face per photo
        cv2.imwrite(str(people / f"person{i}" / "a.png"), photo)
        cv2.imwrite(str(camera / f"{i}.png"), cv2.convertScaleAbs(photo, alpha=1.0, beta=8))
    stranger = image[:120, :120]  # no enrolled face there
    cv2.imwrite(str(camera / "9_stranger.png"), stranger)
    pre = {"mean": 127.5, "std": 127.5}      # the tiny embedder is float and states no normalisation
    gallery = door.enroll(str(fixtures / ULTRAFACE), str(embedder), str(people), str(tmp_path / "staff.gallery"),
                          pre)
    assert gallery.names == ("person0", "person1", "person2", "person3")
    events = door.check(str(fixtures / ULTRAFACE), str(embedder), str(tmp_path / "staff.gallery"),
                        str(camera), threshold=0.1, embedder_preprocessing=pre)
    by_frame = {}
    for e in events:
        by_frame.setdefault(e["frame"], []).append(e)
    for i in range(4):
        opened = [e for e in by_frame[i] if e["open"]]  # a neighbour's half face may show, and stays shut
        assert [e["name"] for e in opened] == [f"person{i}"], by_frame.get(i)
        assert opened[0]["distance"] < 0.1
    assert not any(e["open"] for e in by_frame.get(4, []))
