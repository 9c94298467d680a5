"""Robust display limits: NaN, spikes and whole outlier scan lines do not set the contrast."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.colormap import green_magenta, outlier_rows, robust_contrast_limits


def _surface(seed: int = 0, shape=(256, 256)) -> np.ndarray:
    """Terraces at 0 nm with 2 nm deep pits covering about 20 % of the frame."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 0.3, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for r, c in rng.integers(20, min(shape) - 20, (8, 2)):
        z[(yy - r) ** 2 + (xx - c) ** 2 < 20**2] -= 2.0
    return z


def test_140_nm_settling_lines_do_not_set_the_limits():
    z = _surface()
    plain = robust_contrast_limits(z)
    bad = z.copy()
    bad[:2] -= 140.0  # the scanner settling, as in nanoafmr_Veeco_20160622.003
    bad[200:203] += 140.0  # and three lines where the tip lost contact
    assert np.flatnonzero(outlier_rows(bad)).tolist() == [0, 1, 200, 201, 202]
    lo, hi = robust_contrast_limits(bad)
    assert lo == pytest.approx(plain[0], abs=0.2) and hi == pytest.approx(plain[1], abs=0.2)
    # the pits (2 nm deep) stay inside the limits, the lines (140 nm off) outside
    assert -3.0 < lo < -1.5 and 0.5 < hi < 2.0
    # the plain percentiles are spread over the lines: the surface is one colour
    naive = np.percentile(bad, [0.5, 99.5])
    assert naive[0] < -100 and naive[1] > 100


def test_pits_and_tilt_are_not_outlier_rows():
    z = _surface(1)
    assert not outlier_rows(z).any()
    tilted = z + np.linspace(0, 50, z.shape[0])[:, None]  # 50 nm tilt along the slow axis
    assert not outlier_rows(tilted).any()


def test_stacks_nan_and_constant_frames():
    stack = np.stack([_surface(s) for s in range(3)])
    stack[1, :2] = -140.0
    stack[2, 10:20, 10:20] = np.nan
    lo, hi = robust_contrast_limits(stack)
    assert -3.0 < lo < -1.5 and 0.5 < hi < 2.0
    assert robust_contrast_limits(np.full((8, 8), np.nan)) == (0.0, 1.0)
    assert robust_contrast_limits(np.full((8, 8), 2.0)) == (1.5, 2.5)
    # a flat 1-D profile still works
    assert robust_contrast_limits(np.arange(100.0))[1] > 90


def test_green_magenta_runs_from_green_to_magenta():
    lut = green_magenta(256)
    assert lut[0, 1] > lut[0, 0] and lut[-1, 0] > lut[-1, 1]
    with pytest.raises(ValueError):
        green_magenta(1)
