"""The benchmarking probe: honest latency, memory and host facts for a model on this machine.

    report = edgecv.bench("model.tflite", runs=200)
    print(format_table([report]))
    reports = edgecv.compare(["a.tflite", "b.onnx"])          # interleaved, same inputs
    regressions = check_regression(report, BenchReport.load("baseline.json"), tolerance=0.10)
    plot(reports, "bench.png")                                 # needs edgecv[plot]

Importing this package loads numpy and the standard library only.
"""

from .bench_report import (
    FIGURES,
    SCHEMA_VERSION,
    BenchReport,
    Fingerprint,
    ModelFacts,
    read_reports,
    reports_from_json,
    reports_to_json,
    write_reports,
)
from .host import HostInfo, read_host
from .measure import DEFAULT_RUNS, DEFAULT_WARMUP, bench, compare
from .memory import MemoryStats
from .plot import plot
from .regression import DEFAULT_FIGURES, Regression, check_regression, pair_with_baseline
from .stats import LatencyStats, StageSplit, StageStats, latency_stats
from .table import format_table

__all__ = [
    "bench", "compare", "check_regression", "plot", "format_table",
    "BenchReport", "Fingerprint", "ModelFacts", "HostInfo", "LatencyStats", "StageSplit", "StageStats",
    "MemoryStats", "Regression", "read_host", "latency_stats", "pair_with_baseline",
    "read_reports", "write_reports", "reports_to_json", "reports_from_json",
    "SCHEMA_VERSION", "FIGURES", "DEFAULT_FIGURES", "DEFAULT_RUNS", "DEFAULT_WARMUP",
]
