"""``edgecv demo``: the built-in end-to-end job, with no user model or data and no network.

For each of the four families (classifier, SSD detector, segmenter, embedder)
it generates the synthetic "shapes" data, trains the reference model,
converts it for the cpu, rpi4, coral-usb and jetson-orin targets, validates
every artifact against the float model on held-out data, checks each against
its target, benchmarks every artifact that can run on this host, runs the
task on sample images and saves overlays, and writes ``report.md`` and
``report.html`` with the tables, latency plots and overlays.
Needs the workstation extras: pip install 'edgecv[all]'.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from ..task_registry import get_task
from .common import EXIT_OK, import_converters

NAME = "demo"
HELP = "run the built-in end-to-end demo (train, convert, validate, benchmark, report)"
DESCRIPTION = __doc__
EPILOG = """examples:
  edgecv demo                      # full run into demo-out/ (about 10 minutes on 2 cores)
  edgecv demo --quick --out /tmp/d # fewer images and epochs (a couple of minutes)"""

FAMILIES = ("classification", "detection", "segmentation", "embedding")   # the reference models the demo trains
TARGETS = ("cpu", "rpi4", "coral-usb", "jetson-orin")
TITLES = {"classification": "Classifier (MobileNet-style)", "detection": "SSD-lite detector",
          "segmentation": "Segmenter (encoder-decoder)", "embedding": "Embedder (FaceNet-style, triplet loss)"}
VERDICT_METRIC = {"classification": "top-1", "detection": "mAP@0.5", "segmentation": "mIoU",
                  "embedding": "TAR@FAR=1e-3"}

log = logging.getLogger("edgecv")


@dataclass(frozen=True)
class Settings:
    """How much work the demo does: training images and epochs per family, then the rest."""

    training: dict
    calibration_images: int
    validation_images: int
    bench_runs: int
    bench_warmup: int
    overlays: int


# enough training for credible models (top-1 ~96 %, mAP@0.5 ~86 %, mIoU ~88 %, TAR@FAR=1e-3 ~70 % per
# bench/convert.py) in a few minutes on 2 cores
FULL = Settings(training={"classification": (4000, 8), "detection": (4000, 16), "segmentation": (3000, 8),
                          "embedding": (4000, 24)},
                calibration_images=200, validation_images=300, bench_runs=100, bench_warmup=10, overlays=3)
QUICK = Settings(training={"classification": (240, 2), "detection": (240, 3), "segmentation": (240, 2),
                           "embedding": (240, 4)},
                 calibration_images=24, validation_images=40, bench_runs=15, bench_warmup=3, overlays=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv demo`` arguments to *parser*."""
    parser.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    parser.add_argument("--quick", action="store_true", help="fewer images, epochs and runs (for tests)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of " + ",".join(FAMILIES))
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of " + ",".join(TARGETS))


class Progress:
    """Numbered progress lines on stderr with elapsed time."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done:>2}/{self.total}] {time.perf_counter() - self.start:6.1f}s  {text}", file=sys.stderr,
              flush=True)


def _check_summary(path: str, target: str) -> str:
    import targets

    report = targets.check(path, target)
    if report.errors:
        return f"{len(report.errors)} errors"
    return f"{len(report.warnings)} warnings" if report.warnings else "ok"


def _runs_here(artifact: Any) -> bool:
    return not getattr(artifact, "edgetpu", False) and not str(artifact.path).endswith("_edgetpu.tflite")


def _overlay(family: str, model_path: str, images: Any, out_dir: Path, count: int) -> list[Path]:
    import cv2
    import numpy as np

    from .. import tasks
    from ..atomic import atomic_write
    from ..streaming import render

    paths = []
    with tasks.task_class(family)(model_path) as task:
        for i in range(count):
            image = cv2.resize(np.ascontiguousarray(images[i]), (256, 256), interpolation=cv2.INTER_NEAREST)
            result = task(image)
            overlay = render(result, image)
            ok, data = cv2.imencode(".jpg", overlay)
            if ok:
                paths.append(atomic_write(out_dir / f"overlay_{i}.jpg", data.tobytes(), overwrite=True))
    return paths


def _family(family: str, settings: Settings, target_names: list[str], out: Path, progress: Progress) -> Any:
    import numpy as np

    import converters
    from converters import reference

    from ..benchmark import compare
    from ..benchmark import plot as plot_latency
    from .demo_report import ArtifactRow, FamilyReport

    fam_dir = out / family
    fam_dir.mkdir(parents=True, exist_ok=True)
    n_train, epochs = settings.training[family]
    progress.step(f"{family}: generating shapes data and training the reference model "
                  f"({n_train} images, {epochs} epochs)")
    train = reference.make_data(family, n_train, seed=0)
    calibration = reference.make_data(family, settings.calibration_images, seed=1)
    validation = reference.make_data(family, settings.validation_images, seed=2)
    model = reference.train(family, train, epochs=epochs)
    options = reference.convert_options(family, train)

    results = {}
    for target in target_names:
        progress.step(f"{family}: converting and validating for {target}")
        results[target] = converters.convert(model, target=target, calibration=calibration.images,
                                             validation=validation, output_dir=fam_dir / target, overwrite=True,
                                             name=f"{family}_{target.replace('-', '_')}", **options)

    progress.step(f"{family}: checking every artifact against its target and benchmarking it on this host")
    runnable = {}
    for result in results.values():
        for art in result.artifacts:
            if _runs_here(art):
                runnable.setdefault(art.sha256, art.path)
    unique = list(runnable.items())
    reports = compare([p for _, p in unique], runs=settings.bench_runs, warmup=settings.bench_warmup,
                      progress=False) if unique else []
    latency = {sha: (r.latency.p50_ms, r.latency.p99_ms) for (sha, _), r in zip(unique, reports)}
    plot_path = None
    if reports:
        try:
            plot_path = plot_latency(reports, fam_dir / "latency.png", overwrite=True)  # the demo regenerates its folder
        except Exception as exc:  # matplotlib missing or failing must not sink the report
            log.warning("latency plot skipped: %s", exc)

    fam = FamilyReport(family, TITLES[family], plot=plot_path)
    for target, result in results.items():
        report = result.report
        primary, secondary = report.primary_metric, _agreement_metric(family)
        reference_value = next((a.metrics.get(primary) for a in report.artifacts if a.reference), None)
        for art, rep in _pairs(result):
            p50, p99 = latency.get(art.sha256, (None, None))
            fam.rows.append(ArtifactRow(
                family=family, target=target, artifact=Path(art.path).name, format=art.format,
                precision=art.precision + (f" ({art.io_dtype} I/O)" if art.io_dtype != "float32" else ""),
                size_bytes=art.size_bytes, metric=VERDICT_METRIC[family],
                value=None if rep is None else rep.metrics.get(primary), float_value=reference_value,
                agreement=None if rep is None else rep.metrics.get(secondary),
                p50_ms=p50, p99_ms=p99, check=_check_summary(art.path, target),
                recommended=Path(art.path).name == report.recommended,
                note="" if _runs_here(art) else "Edge TPU only: not benchmarked here"))
        if report.recommendation:
            fam.notes.append(f"{target}: {report.recommendation}")
        if report.edgetpu:
            fam.notes.append(f"{target}: {_edgetpu_note(report.edgetpu, result.artifacts)}")
    progress.step(f"{family}: running the task on sample images")
    cpu_best = results.get("cpu") or next(iter(results.values()))
    best_name = cpu_best.report.recommended or Path(cpu_best.artifacts[0].path).name
    best_path = next(a.path for a in cpu_best.artifacts if Path(a.path).name == best_name)
    fam.overlays = _overlay(family, best_path, np.asarray(validation.images), fam_dir, settings.overlays)
    return fam


def _edgetpu_note(outcome: Any, artifacts: Any) -> str:
    """One line on the Edge TPU compile: its result, or the exact command to run where the compiler exists."""
    import shlex

    from converters.edgetpu import compiler_command

    if outcome.get("ok"):
        return (f"compiled for the Edge TPU: {outcome.get('ops_on_edgetpu')} ops on the Edge TPU, "
                f"{outcome.get('ops_on_cpu')} on the CPU")
    int8 = next((a.path for a in artifacts if a.precision == "int8" and a.format == "tflite"), None)
    if not outcome.get("compiler_found") and int8 is not None:
        command = shlex.join(compiler_command(int8, str(Path(int8).parent)))
        return f"edgetpu_compiler is not installed here (it needs x86-64 Linux); to compile run: {command}"
    return f"Edge TPU compile failed: {outcome.get('failure')}"


def _agreement_metric(family: str) -> str:
    """The task's primary metric without ground truth: agreement with the float model."""
    return get_task(family).metrics[1]


def _pairs(result: Any) -> list[tuple[Any, Any]]:
    by_name = {a.name: a for a in result.report.artifacts if a.path is not None}
    return [(art, by_name.get(Path(art.path).name)) for art in result.artifacts]


def run(args: argparse.Namespace) -> int:
    """Run the demo into ``args.out``: per family, train, convert, validate, check, benchmark, report.

    Raises:
        ConfigError: an unknown family.
        UnknownTargetError: an unknown target.
        BackendNotAvailable: the workstation extras (tensorflow and the converters' tools) are not installed.
    """
    from .demo_report import verdict_line, write_reports

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    target_names = [t.strip() for t in args.targets.split(",") if t.strip()]
    for f in families:
        if f not in FAMILIES:
            raise ConfigError(f"unknown family {f!r}{did_you_mean(f, FAMILIES)}; choose from {', '.join(FAMILIES)}")
    import targets

    for t in target_names:
        targets.get(t)
    import_converters("the demo trains and converts models; pip install 'edgecv[all]'", tensorflow=True)
    settings = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(total=len(families) * (3 + len(target_names)))
    start = time.perf_counter()
    reports = [_family(f, settings, target_names, out, progress) for f in families]
    header = [f"Host: {platform.machine()} {platform.system()}, Python {platform.python_version()}; "
              f"{'quick' if args.quick else 'full'} run in {time.perf_counter() - start:.0f} s. "
              "Accuracy is measured on held-out synthetic images with each artifact run through its edgecv task; "
              "latency is inference only, interleaved across artifacts, on this host (not on the target)."]
    md, page = write_reports(reports, out, header)
    print(f"report: {page.resolve()}")
    print(f"        {md.resolve()}")
    verdict_target = "rpi4" if "rpi4" in target_names else target_names[0]
    for fam in reports:
        print(verdict_line(fam, verdict_target))
    return EXIT_OK
