"""Conversion figures: time and memory per precision (MobileNetV2), accuracy of the four reference families.

Part 1 converts ``keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)``
to each format and precision with 100 calibration images, each conversion in a fresh subprocess so its
peak memory is its own: wall time of ``converters.convert`` (model built and TensorFlow imported
beforehand) and peak RSS, with the process's RSS just before converting as the baseline; ratios are
against fp32 of the same format in the same run (median over ``--repeats``).

Part 2 trains the four reference families on synthetic shapes, converts each to every precision and
prints the validation tables on held-out synthetic images, then a summary of int8 against float for the
targets: within 1 point of top-1 / mIoU / mAP@0.5, and of TAR@FAR=1e-3 for the embedder.

Part 3 (:mod:`bench.onnx_tflite`) converts ONNX models to TFLite through onnx2tf: MobileNetV2 per precision
beside the Keras route, the real UltraFace models for rpi4 and coral-usb, an embedder to rpi4 int8.

Part 4 (:mod:`bench.convert_int8`) is int8 that keeps its accuracy: the real UltraFace RFB-320 int8 for
jetson-orin (ONNX) and rpi4 (TFLite), F1 against float, convolutions still int8, the recommendation, the
time the per-layer diagnosis and the float fallback loop add.

    python -m bench.convert                 # every part (several minutes on 2 cores; part 3 needs onnx2tf)
    python -m bench.convert --part 1 --repeats 3
    python -m bench.convert --part 3        # ONNX -> TFLite
    python -m bench.convert --part 4 --method auto   # UltraFace int8: per-layer diagnosis, fallback loop
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FORMATS = ("tflite", "onnx")
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
# (training images, epochs, validation images) per family for the accuracy table
FAMILY_BUDGET = {"classification": (4000, 8, 500), "detection": (4000, 16, 500),
                 "segmentation": (3000, 8, 500), "embedding": (4000, 24, 500)}
PRIMARY = {"classification": "top1_accuracy", "detection": "map50", "segmentation": "miou",
           "embedding": "tar_at_far_1e-3"}


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_conversion(fmt: str, precision: str, calibration_images: int) -> dict:
    """Build MobileNetV2, then time one conversion (run in a child process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import converters
    from converters import synthetic

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    calibration = synthetic.make_dataset(calibration_images, seed=1, size=224).images
    model(calibration[:1].astype("float32"))           # build everything lazy before the baseline
    baseline = _rss_mib()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = converters.convert(model, task="classification", target=None, precision=precision, formats=fmt,
                                    calibration=calibration if precision == "int8" else None,
                                    preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"},
                                    output_dir=out, name="mnv2", write_report=False)
        wall = time.perf_counter() - start
        size = result.artifacts[0].size_bytes
    return {"format": fmt, "precision": precision, "wall_s": wall, "peak_rss_mib": _peak_mib(),
            "baseline_rss_mib": baseline, "size_bytes": size}


def part1(repeats: int, calibration_images: int) -> None:
    print(f"== MobileNetV2 224x224 (10 classes, random weights): convert per precision, "
          f"{calibration_images} calibration images (int8), median of {repeats} ==", flush=True)
    rows = []
    for fmt in FORMATS:
        for precision in PRECISIONS:
            runs = []
            for _ in range(repeats):
                cmd = [sys.executable, "-m", "bench.convert", "--one", fmt, precision,
                       "--calibration-images", str(calibration_images)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
                if done.returncode != 0 or not lines:
                    print(f"{fmt} {precision}: FAILED\n{done.stderr[-2000:]}", flush=True)
                    break
                runs.append(json.loads(lines[-1]))
            if runs:
                rows.append({k: (statistics.median(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k])
                             for k in runs[0]})
                r = rows[-1]
                print(f"  {fmt:6s} {precision:8s} {r['wall_s']:7.1f} s  peak {r['peak_rss_mib']:7.0f} MiB "
                      f"(baseline {r['baseline_rss_mib']:5.0f} MiB)  {r['size_bytes'] / 2**20:6.2f} MiB", flush=True)
    print()
    print(f"{'format':7s} {'precision':9s} {'wall s':>7s} {'x fp32':>7s} {'peak MiB':>9s} {'+MiB':>7s} "
          f"{'x fp32':>7s} {'size MiB':>9s} {'x fp32':>7s}")
    for fmt in FORMATS:
        base = next((r for r in rows if r["format"] == fmt and r["precision"] == "fp32"), None)
        for r in (r for r in rows if r["format"] == fmt):
            added = r["peak_rss_mib"] - r["baseline_rss_mib"]
            base_added = (base["peak_rss_mib"] - base["baseline_rss_mib"]) if base else float("nan")
            print(f"{fmt:7s} {r['precision']:9s} {r['wall_s']:7.1f} {r['wall_s'] / base['wall_s'] if base else float('nan'):7.2f} "
                  f"{r['peak_rss_mib']:9.0f} {added:7.0f} {added / base_added if base else float('nan'):7.2f} "
                  f"{r['size_bytes'] / 2**20:9.2f} {r['size_bytes'] / base['size_bytes'] if base else float('nan'):7.2f}")
    print("(+MiB: peak RSS above the process's RSS right before convert(); TensorFlow and the model are in the baseline)")
    print(flush=True)


def part2(scale: float) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import converters
    from converters import reference

    print("== Four reference families on synthetic shapes (64x64): every precision, held-out validation ==",
          flush=True)
    summary = []
    for family, (n, epochs, n_val) in FAMILY_BUDGET.items():
        n, n_val = max(200, int(n * scale)), max(50, int(n_val * scale))
        data = reference.make_data(family, n, seed=100)
        start = time.perf_counter()
        model = reference.train(family, data, epochs=epochs, seed=0)
        train_s = time.perf_counter() - start
        calibration = reference.make_data(family, 200, seed=101).images
        validation = reference.make_data(family, n_val, seed=102)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = converters.convert(model, target=None, calibration=calibration, validation=validation,
                                        output_dir=out, name=family, write_report=False,
                                        **reference.convert_options(family, data))
            convert_s = time.perf_counter() - start
        print(f"\n-- {family}: trained on {n} images x {epochs} epochs in {train_s:.0f} s; 8 artifacts built and "
              f"validated on {n_val} images in {convert_s:.0f} s")
        print(result.report.table(), flush=True)
        report = result.report
        metric = PRIMARY[family]
        float_value = report.artifacts[0].metrics.get(metric)
        for fmt in FORMATS:
            try:
                int8 = report.find(fmt, "int8")
            except KeyError:
                continue
            value = int8.metrics.get(metric)
            summary.append((family, metric, fmt, float_value, value))
            if fmt == "tflite" and not int8.validated:
                # the same full-integer graph with float I/O, so the task can read its outputs
                with tempfile.TemporaryDirectory() as out:
                    floatio = converters.convert(model, target=None, precision="int8", formats="tflite",
                                                 io_dtype="float32", calibration=calibration, validation=validation,
                                                 output_dir=out, name=family, write_report=False,
                                                 **reference.convert_options(family, data))
                row = floatio.report.find("tflite", "int8")
                print(f"{row.name} with float32 I/O (uint8 I/O not validated: {int8.notes[-1][:90]}...): "
                      f"{metric} {100 * row.metrics[metric]:.2f}, size {row.size_bytes} bytes")
                summary.append((family, metric, "tflite (float I/O)", float_value, row.metrics.get(metric)))
    print("\n== int8 against float (target: within 1 point) ==")
    print(f"{'family':15s} {'metric':16s} {'format':18s} {'float %':>8s} {'int8 %':>8s} {'drop':>7s}  within 1 pt")
    for family, metric, fmt, f, q in summary:
        if f is None or q is None:
            print(f"{family:15s} {metric:16s} {fmt:18s} {'-':>8s} {'-':>8s} {'-':>7s}  not validated")
            continue
        drop = 100 * (f - q)
        print(f"{family:15s} {metric:16s} {fmt:18s} {100 * f:8.2f} {100 * q:8.2f} {drop:+7.2f}  "
              f"{'yes' if drop <= 1.0 else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", type=int, choices=(1, 2, 3, 4),
                        help="run only part 1, 2, 3 (ONNX -> TFLite) or 4 (UltraFace int8)")
    parser.add_argument("--method", default="minmax", help="part 4: calibration_method (e.g. auto)")
    parser.add_argument("--repeats", type=int, default=1, help="conversions per precision in part 1 (median)")
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--scale", type=float, default=1.0, help="scale the part 2 data sizes (e.g. 0.5)")
    parser.add_argument("--one", nargs=2, metavar=("FORMAT", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_conversion(args.one[0], args.one[1], args.calibration_images)), flush=True)
        return 0
    if args.part in (None, 1):
        part1(args.repeats, args.calibration_images)
    if args.part in (None, 2):
        part2(args.scale)
    if args.part in (None, 3):
        from bench.onnx_tflite import part3

        part3()
    if args.part in (None, 4):
        from bench.convert_int8 import part4

        part4(args.method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
