"""Is the benchmarking probe honest? Its p50 next to a bare perf_counter loop, measured in the same run.

For each fixture model the probe (``edgecv.bench`` on a loaded Model) and an
independent loop (the runtime's own API, timed with ``time.perf_counter``,
nothing of edgecv in the loop) run in interleaved blocks, so drift of the
machine hits both. Printed: the median over all samples of each, their ratio
(probe / independent; 1.00 is perfectly honest) and the difference per call.

    .venv/bin/python bench/probe_honesty.py [--runs 50] [--repeats 5] [--threads 1]

Models: the uint8 MobileNet v2 classifier (TFLite interpreter ``invoke()``)
and the UltraFace face detector (ONNX Runtime ``InferenceSession.run``,
which allocates its outputs on every call where edgecv's IOBinding does not).
Fixtures come from $EDGECV_FIXTURES or ../shared/fixtures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import edgecv  # noqa: E402
from edgecv.backends.litert import resolve_interpreter  # noqa: E402
from edgecv.benchmark import bench  # noqa: E402

TFLITE = "classification/mobilenet_v2_1.0_224_quant.tflite"
ONNX = "detection/ultraface_rfb_320.onnx"


def fixtures_dir() -> Path:
    env = os.environ.get("EDGECV_FIXTURES")
    path = Path(env) if env else REPO.parent / "shared" / "fixtures"
    if not path.is_dir():
        sys.exit(f"fixtures folder {path} not found; set EDGECV_FIXTURES")
    return path


def tflite_loop(path: Path, threads: int):
    cls, _, runtime = resolve_interpreter()
    interpreter = cls(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(1)
    info = np.iinfo(detail["dtype"])
    interpreter.set_tensor(detail["index"], rng.integers(info.min, int(info.max) + 1, size=detail["shape"],
                                                         dtype=detail["dtype"]))
    return interpreter.invoke, f"{runtime} Interpreter.invoke()"


def onnx_loop(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    node = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in node.shape]
    feed = {node.name: np.random.default_rng(1).uniform(-1, 1, size=shape).astype(np.float32)}
    return (lambda: session.run(None, feed)), f"onnxruntime {ort.__version__} InferenceSession.run()"


def timed(call, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def compare_one(path: Path, make_loop, runs: int, repeats: int, threads: int) -> None:
    model = edgecv.load(path, num_threads=threads)
    call, what = make_loop(path, threads)
    timed(call, 3)
    probe: list[float] = []
    plain: list[float] = []
    for _ in range(repeats):
        plain.extend(timed(call, runs))
        probe.extend(bench(model, runs=runs, warmup=2, progress=False).latencies_ms)
    model.close()
    p, q = statistics.median(probe), statistics.median(plain)
    print(f"{path.name:<36} {p:>10.3f} {q:>12.3f} {p / q:>7.3f} {(p - q) * 1000:>+10.1f}   vs {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="calls per block")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved blocks of each")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    fixtures = fixtures_dir()
    print(f"{args.repeats} interleaved blocks of {args.runs} calls, {args.threads} thread(s); medians over all calls")
    print(f"{'model':<36} {'probe p50':>10} {'plain p50':>12} {'ratio':>7} {'diff us':>10}")
    compare_one(fixtures / TFLITE, tflite_loop, args.runs, args.repeats, args.threads)
    try:
        compare_one(fixtures / ONNX, onnx_loop, args.runs, args.repeats, args.threads)
    except edgecv.BackendNotAvailable as exc:
        print(f"{Path(ONNX).name:<36} skipped: {exc}")


if __name__ == "__main__":
    main()
