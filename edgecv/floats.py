"""Float64 thresholds that mean the same on every CPU, whatever the FPU's flush-to-zero mode.

On aarch64, tflite-runtime leaves flush-to-zero on in the thread that invoked it (seen with 2.14 on a
Cortex-A72): from then on every subnormal double reads as 0 in that thread, so ``0.0 < 5e-324`` is False
and ``x / max(y, 5e-324)`` divides by zero. Thresholds and floors here are therefore normal numbers.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SMALLEST_NORMAL", "just_below"]

#: The smallest positive normal double (2.2e-308): unlike a subnormal, no FPU mode turns it into 0.
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)


def just_below(value: float) -> float:
    """The largest normal double below *value* (``x > just_below(v)`` is ``x >= v`` for normal x and v).

    Around 0, where the next double down is subnormal, it is 0.0 (for 0 < v <= SMALLEST_NORMAL) or
    ``-SMALLEST_NORMAL`` (for v <= 0): ``0.0 >= 0.0`` stays True on a CPU that flushes subnormals, where
    the next double down would read as 0.
    """
    below = math.nextafter(float(value), -math.inf)
    if math.isnan(below) or abs(below) >= SMALLEST_NORMAL:
        return below
    return 0.0 if value > 0 else -SMALLEST_NORMAL
