"""Tests of napari_calcite_afm.checks: lags against the frame, seconds, positive numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.checks import check_lags, check_positive, check_seconds, is_whole
from napari_calcite_afm.errors import CalciteAFMError


def test_lags_are_read_as_whole_numbers():
    assert check_lags([1, 2, 4]) == (1, 2, 4)
    assert check_lags(["2", 4.0, np.int64(8)]) == (2, 4, 8)
    assert check_lags(3) == (3,)
    for bad in ([], [0], [-1], [1.5], ["x"], [True], None, [None]):
        with pytest.raises(CalciteAFMError, match="positive whole numbers"):
            check_lags(bad)


def test_lags_must_be_smaller_than_the_frame_along_their_direction():
    shape = (5, 40, 64)  # 40 rows, 64 columns
    assert check_lags((1, 39), shape) == (1, 39)
    with pytest.raises(CalciteAFMError, match=r"40 x 64 pixels: at most 39 px along x and y"):
        check_lags((1, 40), shape)
    assert check_lags((63,), shape, "x") == (63,)  # along the columns
    with pytest.raises(CalciteAFMError, match=r"at most 63 px along x\), got 64"):
        check_lags((64,), shape, "x")
    with pytest.raises(CalciteAFMError, match=r"--lags must be .* got 1000000000"):
        check_lags((1, 1000000000), shape, "y", name="--lags")


@pytest.mark.parametrize("bad", [-1, 0, math.nan, math.inf, -math.inf, "x", True, [1]])
def test_seconds_must_be_positive_and_finite(bad):
    with pytest.raises(CalciteAFMError, match="positive finite number of seconds"):
        check_seconds(bad)


def test_good_seconds_and_sizes_pass():
    assert check_seconds(None) is None
    assert check_seconds("2.5") == 2.5 and check_seconds(np.float32(4)) == 4.0
    assert check_positive(11.7, "pixel_size_nm", "nm") == 11.7
    with pytest.raises(CalciteAFMError, match="pixel_size_nm must be a positive finite number"):
        check_positive(0.0, "pixel_size_nm", "nm")
    assert is_whole(np.int32(2)) and not is_whole(2.0) and not is_whole(False)
