"""End-to-end time per frame of edgecv tasks next to a minimal hand-written loop, same run.

For each fixture model the edgecv task (preprocess + inference + postprocess)
and a hand-written loop on the same interpreter type and image (cv2.resize,
cvtColor, set_tensor / run, invoke, get_tensor, numpy top-k or the same NMS)
are timed interleaved, frame by frame; figures are medians. Also printed: the
edgecv split (pre / infer / post medians) and the bytes allocated per frame in
steady state (tracemalloc: the peak above the starting point within a frame,
maximum over frames, and the net growth per frame).

Targets: ratio edgecv / hand-written <= 1.05; allocation < 64 KiB per frame.

    .venv/bin/python -m bench.runtime [--frames 200] [--threads N] [--only TEXT] [--fixtures ../shared/fixtures]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402

import edgecv  # noqa: E402
from edgecv import nms  # noqa: E402
from edgecv.backends.litert import resolve_interpreter  # noqa: E402
from edgecv.tasks.classifier import Classifier  # noqa: E402
from edgecv.tasks.detector import Detector  # noqa: E402

ULTRAFACE_PRE = {"mean": 127.0, "std": 128.0, "color": "rgb"}


# ----------------------------------------------------------------------------- hand-written loops

def _interpreter(model_path: Path, threads: int | None) -> Any:
    interpreter_cls, _, _ = resolve_interpreter()
    kwargs = {"num_threads": threads} if threads is not None else {}
    interp = interpreter_cls(model_path=str(model_path), **kwargs)
    interp.allocate_tensors()
    return interp


def hand_classifier(model_path: Path, threads: int | None) -> Callable[[np.ndarray], Any]:
    interp = _interpreter(model_path, threads)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    h, w = int(inp["shape"][1]), int(inp["shape"][2])
    scale, zero = out["quantization"]

    def run(image: np.ndarray) -> list[tuple[int, float]]:
        x = cv2.cvtColor(cv2.resize(image, (w, h)), cv2.COLOR_BGR2RGB)
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        q = interp.get_tensor(out["index"])[0]
        top = np.argpartition(q, -5)[-5:]
        top = top[np.argsort(-q[top])]
        return list(zip(top.tolist(), ((q[top].astype(np.float32) - zero) * scale).tolist()))

    return run


def hand_ssd(model_path: Path, threshold: float, threads: int | None) -> Callable[[np.ndarray], Any]:
    interp = _interpreter(model_path, threads)
    inp = interp.get_input_details()[0]
    outs = [d["index"] for d in interp.get_output_details()]
    h, w = int(inp["shape"][1]), int(inp["shape"][2])

    def run(image: np.ndarray) -> list:
        ih, iw = image.shape[:2]
        x = cv2.cvtColor(cv2.resize(image, (w, h)), cv2.COLOR_BGR2RGB)
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        boxes, classes, scores, count = (interp.get_tensor(i) for i in outs)
        n = int(count[0])
        keep = scores[0, :n] > threshold
        b = boxes[0, :n][keep] * np.array([ih, iw, ih, iw], np.float32)
        b = np.clip(b[:, [1, 0, 3, 2]], 0, [iw, ih, iw, ih])
        return list(zip(b.tolist(), scores[0, :n][keep].tolist(), classes[0, :n][keep].astype(int).tolist()))

    return run


def hand_ultraface(model_path: Path, priors: np.ndarray | None, threads: int | None) -> Callable[[np.ndarray], Any]:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(image: np.ndarray) -> list:
        ih, iw = image.shape[:2]
        x = cv2.cvtColor(cv2.resize(image, (320, 240)), cv2.COLOR_BGR2RGB).astype(np.float32)
        x = ((x - 127.0) / 128.0).transpose(2, 0, 1)[None]
        scores, boxes = session.run(None, {name: x})
        face = scores[0, :, 1]
        m = face > 0.7
        b, s = boxes[0][m], face[m]
        if priors is not None:  # raw offsets (cx, cy, w, h) with variances 0.1 / 0.2
            p = priors[m]
            cx = b[:, 0] * 0.1 * p[:, 2] + p[:, 0]
            cy = b[:, 1] * 0.1 * p[:, 3] + p[:, 1]
            bw = np.exp(b[:, 2] * 0.2) * p[:, 2]
            bh = np.exp(b[:, 3] * 0.2) * p[:, 3]
            b = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        keep = nms(b, s, iou_threshold=0.3, max_output=100)
        out = np.clip(b[keep] * np.array([iw, ih, iw, ih]), 0, [iw, ih, iw, ih])
        return list(zip(out.tolist(), s[keep].tolist()))

    return run


# ----------------------------------------------------------------------------- measuring

def interleaved(task: Callable, hand: Callable, image: np.ndarray, frames: int, warmup: int = 20):
    for _ in range(warmup):
        task(image)
        hand(image)
    task_ms, hand_ms, split = [], [], []
    clock = time.perf_counter
    gc.collect()
    for i in range(frames):
        first, second = (task, hand) if i % 2 == 0 else (hand, task)
        for fn in (first, second):
            t0 = clock()
            result = fn(image)
            dt = (clock() - t0) * 1e3
            if fn is task:
                task_ms.append(dt)
                split.append((result.timing.preprocess_ms, result.timing.inference_ms, result.timing.postprocess_ms))
            else:
                hand_ms.append(dt)
    parts = [statistics.median(p[k] for p in split) for k in range(3)]
    return statistics.median(task_ms), statistics.median(hand_ms), parts


def allocation(fn: Callable, image: np.ndarray, frames: int = 50) -> tuple[int, float]:
    """(max transient peak within one frame, net growth per frame), bytes."""
    for _ in range(10):
        fn(image)
    gc.collect()
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    worst = 0
    for _ in range(frames):
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn(image)
        _, peak = tracemalloc.get_traced_memory()
        worst = max(worst, peak - before)
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return worst, (end - start) / frames


def ultraface_priors():
    from edgecv.anchors import AnchorSpec

    return AnchorSpec.ultraface().generate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200, help="timed frames per side (medians)")
    parser.add_argument("--fixtures", default=os.environ.get("EDGECV_FIXTURES", str(REPO.parent / "shared" / "fixtures")))
    parser.add_argument("--only", help="run only cases whose name contains this text")
    parser.add_argument("--threads", type=int, help="interpreter threads for both sides (default: the runtime's)")
    args = parser.parse_args()
    fx = Path(args.fixtures)
    if not fx.is_dir():
        sys.exit(f"fixtures folder {fx} not found; pass --fixtures")
    t = args.threads
    faces = cv2.imread(str(fx / "images" / "faces_group_1.jpg"))
    cases = [
        ("classify mobilenet_v2 quant (tflite)", cv2.imread(str(fx / "images" / "cat.bmp")),
         lambda: Classifier(fx / "classification" / "mobilenet_v2_1.0_224_quant.tflite", num_threads=t),
         lambda: hand_classifier(fx / "classification" / "mobilenet_v2_1.0_224_quant.tflite", t)),
        ("detect SSD mobilenet quant + postprocess op (tflite)", cv2.imread(str(fx / "images" / "cats_and_dogs.jpg")),
         lambda: Detector(fx / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite", score_threshold=0.3,
                          num_threads=t),
         lambda: hand_ssd(fx / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite", 0.3, t)),
        ("detect UltraFace RFB decoded + NMS (onnx)", faces,
         lambda: Detector(fx / "detection" / "ultraface_rfb_320.onnx", preprocessing=ULTRAFACE_PRE, form="decoded",
                          box_format="xyxy", score_activation="none", background_class=0, score_threshold=0.7,
                          iou_threshold=0.3, num_threads=t),
         lambda: hand_ultraface(fx / "detection" / "ultraface_rfb_320.onnx", None, t)),
        ("detect UltraFace slim raw + anchors + NMS (onnx)", faces,
         lambda: Detector(fx / "detection" / "ultraface_slim_320_raw.onnx", preprocessing=ULTRAFACE_PRE,
                          background_class=0, score_activation="none", score_threshold=0.7, iou_threshold=0.3,
                          anchors=ultraface_priors(),
                          box_coder={"convention": "center_variance", "variances": [0.1, 0.2]}, num_threads=t),
         lambda: hand_ultraface(fx / "detection" / "ultraface_slim_320_raw.onnx",
                                np.asarray(ultraface_priors(), np.float32), t)),
    ]
    print(f"edgecv {edgecv.__version__}; python {sys.version.split()[0]}; numpy {np.__version__}; "
          f"opencv {cv2.__version__}; threads {t if t is not None else 'runtime default'}; {args.frames} frames per side, "
          "interleaved; medians in ms")
    header = (f"{'case':<52} {'edgecv':>8} {'hand':>8} {'ratio':>6} {'pre':>7} {'infer':>7} {'post':>7} "
              f"{'peak B/frame':>13} {'net B/frame':>12} {'hand peak B':>12}")
    print(header)
    for name, image, make_task, make_hand in cases:
        if args.only is not None and args.only not in name:
            continue
        task, hand = make_task(), make_hand()
        e, h, (pre, inf, post) = interleaved(task, hand, image, args.frames)
        peak, net = allocation(task, image)
        hand_peak, _ = allocation(hand, image)
        print(f"{name:<52} {e:>8.3f} {h:>8.3f} {e / h:>6.3f} {pre:>7.3f} {inf:>7.3f} {post:>7.3f} "
              f"{peak:>13d} {net:>12.1f} {hand_peak:>12d}", flush=True)
        task.close()


if __name__ == "__main__":
    main()
