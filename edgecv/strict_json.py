"""Strict JSON for what edgecv prints or writes: NaN and infinity become null, with a warning.

Python's ``json.dumps`` writes bare ``NaN``/``Infinity`` by default, which
strict JSON parsers (jq, JavaScript, Go) reject, so a stream of results with
one NaN box breaks its consumer. :func:`dumps` replaces every non-finite float
(numpy scalars included) with ``null``, logs one warning naming where, and
refuses anything else that is not JSON.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

__all__ = ["dumps", "finite_or_none"]

log = logging.getLogger("edgecv")


def finite_or_none(data: Any, where: str = "$", found: list[str] | None = None) -> Any:
    """A copy of *data* (dicts, lists, tuples, scalars) with non-finite floats as None; their paths go to *found*."""
    if isinstance(data, dict):
        return {k: finite_or_none(v, f"{where}.{k}", found) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v, f"{where}[{i}]", found) for i, v in enumerate(data)]
    if isinstance(data, float) or type(data).__name__ in ("float16", "float32", "float64"):
        value = float(data)
        if not math.isfinite(value):
            if found is not None:
                found.append(where)
            return None
        return value
    return data


def dumps(data: Any, *, indent: int | None = None, what: str = "output", **kwargs: Any) -> str:
    """*data* as strict JSON text; non-finite numbers written as null with one warning on the ``edgecv`` logger.

    Raises:
        TypeError: a value JSON cannot hold (unless ``default=`` handles it).
    """
    found: list[str] = []
    clean = finite_or_none(data, "$", found)
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        log.warning("%s: %d non-finite number(s) written as null (%s); the model produced NaN or infinity",
                    what, len(found), shown)
    return json.dumps(clean, indent=indent, allow_nan=False, **kwargs)
