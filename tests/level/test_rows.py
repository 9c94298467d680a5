"""Tests of napari_calcite_afm.level.rows: scan-line alignment and row depressions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.level import (
    LevelError,
    _row_depressions,
    _x_background,
    align_rows,
    row_offsets,
)


def _stepped_with_pit(synth, seed=0, shape=(200, 240)):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    z = synth.STEP * np.floor((xx + 0.6 * yy) / 35) + rng.normal(0, 0.03, shape)
    z -= synth.pit_depth_map(shape, (100, 90), 45, 0.2, 20)[0]
    offsets = np.cumsum(rng.normal(0, 0.2, shape[0]))
    return z, offsets


def test_median_diff_robust_to_pits_where_median_fails(synth):
    z, offsets = _stepped_with_pit(synth)
    raw = z + offsets[:, None]
    good = align_rows(raw, "median_diff")
    bad = align_rows(raw, "median")
    assert synth.rms_error(good, z) < 0.03
    assert synth.rms_error(bad, z) > 0.2  # rows crossing the pit are shifted by the median


@pytest.mark.parametrize("angle", [0.8, 1.3])
def test_median_diff_not_led_by_pit_walls(synth, angle):
    """A deep pit over a third of the frame: its walls share one row-to-row difference.

    Without the flat-ground mask those wall pixels outvoted the terrace on the rows that
    cross the pit and the cumulative offsets turned into a ramp (0.09-0.43 nm RMS here).
    """
    rng = np.random.default_rng(11)
    depth, inside = synth.pit_depth_map((256, 256), (128, 128), 0.3 * 256, angle, 30.0)
    assert 0.3 < inside.mean() < 0.4
    z = -depth + rng.normal(0, 0.03, depth.shape)
    offsets = rng.normal(0, 0.5, 256)
    assert synth.rms_error(align_rows(z + offsets[:, None], "median_diff"), z) < 0.03


def test_median_with_mask_ignores_pit(synth):
    z, offsets = _stepped_with_pit(synth)
    raw = z + offsets[:, None]
    assert synth.rms_error(align_rows(raw, "median", mask=z > -0.5), z) < synth.rms_error(
        align_rows(raw, "median"), z
    )


def test_median_diff_keeps_slow_axis_tilt():
    yy, xx = np.mgrid[0:50, 0:60].astype(float)
    plane = 0.1 * yy + 0.05 * xx
    np.testing.assert_allclose(align_rows(plane, "median_diff"), plane, atol=1e-9)
    off = row_offsets(plane, "median")
    np.testing.assert_allclose(off - off.mean(), 0.1 * (yy[:, 0] - yy[:, 0].mean()), atol=1e-9)


def test_row_offsets_recover_known_offsets():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 0.02, (64, 128))
    offsets = rng.normal(0, 1, 64)
    for method in ("median", "median_diff"):
        est = row_offsets(z + offsets[:, None], method)
        d = est - offsets
        d -= np.polyval(np.polyfit(np.arange(64), d, 1), np.arange(64))
        assert np.abs(d).max() < 0.03, method
    assert not row_offsets(z, "none").any()


def test_polynomial_rows():
    yy, xx = np.mgrid[0:30, 0:40].astype(float)
    slopes = np.linspace(-1, 1, 30)
    z = slopes[:, None] * xx + 3.0 * yy
    corr = row_offsets(z, "polynomial", order=1)
    assert corr.shape == z.shape
    out = align_rows(z, "polynomial", order=1)
    assert np.abs(out - out.mean()).max() < 1e-8


@pytest.mark.parametrize("method", ["none", "median", "median_diff", "polynomial"])
def test_rows_nan_rows_and_holes(synth, method):
    z, offsets = _stepped_with_pit(synth, 3, (60, 80))
    raw = z + offsets[:, None]
    raw[[0, 10, 11, 59]] = np.nan
    raw[20:25, 30:50] = np.nan
    out = align_rows(raw, method)
    assert np.array_equal(np.isnan(out), np.isnan(raw))
    off = row_offsets(raw, method)
    assert np.isnan(off[[0, 10, 11, 59]]).all()
    assert np.isfinite(off[[1, 12, 20, 58]]).all()
    # rows with data but none usable under the mask get an interpolated offset
    mask = np.ones(raw.shape, bool)
    mask[30] = False
    assert np.isfinite(row_offsets(raw, method, mask)[30]).all()


def test_median_diff_bridges_nan_rows(synth):
    z, offsets = _stepped_with_pit(synth, 4)
    raw = z + offsets[:, None]
    raw[50:53] = np.nan
    truth = z.copy()
    truth[50:53] = np.nan
    assert synth.rms_error(align_rows(raw, "median_diff"), truth) < 0.03


def test_rows_bad_method_raises():
    with pytest.raises(LevelError, match="unknown row alignment"):
        align_rows(np.zeros((3, 4)), "mode")


def test_row_depressions_ignore_row_offsets():
    rng = np.random.default_rng(22)
    yy, xx = np.mgrid[0:128, 0:300].astype(float)
    z = 0.02 * xx + rng.normal(0, 0.03, xx.shape)
    pit = (np.abs(xx - 150) < 60) & (np.abs(yy - 64) < 40)
    z[pit] -= 3.0

    def depressions(frame):
        return _row_depressions(frame - _x_background(frame, 1))

    found = depressions(z)
    shifted = depressions(z + rng.normal(0, 2.0, (128, 1)))
    np.testing.assert_array_equal(found, shifted)
    assert found[pit].mean() > 0.99
    assert not found[~pit].any()
