"""Latency of a model file on the conversion host: the median of a few invocations, for comparing two builds."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

__all__ = ["median_invoke_ms", "LATENCY_RUNS"]

#: Timed invocations (after one warm-up).
LATENCY_RUNS = 10


def median_invoke_ms(path: Path, runs: int = LATENCY_RUNS) -> float | None:
    """Median wall time of one invocation of *path* through edgecv's runtime on this host, in ms; None if it fails.

    Inputs are the zeroed input buffers (latency does not depend on the values for these models). This is the
    conversion host, not the target: use it to compare builds with each other, not as the device's speed.
    """
    import edgecv
    from edgecv.errors import EdgeCVError

    try:
        with edgecv.load(str(path)) as model:
            model.invoke()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                model.invoke()
                times.append(1000.0 * (time.perf_counter() - start))
    except EdgeCVError:
        return None
    return statistics.median(times)
