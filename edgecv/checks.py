"""Argument checks for numbers, shared across edgecv, converters and targets.

One place for the checks that recur: an int that is not a bool, in a range;
a finite real number in a range; a fraction in 0..1. Each raises
:class:`~edgecv.errors.ConfigError` worded "NAME must be EXPECTED, got VALUE"
and returns the value as a plain Python ``int`` or ``float``. ``bool`` is an
``int`` subclass in Python; these checks never take ``True`` for 1.

    threads = check_int(threads, "threads", minimum=1)
    tolerance = check_number(tolerance, "tolerance", minimum=0.0)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import ConfigError

__all__ = ["is_int", "is_number", "check_int", "check_number", "check_fraction"]


def is_int(value: Any, *, allow_numpy: bool = True) -> bool:
    """True for an ``int`` (or, with *allow_numpy*, a numpy integer), never for a ``bool``."""
    kinds = numbers.Integral if allow_numpy else int     # numpy registers its integers there, not np.bool_
    return isinstance(value, kinds) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for an ``int`` or ``float`` (numpy's float64 included), never for a ``bool``; NaN and inf count."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_real(value: Any, *, finite: bool) -> bool:
    """A number that is not NaN (and, with *finite*, not infinite); an int too large for a float is neither."""
    if not is_number(value):
        return False
    try:
        real = float(value)
    except OverflowError:
        return False
    return not math.isnan(real) and (not finite or math.isfinite(real))


def _range_phrase(noun: str, minimum: float | None, maximum: float | None, above: float | None) -> str:
    """How the default message describes the range: "an integer >= 1", "a number in 0..1", ..."""
    if above is not None:
        return f"{noun} > {above:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
    if minimum is not None and maximum is not None:
        return f"{noun} in {minimum:g}..{maximum:g}"
    if minimum is not None:
        return f"{noun} >= {minimum:g}"
    if maximum is not None:
        return f"{noun} <= {maximum:g}"
    return noun


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None,
              expected: str | None = None, allow_numpy: bool = True) -> int:
    """*value* as an ``int``: an int (or numpy integer with *allow_numpy*), not a bool, in ``[minimum, maximum]``.

    Args:
        value: what the caller passed.
        name: the argument's name, as the message shows it.
        minimum, maximum: inclusive bounds; None for no bound.
        expected: the message's description of a valid value (default: "an integer >= MINIMUM" and the like).
        allow_numpy: accept numpy integers too (False where values come from JSON-like data).

    Raises:
        ConfigError: "NAME must be EXPECTED, got VALUE".
    """
    if (not is_int(value, allow_numpy=allow_numpy) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)):
        raise ConfigError(f"{name} must be {expected or _range_phrase('an integer', minimum, maximum, None)}, "
                          f"got {value!r}")
    return int(value)


def check_number(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, finite: bool = True, expected: str | None = None) -> float:
    """*value* as a ``float``: an int or float, not a bool, within the bounds given.

    Args:
        value: what the caller passed.
        name: the argument's name, as the message shows it.
        minimum, maximum: inclusive bounds; None for no bound.
        above: exclusive lower bound (e.g. ``above=0`` for a positive duration); None for none.
        finite: refuse infinities (NaN is always refused: it fails every comparison).
        expected: the message's description of a valid value (default: "a number >= MINIMUM" and the like).

    Raises:
        ConfigError: "NAME must be EXPECTED, got VALUE".
    """
    if (not _is_real(value, finite=finite) or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum) or (above is not None and value <= above)):
        raise ConfigError(f"{name} must be {expected or _range_phrase('a number', minimum, maximum, above)}, "
                          f"got {value!r}")
    return float(value)


def check_fraction(value: Any, name: str, *, expected: str | None = None) -> float:
    """*value* as a ``float`` in 0..1 (a probability, a score threshold, an IoU).

    Raises:
        ConfigError: "NAME must be a number in 0..1, got VALUE" (or *expected* in place of "a number in 0..1").
    """
    return check_number(value, name, minimum=0.0, maximum=1.0, expected=expected)
