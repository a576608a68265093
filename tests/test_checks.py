"""edgecv.checks: the shared number checks (what they accept, what they refuse, how they say it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgecv.checks import check_fraction, check_int, check_number, is_int, is_number
from edgecv.errors import ConfigError, EdgeCVError


@pytest.mark.device
def test_is_int_and_is_number_never_take_a_bool():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(np.int64(3), allow_numpy=False)
    assert not is_int(True) and not is_int(np.bool_(True)) and not is_int(3.0) and not is_int("3")
    assert is_number(3) and is_number(2.5) and is_number(np.float64(2.5)) and is_number(math.nan)
    assert not is_number(False) and not is_number("2.5") and not is_number(None)


@pytest.mark.device
def test_check_int_returns_plain_ints_within_bounds():
    assert check_int(np.int32(4), "runs", minimum=1) == 4 and type(check_int(np.int32(4), "runs")) is int
    assert check_int(0, "offset", minimum=0, maximum=0) == 0
    for bad in (0, True, 1.0, "2", None, np.float32(2)):
        with pytest.raises(ConfigError, match=r"^runs must be an integer >= 1, got "):
            check_int(bad, "runs", minimum=1)
    with pytest.raises(ConfigError, match=r"^k must be an integer in 1\.\.5, got 6$"):
        check_int(6, "k", minimum=1, maximum=5)
    with pytest.raises(ConfigError, match=r"^threads must be a positive int, got np\.int64\(2\)$|got 2$"):
        check_int(np.int64(2), "threads", expected="a positive int", allow_numpy=False)


@pytest.mark.device
def test_check_number_refuses_nan_and_by_default_infinity():
    assert check_number(2, "x") == 2.0 and type(check_number(2, "x")) is float
    assert check_number(math.inf, "threshold", minimum=0, finite=False) == math.inf
    for bad in (10 ** 400, math.nan, math.inf, -math.inf, True, "1", None):
        with pytest.raises(ConfigError, match=r"^x must be a number, got "):
            check_number(bad, "x")
    with pytest.raises(ConfigError, match=r"^t must be a number > 0, got 0$"):
        check_number(0, "t", above=0)
    with pytest.raises(ConfigError, match=r"^d must be a positive number of seconds, got -1$"):
        check_number(-1, "d", above=0, expected="a positive number of seconds")
    with pytest.raises(EdgeCVError):
        check_number(math.nan, "t", minimum=0, finite=False)


@pytest.mark.device
def test_check_fraction_is_zero_to_one_inclusive():
    assert check_fraction(0, "p") == 0.0 and check_fraction(1, "p") == 1.0
    for bad in (-0.01, 1.01, math.nan, True):
        with pytest.raises(ConfigError, match=r"^p must be a number in 0\.\.1, got "):
            check_fraction(bad, "p")
