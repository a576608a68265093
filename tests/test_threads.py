"""Threads: one Model or task hammered from 4 threads gives the right result or InferenceError, never anything else;
one Model or task per thread (the documented pattern) gives the right results from 4 threads at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import cv2
import numpy as np
import pytest

import edgecv
from edgecv.tasks import Classifier, Detector, Embedder, Segmenter
from tests.reliability.tiny_models import onnx_embedder

pytestmark = pytest.mark.device

THREADS = 4
CLASSIFIER = "classification/mobilenet_v1_0.25_224_float.tflite"
MINUS_ONE_TO_ONE = {"mean": 127.5, "std": 127.5}       # the float models here state no normalisation


def _hammer(work, rounds: int) -> list[Counter]:
    """Run ``work(thread_index)`` *rounds* times on each of 4 threads started together; count the outcomes."""
    barrier = threading.Barrier(THREADS)
    counts = [Counter() for _ in range(THREADS)]

    def loop(i: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            try:
                counts[i][work(i)] += 1
            except edgecv.InferenceError as exc:
                counts[i]["busy" if _busy(exc) else f"InferenceError: {exc}"] += 1
            except BaseException as exc:  # noqa: BLE001 - the test is about which exceptions escape
                counts[i][f"{type(exc).__name__}: {exc}"] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def _busy(exc: Exception) -> bool:
    """The "used from another thread at the same moment" InferenceError, naming the fix (one per thread)."""
    text = str(exc)
    return ("another thread" in text or "two threads at once" in text) and "per thread" in text


def _check(counts: list[Counter]) -> None:
    total = sum(counts, Counter())
    assert set(total) <= {"right", "busy"}, total            # never a wrong result, never another exception
    assert total["right"] > 0 and total["busy"] > 0, counts  # calls got through, and the threads really collided


def _slow_invoke(model: edgecv.Model, monkeypatch, delay_s: float = 0.003) -> None:
    """Make every inference last a few ms so the 4 threads surely overlap, however fast the model is."""
    backend = model._backend
    invoke = backend.invoke

    def slow() -> None:
        time.sleep(delay_s)
        invoke()

    monkeypatch.setattr(backend, "invoke", slow)


def _photos(fixtures) -> list[np.ndarray]:
    names = ["cat.bmp", "grace_hopper.bmp", "burger.jpg", "cats_and_dogs.jpg"]
    return [cv2.resize(cv2.imread(str(fixtures / "images" / n)), (200, 150)) for n in names]


def test_one_model_hammered_from_4_threads(fixtures, monkeypatch):
    with edgecv.load(fixtures / CLASSIFIER, num_threads=1) as model:
        rng = np.random.default_rng(0)
        inputs = [rng.uniform(-1, 1, model.inputs[0].shape).astype(np.float32) for _ in range(THREADS)]
        expected = [model.run(x, copy=True)[0] for x in inputs]
        assert not np.array_equal(expected[0], expected[1])
        _slow_invoke(model, monkeypatch)

        def work(i: int) -> str:
            out = model.run(inputs[i], copy=True)[0]
            return "right" if np.array_equal(out, expected[i]) else "wrong"

        _check(_hammer(work, 150))


def test_run_copies_in_and_invokes_as_one_step(fixtures):
    """Before the fix, two threads' run() could interleave (copy A, copy B, invoke A) and A got B's result."""
    with edgecv.load(fixtures / CLASSIFIER, num_threads=1) as model:
        x = np.zeros(model.inputs[0].shape, np.float32)
        first = model.run(x, copy=True)[0]
        out = model.run(x)[0]
        assert out is model.run(x)[0]                 # without copy: the reused buffer
        copied = model.run(x, copy=True)[0]
        assert copied is not out and np.array_equal(copied, first)


def _task_cases(fixtures, tmp_path):
    embedder_path = tmp_path / "embedder.onnx"
    embedder_path.write_bytes(onnx_embedder())
    return {
        "classify": lambda: Classifier(fixtures / CLASSIFIER, num_threads=1, preprocessing=MINUS_ONE_TO_ONE),
        "detect": lambda: Detector(fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite",
                                   score_threshold=0.3, num_threads=1),
        "segment": lambda: Segmenter(fixtures / "segmentation" / "deeplabv3_257_float.tflite", num_threads=1),
        "embed": lambda: Embedder(embedder_path, num_threads=1, preprocessing=MINUS_ONE_TO_ONE),
    }


def _values(result):
    if hasattr(result, "categories"):
        return [(c.index, c.score) for c in result.categories]
    if hasattr(result, "detections"):
        return [(d.class_id, d.score, d.box.to_dict()) for d in result.detections]
    if hasattr(result, "mask"):
        return result.mask.tobytes()
    return np.asarray(result.vector).tobytes()


@pytest.mark.parametrize("name", ["classify", "detect", "segment", "embed"])
def test_one_task_hammered_from_4_threads(fixtures, tmp_path, name, monkeypatch):
    photos = _photos(fixtures)
    with _task_cases(fixtures, tmp_path)[name]() as task:
        call = getattr(task, name)
        expected = [_values(call(p)) for p in photos]
        assert len({str(e) for e in expected}) > 1
        _slow_invoke(task.model, monkeypatch)

        def work(i: int) -> str:
            return "right" if _values(call(photos[i])) == expected[i] else "wrong"

        _check(_hammer(work, 25))


@pytest.mark.parametrize("name", ["classify", "detect", "segment", "embed"])
def test_one_task_per_thread_is_right_from_4_threads_at_once(fixtures, tmp_path, name):
    """The documented pattern: each thread loads its own task (threading.local), no errors, all results right."""
    photos = _photos(fixtures)
    make = _task_cases(fixtures, tmp_path)[name]
    with make() as reference:
        expected = [_values(getattr(reference, name)(p)) for p in photos]
    local = threading.local()
    made = []

    def work(i: int) -> str:
        if not hasattr(local, "task"):
            local.task = make()
            made.append(local.task)
        return "right" if _values(getattr(local.task, name)(photos[i])) == expected[i] else "wrong"

    counts = _hammer(work, 10)
    for task in made:
        task.close()
    assert len(made) == THREADS
    assert sum(counts, Counter()) == Counter(right=THREADS * 10)


def test_one_model_per_thread_is_right_from_4_threads_at_once(fixtures):
    rng = np.random.default_rng(1)
    with edgecv.load(fixtures / CLASSIFIER) as reference:
        inputs = [rng.uniform(-1, 1, reference.inputs[0].shape).astype(np.float32) for _ in range(THREADS)]
        expected = [reference.run(x, copy=True)[0] for x in inputs]
    models = [edgecv.load(fixtures / CLASSIFIER, num_threads=1) for _ in range(THREADS)]
    try:
        def work(i: int) -> str:
            return "right" if np.array_equal(models[i].run(inputs[i])[0], expected[i]) else "wrong"

        assert sum(_hammer(work, 40), Counter()) == Counter(right=THREADS * 40)
    finally:
        for m in models:
            m.close()


def test_close_while_other_threads_invoke_never_crashes(fixtures):
    """close() waits for a call in flight; later calls get 'closed', never a crash or another exception."""
    model = edgecv.load(fixtures / CLASSIFIER, num_threads=1)
    x = np.zeros(model.inputs[0].shape, np.float32)
    started = threading.Event()
    outcomes = Counter()
    lock = threading.Lock()

    def loop() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                model.run(x)
                started.set()
                key = "ran"
            except edgecv.InferenceError as exc:
                key = "closed" if "closed" in str(exc) else ("busy" if _busy(exc) else str(exc))
            except BaseException as exc:  # noqa: BLE001
                key = f"{type(exc).__name__}: {exc}"
            with lock:
                outcomes[key] += 1
            if key != "ran" and key != "busy":
                return

    threads = [threading.Thread(target=loop) for _ in range(THREADS)]
    for t in threads:
        t.start()
    assert started.wait(30)
    model.close()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"ran", "busy", "closed"}, outcomes
    assert outcomes["closed"] == THREADS, outcomes  # every thread ran into the closed model, none crashed
