"""``edgecv demo``: the built-in end-to-end job, with no user model or data and no network.

It builds a small image model in-process, exports it to TFLite (fp32, and
int8 with uint8 I/O, calibrated on synthetic images) and ONNX, loads every
artifact with the edgecv runtime, checks that the outputs agree with the
Keras model, and prints the results and per-frame latencies.
Needs the workstation extras: pip install 'edgecv[convert]'.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DESCRIPTION = __doc__
EPILOG = "example:\n  edgecv demo --out demo-out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per artifact (default: 50)")


def _build_model(size: int = 64):
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(4, activation="softmax")(x)
    return tf, keras.Model(inp, out)


def _time(fn, runs: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import edgecv
    from edgecv.atomic import atomic_write
    from edgecv.errors import BackendNotAvailable

    try:
        tf, model = _build_model()
    except ImportError as exc:
        raise BackendNotAvailable("the demo needs the converters; pip install 'edgecv[convert]'") from exc
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    reference = model(images.astype(np.float32), training=False).numpy()

    artifacts = {}
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    artifacts["fp32.tflite"] = conv.convert()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([img[None].astype(np.float32)] for img in images)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    artifacts["int8.tflite"] = conv.convert()
    for name, data in artifacts.items():
        atomic_write(out / f"demo_{name}", data)
    import tf2onnx

    spec = (tf.TensorSpec((1, 64, 64, 3), tf.float32, name="image"),)
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    atomic_write(out / "demo_fp32.onnx", onnx_model.SerializeToString())

    print(f"{'artifact':<20} {'runtime':<24} {'size':>9} {'agree':>6} {'max|d|':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for path in sorted(out.glob("demo_*")):
        with edgecv.load(path) as m:
            agree, worst = 0, 0.0
            for img, ref in zip(images, reference):
                buf = m.input_buffer(0)
                np.copyto(buf, img[None].astype(buf.dtype) if buf.dtype != np.uint8 else img[None])
                got = m.invoke()[0][0]
                agree += int(np.argmax(got) == np.argmax(ref))
                worst = max(worst, float(np.abs(got - ref).max()))
            p50, p99 = _time(m.invoke, args.runs)
            print(f"{path.name:<20} {m.runtime:<24} {m.size_bytes:>9} {agree / len(images):>6.2f} "
                  f"{worst:>8.4f} {p50:>8.3f} {p99:>8.3f}")
    print(f"artifacts written to {out.resolve()}")
    return 0
