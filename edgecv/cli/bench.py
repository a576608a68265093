"""``edgecv bench``: the command-line face of the benchmarking probe.

Results go to stdout (the table, or JSON with ``--json -``); baseline
verdicts and progress go to stderr. Exit codes: 0 done (and no regression),
1 a figure regressed past the baseline's tolerance. Bad arguments or models
raise :class:`EdgeCVError` for :func:`edgecv.cli.main` to print as a one-line cause.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError
from .common import EXIT_NEGATIVE, EXIT_OK, TASKS, non_negative_int, parse_threads, parse_tolerance, positive_int

__all__ = ["NAME", "HELP", "DESCRIPTION", "EPILOG", "EXIT_REGRESSION", "add_arguments", "run"]

NAME = "bench"
HELP = "benchmark models on this machine (latency, FPS, memory; compare, sweep, baseline gate)"
EXIT_REGRESSION = EXIT_NEGATIVE
DESCRIPTION = ("Benchmark models on this machine: load time, first call, latency mean/std/min/p50/p90/p99/max, FPS, "
               "peak memory, host fingerprint. Several models are compared side by side, interleaved.")
EPILOG = """examples:
  edgecv bench model.tflite --runs 200
  edgecv bench a.tflite b.onnx --threads 1,2,4 --plot bench.png
  edgecv bench model.tflite --task classify --input images/ --json report.json
  edgecv bench model.tflite --baseline report.json --tolerance 10%   # exit 1 on a regression"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``edgecv bench`` arguments to *parser*."""
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="model file(s) (.tflite, .onnx); several are compared side by side, interleaved")
    parser.add_argument("--task", choices=TASKS,
                        help="time whole task calls (preprocess + inference + postprocess) instead of the bare model")
    parser.add_argument("--target", metavar="NAME", help="target profile to load the model for (see edgecv targets)")
    parser.add_argument("--runs", type=positive_int, metavar="N", help="measured calls (default 100 without --duration)")
    parser.add_argument("--warmup", type=non_negative_int, metavar="N", help="calls before measuring (default 5)")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="measure for S seconds (with --runs: whichever ends first)")
    parser.add_argument("--threads", type=parse_threads, metavar="N[,N...]",
                        help="interpreter threads; a list (1,2,4) sweeps them")
    parser.add_argument("--input", metavar="IMAGE_OR_DIR",
                        help="image file or folder to feed (default: seeded random data)")
    parser.add_argument("--json", metavar="PATH", help="write the report(s) as JSON to PATH, or '-' for stdout")
    parser.add_argument("--plot", metavar="PATH", help="draw latency distributions and the stage split (needs "
                                                       "edgecv[plot])")
    parser.add_argument("--baseline", metavar="OLD.json",
                        help="fail (exit 1) when a figure is worse than this earlier --json report")
    parser.add_argument("--force", action="store_true", help="replace an existing --json or --plot file")
    parser.add_argument("--tolerance", type=parse_tolerance, metavar="PCT",
                        help="allowed worsening against --baseline, e.g. 10%% (default 10%%)")


def run(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``edgecv bench`` with parsed *args*; return the exit code.

    Raises:
        ConfigError: --tolerance without --baseline, a bad baseline file, or bad arguments.
        (and everything :func:`edgecv.load` and :func:`edgecv.benchmark.bench` raise)
    """
    from ..benchmark import bench, check_regression, compare, format_table, pair_with_baseline, plot
    from ..benchmark.bench_report import read_reports, reports_to_json, write_reports
    from ..benchmark.regression import check_baseline

    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if args.tolerance is not None and args.baseline is None:
        raise ConfigError("--tolerance needs --baseline OLD.json (the report to compare against)")
    baselines = read_reports(args.baseline) if args.baseline is not None else None  # fail before measuring
    for baseline in baselines or ():
        check_baseline(baseline)
    for path in (args.json, args.plot):
        if path not in (None, "-") and Path(path).exists() and not args.force:
            raise ConfigError(f"{path} already exists; pass --force to replace it (or choose another file)")
    options = dict(target=args.target, runs=args.runs, warmup=args.warmup, duration_s=args.duration,
                   threads=args.threads, inputs=args.input, task=args.task, progress=args.json is None)
    if len(args.models) == 1:
        result = bench(args.models[0], **options)
        reports = result if isinstance(result, list) else [result]
    else:
        reports = compare(args.models, **options)

    if args.json == "-":
        out.write(reports_to_json(reports) + "\n")
    else:
        out.write(format_table(reports) + "\n")
        if args.json is not None:
            write_reports(reports, args.json, overwrite=args.force)
    if args.plot is not None:
        plot(reports, args.plot, overwrite=args.force)
    if baselines is None:
        return EXIT_OK
    tolerance = args.tolerance if args.tolerance is not None else 0.10
    regressions = []
    for report, baseline in pair_with_baseline(reports, baselines):
        regressions.extend(check_regression(report, baseline, tolerance))
    for r in regressions:
        err.write(f"regression: {r.describe()}\n")
    if regressions:
        return EXIT_REGRESSION
    err.write(f"baseline check passed: {len(reports)} report(s) within {100 * tolerance:g}% of {args.baseline}\n")
    return EXIT_OK
