"""Collapsed quantization: an artifact whose outputs lost all information (no detections, constant or non-finite).

Such an artifact can look like any other on disk; :func:`collapse_reason`
names it so the report says so and it is never recommended.
"""

from __future__ import annotations

import numpy as np

from .validate import TaskOutputs

__all__ = ["collapse_reason"]


def collapse_reason(task: str, outputs: TaskOutputs | None, reference: TaskOutputs | None, *,
                    score_threshold: float = 0.5) -> str | None:
    """Why *outputs* are collapsed against the float *reference*, or None when they are not.

    Collapsed: a raw output holds NaN or infinity; a raw output is constant over the validation set where
    the float one varies; a detector finds nothing at *score_threshold* on the validation set where the float
    model finds something.
    """
    if outputs is None or reference is None:
        return None
    for role, got in outputs.raw.items():
        values = np.asarray(got, np.float64)
        if values.size and not np.all(np.isfinite(values)):
            return f"output {role!r} holds NaN or infinity"
        ref = reference.raw.get(role)
        if values.size > 1 and float(np.ptp(values)) == 0.0 and ref is not None and float(np.ptp(ref)) > 0.0:
            return f"output {role!r} is constant ({float(values.reshape(-1)[0]):.4g}) where the float model's varies"
    if task == "detection":
        found = sum(int(np.count_nonzero(np.asarray(s) >= score_threshold)) for _, s, _ in outputs.task)
        expected = sum(int(np.count_nonzero(np.asarray(s) >= score_threshold)) for _, s, _ in reference.task)
        if found == 0 and expected > 0:
            return f"no detections on the validation set where the float model finds {expected}"
    return None
