"""Tests of napari_calcite_afm.synthetic.artifacts: scan artifacts and drift."""

from __future__ import annotations

import math

import numpy as np

from napari_calcite_afm.synthetic import add_artifacts, make_series
from napari_calcite_afm.synthetic.artifacts import _draw_drift


def test_raw_is_clean_plus_artifacts(series):
    diff = series.raw.astype(np.float64) - series.clean
    assert np.abs(diff).max() > 5.0  # tilt of tens of nm
    assert series.drift_px[0].tolist() == [0.0, 0.0]
    assert np.abs(series.drift_px[1:]).max() > 0.1
    # subtracting a plane from raw - clean of frame 0 (no drift) leaves the bow, row
    # offsets, scars and noise: small next to the tilt
    d0 = diff[0]
    yy, xx = np.mgrid[: d0.shape[0], : d0.shape[1]]
    a = np.c_[np.ones(d0.size), xx.ravel(), yy.ravel()]
    resid = d0.ravel() - a @ np.linalg.lstsq(a, d0.ravel(), rcond=None)[0]
    assert np.std(resid) < 0.5 * np.std(d0)
    assert np.std(resid) > 0.03  # but there are artifacts beyond the plane


def test_noise_and_scars_options():
    s0 = make_series(1, 64, seed=9, scars=False, noise_nm=0.0, drift=False)
    s1 = make_series(1, 64, seed=9, scars=True, noise_nm=0.08, drift=False)
    assert np.array_equal(s0.clean, s1.clean)
    assert not np.array_equal(s0.raw, s1.raw)
    assert s1.params["noise_nm"] == 0.08


def test_add_artifacts():
    flat = np.zeros((64, 80), np.float32)
    out = add_artifacts(
        flat, 0, tilt_nm=20.0, bow_nm=0.0, row_offset_nm=0.0, n_scars=0, noise_nm=0.0
    )
    assert out.dtype == np.float32 and out.shape == flat.shape
    span = float(out.max() - out.min())
    assert 20.0 - 1e-3 <= span <= 20.0 * math.sqrt(2) + 1e-3
    # row offsets are constant along each row
    rows = add_artifacts(flat, 1, tilt_nm=0, bow_nm=0, row_offset_nm=1.0, n_scars=0, noise_nm=0)
    assert np.allclose(rows, rows[:, :1])
    assert np.ptp(rows[:, 0]) > 0.1
    # scars: short streaks along rows
    sc = add_artifacts(flat, 2, tilt_nm=0, bow_nm=0, row_offset_nm=0, n_scars=5, noise_nm=0)
    assert (np.abs(sc) > 0.5).any()
    assert (np.abs(sc) > 0.5).sum(axis=1).max() <= 110
    # noise level
    nz = add_artifacts(flat, 3, tilt_nm=0, bow_nm=0, row_offset_nm=0, n_scars=0, noise_nm=0.05)
    assert abs(float(nz.std()) - 0.05) < 0.01
    # same seed, same artifacts; NaN stays NaN
    assert np.array_equal(add_artifacts(flat, 7), add_artifacts(flat, 7))
    hole = flat.copy()
    hole[3, 4] = np.nan
    out = add_artifacts(hole, np.random.default_rng(0))
    assert np.isnan(out[3, 4]) and np.isfinite(out).sum() == out.size - 1


def test_draw_drift():
    rng = np.random.default_rng(0)
    assert not _draw_drift(rng, 5, 0.0).any()
    assert not _draw_drift(rng, 1, 2.0).any()
    drift = _draw_drift(np.random.default_rng(3), 6, 1.5)
    assert drift.shape == (6, 2) and drift[0].tolist() == [0.0, 0.0]
    assert np.abs(drift[1:]).max() > 0.1
    np.testing.assert_array_equal(drift, _draw_drift(np.random.default_rng(3), 6, 1.5))
