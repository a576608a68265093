"""ONNX -> TFLite figures (``python -m bench.convert --part 3``): conversion time beside the Keras route, and accuracy.

1. MobileNetV2 224x224 (random weights): ``converters.convert`` to TFLite per precision from the Keras model
   and from its ONNX export (tf2onnx, made beforehand); the ONNX rows include onnx2tf's translation.
2. The real PyTorch-exported UltraFace models: RFB-320 (decoded boxes) to rpi4 fp32 and slim-320 (raw) to
   coral-usb int8 (uint8 I/O), calibrated on crops of faces_group_1.jpg and validated on faces_group_26.jpg:
   time, faces found by the ONNX model and the artifact, parity of the fp32 raw outputs.
3. An embedder to rpi4 int8: there is no real pretrained face embedder among the fixtures, and torch is not
   part of the workstation environment, so this is the reference embedder (Keras, trained on synthetic
   shapes, identities disjoint from calibration) exported to ONNX and converted from that ONNX: a check of
   the route, not a face-recognition figure.

Needs the onnx2tf tool environment (``make onnx2tf`` or ``EDGECV_ONNX2TF``) and the fixtures
(``EDGECV_FIXTURES`` or ``../shared/fixtures``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

PRE_MNV2 = {"mean": 127.5, "std": 127.5, "color": "rgb"}
PRE_UF = {"mean": 127, "std": 128, "color": "rgb"}
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")


def _fixtures() -> Path:
    env = os.environ.get("EDGECV_FIXTURES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _timed(model, **kwargs):
    import converters

    start = time.perf_counter()
    result = converters.convert(model, write_report=False, **kwargs)
    return result, time.perf_counter() - start


def mobilenet_rows(calibration_images: int = 100) -> None:
    """Keras -> TFLite and ONNX -> TFLite wall time per precision (MobileNetV2)."""
    import keras

    import converters
    from converters import synthetic

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    calibration = synthetic.make_dataset(calibration_images, seed=1, size=224).images
    print(f"== MobileNetV2 224x224: TFLite per precision from Keras and from ONNX ({calibration_images} "
          "calibration images for int8) ==", flush=True)
    with tempfile.TemporaryDirectory() as out:
        onnx_path = converters.convert(model, task="classification", target=None, precision="fp32", formats="onnx",
                                       preprocessing=PRE_MNV2, output_dir=out, name="mnv2").artifacts[0].path
        print(f"{'precision':9s} {'Keras s':>8s} {'ONNX s':>8s}  ONNX fp32 parity / onnx2tf time", flush=True)
        for precision in PRECISIONS:
            common = dict(task="classification", target=None, precision=precision, formats="tflite",
                          calibration=calibration if precision == "int8" else None, preprocessing=PRE_MNV2)
            _, keras_s = _timed(model, output_dir=Path(out) / f"k{precision}", **common)
            result, onnx_s = _timed(onnx_path, output_dir=Path(out) / f"o{precision}", **common)
            print(f"{precision:9s} {keras_s:8.1f} {onnx_s:8.1f}  {_translation_note(result)}", flush=True)


def _translation_note(result) -> str:
    notes = [n for a in result.report.artifacts for n in a.notes if "onnx2tf" in n]
    return notes[0].split(";")[0] if notes else ""


def ultraface_rows() -> None:
    """The UltraFace models: rpi4 fp32 and coral-usb int8, time, faces and parity."""
    import edgecv
    from converters.calibration import random_crops
    from edgecv.anchors import AnchorSpec

    fixtures = _fixtures()
    calibration = random_crops(edgecv.read_image(fixtures / "images" / "faces_group_1.jpg"), 60, aspect=0.75)
    photo = edgecv.read_image(fixtures / "images" / "faces_group_26.jpg")
    decoded = {"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none",
               "background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3, "max_detections": 200}
    raw = {"background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3,
           "box_coder": {"convention": "center_variance", "variances": [0.1, 0.2]}}
    runs = [("ultraface_rfb_320.onnx", "rpi4", "fp32", {"head": decoded}),
            ("ultraface_rfb_320.onnx", "coral-usb", "int8", {"head": decoded}),
            ("ultraface_slim_320_raw.onnx", "rpi4", "fp32", {"head": raw, "anchors": AnchorSpec.ultraface(320)}),
            ("ultraface_slim_320_raw.onnx", "coral-usb", "int8", {"head": raw, "anchors": AnchorSpec.ultraface(320)})]
    print("\n== UltraFace (PyTorch -> ONNX) -> TFLite: faces on faces_group_26.jpg (score 0.7, IoU 0.3) ==")
    print(f"{'model':28s} {'target':10s} {'prec':5s} {'total s':>8s} {'faces':>6s} {'F1 vs fp32':>10s} "
          f"{'max|diff|':>10s}  translation", flush=True)
    for name, target, precision, extra in runs:
        with tempfile.TemporaryDirectory() as out:
            result, seconds = _timed(fixtures / "detection" / name, task="detection", target=target,
                                     precision=precision, calibration=calibration, validation=[photo],
                                     preprocessing=PRE_UF, labels=["face"], output_dir=out, name="uf", **extra)
            row = result.report.artifacts[-1]
            with edgecv.Detector(result.artifacts[-1].path) as det:
                faces = len(det.detect(photo).detections)
            print(f"{name:28s} {target:10s} {precision:5s} {seconds:8.1f} {faces:6d} "
                  f"{100 * row.metrics.get('detection_f1', float('nan')):10.2f} {result.report.artifacts[0].max_abs_diff:10.2g}"
                  f"  {_translation_note(result)}", flush=True)




def embedder_rows(scale: float = 0.5) -> None:
    """The reference embedder via ONNX to rpi4 int8: TAR@FAR=1e-3 against its float ONNX (not a face model)."""
    import converters
    from converters import reference

    family = "embedding"
    data = reference.make_data(family, max(200, int(4000 * scale)), seed=100)
    model = reference.train(family, data, epochs=24, seed=0)
    calibration = reference.make_data(family, 200, seed=101).images
    validation = reference.make_data(family, max(50, int(500 * scale)), seed=102)
    options = reference.convert_options(family, data)
    print("\n== Embedder (NOT a real pretrained face embedder: the reference Keras embedder on synthetic shapes, "
          "exported to ONNX) -> rpi4 TFLite ==", flush=True)
    with tempfile.TemporaryDirectory() as out:
        onnx_path = converters.convert(model, target=None, precision="fp32", formats="onnx", output_dir=out,
                                       name="emb", **options).artifacts[0].path
        result, seconds = _timed(onnx_path, target="rpi4", precision=["fp32", "int8"], calibration=calibration,
                                 validation=validation, output_dir=Path(out) / "rpi4", name="emb", **options)
    print(result.report.table())
    print(f"converted in {seconds:.1f} s ({_translation_note(result)})", flush=True)


def part3() -> None:
    """Every table above."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from converters.onnx_translate import require_onnx2tf

    tool = require_onnx2tf()
    print(f"onnx2tf {tool.version()} at {tool.executable} ({tool.how})", flush=True)
    mobilenet_rows()
    ultraface_rows()
    embedder_rows()
