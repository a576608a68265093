"""``edgecv run``: run a model on an image, a folder, a video file or a camera."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import EXIT_OK, TASKS, positive_int, thread_count
from .settings_flags import add_settings_arguments

NAME = "run"
HELP = "run a model on an image, folder, video file or camera"
DESCRIPTION = """Run a model on an image, a folder of images, a video file or a camera.

Frames are read on one thread and inferred on another through a bounded queue;
with a camera, when the model is slower than the camera the oldest frame is
dropped (and counted). A source that ends or disconnects ends the run with a
message (a camera is retried a few times first). The summary line on stderr
gives FPS and the preprocess / inference / postprocess split."""

EPILOG = """examples:
  edgecv run det.tflite --task detect --source street.mp4 --save out.mp4
  edgecv run clf.tflite --task classify --source photos/ --json > results.jsonl
  edgecv run seg.onnx --task segment --source 0 --max-frames 300 --save frames/"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv run`` arguments to *parser*."""
    parser.add_argument("model", help="a .tflite or .onnx model")
    parser.add_argument("--task", choices=TASKS, help="what the model does (default: the task the model states)")
    parser.add_argument("--source", required=True,
                        help="image file, folder of images, video file, camera index (0) or /dev/videoN")
    parser.add_argument("--save", help="write overlays: out.jpg (one image), folder/ (one per frame), out.mp4")
    parser.add_argument("--json", action="store_true", help="print one JSON object per frame on stdout")
    parser.add_argument("--target", help="target profile to load for (e.g. rpi4, coral-usb, jetson-orin)")
    parser.add_argument("--backend", choices=("litert", "onnxruntime"), help="override the runtime")
    parser.add_argument("--threads", type=thread_count, help="interpreter threads")
    parser.add_argument("--top-k", type=positive_int, help="classify: number of classes to report")
    parser.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    parser.add_argument("--queue-size", type=positive_int, default=2, help="frames buffered between reader and model")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_settings_arguments(parser)


def make_task(args: argparse.Namespace) -> Any:
    """Load the model into the task object the arguments ask for (``args.task`` is set to the verb used).

    Without ``--task`` the model's stated task is used; the settings flags are laid over what the
    model states for this one run (see :mod:`edgecv.cli.run_settings`).

    Raises:
        ConfigError: no --task and the model states none.
        (and everything :func:`edgecv.load` and the task constructors raise)
    """
    from .run_settings import open_task

    return open_task(args)


def _human_line(frame: Any, result: Any) -> str:
    if hasattr(result, "categories"):
        top = result.categories[0] if result.categories else None
        what = f"{top.label if top.label is not None else top.index} {top.score:.3f}" if top else "nothing above threshold"
    elif hasattr(result, "detections"):
        what = f"{len(result.detections)} detections"
        if result.detections:
            what += ": " + ", ".join(f"{d.label if d.label is not None else d.class_id} {d.score:.2f}"
                                     for d in result.detections[:5])
    elif hasattr(result, "mask"):
        areas = sorted(((a.pixels, a.label if a.label is not None else a.class_id) for a in result.areas), reverse=True)
        what = "classes: " + ", ".join(f"{name} {px}px" for px, name in areas[:4])
    else:
        what = f"embedding of {len(result.vector)} values"
    return f"[{frame.index}] {frame.source}: {what} ({result.timing.total_ms:.1f} ms)"


def run(args: argparse.Namespace) -> int:
    """Run the task over the source: one line (or JSON object) per frame on stdout, the summary on stderr.

    Raises:
        ConfigError: a bad source, ``--save`` path or ``--max-frames``.
        (and everything :func:`make_task` raises)
    """
    from ..errors import ConfigError
    from ..sources import open_source
    from ..streaming import OverlayWriter, json_line, run_on_source

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError("--max-frames must be at least 1")
    source = open_source(args.source)
    try:
        task = make_task(args)
    except BaseException:
        source.close()
        raise
    with task:
        multi = source.frame_count != 1
        writer = OverlayWriter(args.save, multi_frame=multi, fps=source.fps, overwrite=args.force) if args.save else None
        tty = sys.stderr.isatty() and not args.json

        def on_result(frame, result):
            if args.json:
                json_line(frame, args.task, result, sys.stdout)
            else:
                print(_human_line(frame, result), flush=True)

        def progress(n, elapsed):
            if tty and n % 10 == 0:
                print(f"\r{n} frames, {n / elapsed:.1f} FPS", end="", file=sys.stderr, flush=True)

        summary = run_on_source(task, source, on_result=on_result, writer=writer, queue_size=args.queue_size,
                                max_frames=args.max_frames, progress=progress)
    if tty:
        print(file=sys.stderr)
    print(f"edgecv run: {summary.line()}", file=sys.stderr)
    for path in summary.outputs[-1:] if len(summary.outputs) > 3 else summary.outputs:
        print(f"edgecv run: wrote {path}" + (f" (and {len(summary.outputs) - 1} more)" if len(summary.outputs) > 3 else ""),
              file=sys.stderr)
    return EXIT_OK
