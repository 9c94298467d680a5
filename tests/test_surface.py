"""Per-frame surface measures: pit counts and areas, retreat between frames."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.surface import mean_retreat_nm, pit_measures, vertical_offset


def test_pit_measures_counts_components():
    lab = np.full((40, 40), 2, np.uint8)
    lab[2:6, 2:6] = 1  # 16 px
    lab[20:30, 20:30] = 1  # 100 px
    lab[35, 35] = 1  # 1 px: below min_area_px
    count, area = pit_measures(lab, pixel_size_nm=2.0, min_area_px=4)
    assert count == 2
    assert area == pytest.approx((16 + 100) / 2 * 4.0)
    assert pit_measures(np.full((5, 5), 2), 1.0) == (0, pytest.approx(np.nan, nan_ok=True))


def test_retreat_ignores_vertical_offset_and_measures_lowering():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 0.05, (128, 128))
    b = a - 7.0  # instrument offset only: no retreat
    assert mean_retreat_nm(a, b) == pytest.approx(0.0, abs=0.01)
    b[:32] -= 0.62  # a quarter of the surface lost two layers
    assert mean_retreat_nm(a, b) == pytest.approx(0.155, abs=0.01)


def test_vertical_offset_needs_shared_valid_pixels():
    a = np.full((8, 8), np.nan)
    assert np.isnan(vertical_offset(a, a))
    assert np.isnan(mean_retreat_nm(a, a))
    rng = np.random.default_rng(1)
    z = rng.normal(0, 0.02, (64, 64))
    assert vertical_offset(z, z + 2.5) == pytest.approx(2.5, abs=0.02)
