"""Latency statistics: pure functions from per-run samples (milliseconds) to figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["LatencyStats", "StageStats", "StageSplit", "latency_stats", "stage_stats", "PERCENTILES"]

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of measured runs, milliseconds (``fps`` is frames per second).

    Percentiles use linear interpolation between the closest ranks (numpy's
    default); ``std_ms`` is the sample standard deviation (ddof=1, 0 for one
    run); ``fps = 1000 / mean_ms``: sequential throughput of one caller.
    """

    runs: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class StageStats:
    """Median and mean of one stage of a task call, milliseconds."""

    median_ms: float
    mean_ms: float

    def to_dict(self) -> dict[str, float]:
        return {"median_ms": self.median_ms, "mean_ms": self.mean_ms}


@dataclass(frozen=True)
class StageSplit:
    """Where a task call spends its time, from each result's ``timing``."""

    preprocess: StageStats
    inference: StageStats
    postprocess: StageStats

    def to_dict(self) -> dict[str, Any]:
        return {"preprocess": self.preprocess.to_dict(), "inference": self.inference.to_dict(),
                "postprocess": self.postprocess.to_dict()}


def _as_samples(samples_ms: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(samples_ms, dtype=np.float64).ravel()
    if values.size == 0:
        raise ConfigError(f"{what}: no samples; measure at least one run")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(f"{what}: samples must be finite, non-negative milliseconds")
    return values


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
    """Summarise per-run latencies (milliseconds).

    Raises:
        ConfigError: no samples, a negative / non-finite sample, or all samples zero.
    """
    values = _as_samples(samples_ms, "latency statistics")
    mean = float(values.mean())
    if mean <= 0.0:
        raise ConfigError("latency statistics: every sample is 0 ms; the clock cannot resolve these runs, "
                          "benchmark a larger model or batch several calls per sample")
    p50, p90, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return LatencyStats(
        runs=int(values.size), mean_ms=mean, std_ms=std, min_ms=float(values.min()),
        p50_ms=p50, p90_ms=p90, p99_ms=p99, max_ms=float(values.max()),
        fps=1000.0 / mean,
    )


def stage_stats(samples_ms: Sequence[float] | np.ndarray) -> StageStats:
    """Median and mean of one stage's per-call times (milliseconds).

    Raises:
        ConfigError: no samples, or a negative / non-finite sample.
    """
    values = _as_samples(samples_ms, "stage statistics")
    return StageStats(median_ms=float(np.median(values)), mean_ms=float(values.mean()))
