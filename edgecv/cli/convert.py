"""``edgecv convert``: quantize and export a model for a target, validate every artifact, recommend one."""

from __future__ import annotations

import argparse

from .common import EXIT_NEGATIVE, EXIT_OK, TASKS, accuracy_points, comma_floats, import_converters, print_json

NAME = "convert"
HELP = "quantize and export a model for a target, validate every artifact"
DESCRIPTION = """Convert a Keras model (.keras/.h5), a SavedModel folder or an ONNX model for a target:
build every artifact the target's recipe names (TFLite fp32/fp16/dynamic/int8, ONNX
fp32/fp16/int8 QDQ/dynamic), calibrate int8 on your images through the runtime's own
preprocessing, validate every artifact against the float model on held-out images,
and recommend the smallest one within the accuracy budget.

Exit status: 0 an artifact is recommended, 1 none is within the budget,
2 usage, 3 conversion error (nothing partial is left behind)."""

EPILOG = """examples:
  edgecv convert model.keras --task classify --target rpi4 --calibration calib/ --validation val/ \\
      --labels labels.txt --mean 127.5 --std 127.5 --out out/rpi4
  edgecv convert detector.onnx --task detect --target jetson-orin --calibration calib/ --out out/jetson"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv convert`` arguments to *parser*."""
    parser.add_argument("model", help="a .keras/.h5 file, a SavedModel folder, or an .onnx file")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--target", default="cpu", help="target profile (default: cpu); see edgecv targets")
    parser.add_argument("--precision", help="comma-separated subset: fp32,fp16,dynamic,int8 (default: the target's)")
    parser.add_argument("--format", dest="formats", help="tflite or onnx (default: the target's)")
    parser.add_argument("--calibration", help="folder of 100-500 representative images (needed for int8)")
    parser.add_argument("--validation", help="folder of held-out images (must differ from calibration)")
    parser.add_argument("--labels", help="label file, one class per line")
    parser.add_argument("--mean", type=comma_floats,
                        help="per-channel mean on 0-255 pixels, e.g. 127.5 or 123.7,116.3,103.5")
    parser.add_argument("--std", type=comma_floats, help="per-channel std on 0-255 pixels, e.g. 127.5")
    parser.add_argument("--color", choices=("rgb", "bgr", "gray"), help="channel order the model expects")
    parser.add_argument("--resize", choices=("stretch", "letterbox"), help="how images are fitted to the input")
    parser.add_argument("--io-dtype", choices=("uint8", "int8", "float32"), help="I/O type of full-int8 TFLite")
    parser.add_argument("--calibration-method", default="minmax", choices=("minmax", "entropy", "percentile", "auto"),
                        help="ONNX int8 calibration (auto: try each, keep the best on validation)")
    parser.add_argument("--no-float-fallback", dest="float_fallback", action="store_false",
                        help="int8 that misses the budget: report its worst layers, keep none in float")
    parser.add_argument("--max-float-share", type=float, default=0.5,
                        help="the fallback loop keeps at most this share of the int8 layers in float (default 0.5)")
    parser.add_argument("--budget", type=accuracy_points, default=1.0,
                        help="allowed accuracy drop in points for the recommendation (default 1)")
    parser.add_argument("--out", default="edgecv-out", help="output folder (default: edgecv-out)")
    parser.add_argument("--name", help="stem of the artifact file names")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Convert, print the report (table or JSON) and return 0 when an artifact is recommended, else 1.

    Raises:
        BackendNotAvailable: the workstation extras (tensorflow, tf2onnx, onnx) are not installed.
        (and everything :func:`converters.convert` raises)
    """
    converters = import_converters("converting needs the workstation extras; pip install 'edgecv[convert]'")
    preprocessing = {k: v for k, v in (("mean", args.mean), ("std", args.std), ("color", args.color),
                                       ("resize", args.resize)) if v is not None}
    result = converters.convert(
        args.model, task=args.task, target=args.target,
        precision=args.precision.split(",") if args.precision else None,
        formats=args.formats, calibration=args.calibration, validation=args.validation, labels=args.labels,
        preprocessing=preprocessing or None, output_dir=args.out, overwrite=args.force, io_dtype=args.io_dtype,
        calibration_method=args.calibration_method, accuracy_budget=args.budget, name=args.name,
        float_fallback=args.float_fallback, max_float_share=args.max_float_share)
    report = result.report
    if args.json:
        print_json(result.to_dict(), indent=1, default=str)
    else:
        print(report.table())
        for artifact in result.artifacts:
            print(f"wrote {artifact.path}")
        print(f"ship: {report.recommended}  ({report.recommendation})" if report.recommended
              else f"no artifact to ship: {report.recommendation}")
    return EXIT_OK if report.recommended else EXIT_NEGATIVE
