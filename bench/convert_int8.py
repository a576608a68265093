"""Part 4 of ``bench.convert``: the real UltraFace RFB-320 in int8, with the per-layer diagnosis and the fallback loop.

Calibration: 60 random crops of ``faces_group_1.jpg``; validation: ``faces_group_26.jpg`` (another photo, never
calibrated on). Prints, per target: detection F1 against the float model's detections (one-to-one matching at
IoU >= 0.5, the conversion report's ``detection_f1``), the share of convolutions still int8, whether that artifact
is the recommended one, and the time the loop added. jetson-orin builds ONNX QDQ int8; rpi4 builds TFLite int8
through onnx2tf (it prints why it was skipped when onnx2tf is not installed).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

HEAD = {"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none",
        "background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3, "max_detections": 200}
TARGETS = ("jetson-orin", "rpi4")




def _fixtures() -> Path:
    return Path(os.environ.get("EDGECV_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"))


def part4(method: str = "minmax") -> None:
    import converters
    import edgecv
    from converters.calibration import random_crops
    from edgecv.errors import EdgeCVError

    fx = _fixtures()
    model = fx / "detection" / "ultraface_rfb_320.onnx"
    calibration = random_crops(edgecv.read_image(fx / "images" / "faces_group_1.jpg"), 60, aspect=0.75)
    validation = [edgecv.read_image(fx / "images" / "faces_group_26.jpg")]
    print(f"== UltraFace RFB-320 int8 (calibration_method={method}): 60 crops of faces_group_1 calibrate, "
          "faces_group_26 validates ==", flush=True)
    for target in TARGETS:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            try:
                result = converters.convert(model, task="detection", target=target, precision="int8",
                                            calibration=calibration, validation=validation,
                                            preprocessing={"mean": 127, "std": 128, "color": "rgb"}, head=HEAD,
                                            labels=["face"], output_dir=out, name="ultraface",
                                            calibration_method=method, write_report=False)
            except EdgeCVError as exc:
                print(f"{target}: skipped: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            total = time.perf_counter() - start
        report = result.report
        int8 = next(a for a in report.artifacts if a.precision == "int8" and not a.reference)
        loop_s = sum(step.get("seconds", 0.0) for step in int8.fallback)
        delegate = int8.delegate or {}
        print(report.table())
        print(f"{target}: {int8.name}: detection F1 vs float {100 * int8.metrics.get('detection_f1', float('nan')):.2f} "
              f"(budget {report.budget_points:g} point), int8 convolutions {delegate.get('int8_convolutions')}, "
              f"recommended: {'yes' if report.recommended == int8.name else 'no'} ({report.recommended}), "
              f"kept float: {len(int8.kept_float)} node(s), loop added {loop_s:.1f} s and the per-layer diagnosis "
              f"{(int8.quant_debug or {}).get('seconds', 0.0):.1f} s of {total:.1f} s", flush=True)
