"""Tests of napari_calcite_afm.stats.lags: rho, p and the increment model at each lag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.stats import (
    _MAX_BINS,
    _MIN_BINS,
    fit_frame,
    fluctuation,
    increment_cdf,
    increments,
    ks_distance,
    pair_fractions,
)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_single_axis_matches_direct(fields, axis):
    z, labels = fields.model_frame((80, 120), seed=2)
    fit = fit_frame(z, labels, (1, 5), axis=axis)
    zp = fluctuation(z)
    for ls in fit.lags:
        assert ls.axis == axis
        for lab in (1, 2):
            a, b = fields.direct_pairs(zp, labels, lab, ls.lag_px, axis)
            assert ls.rho[lab] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-10)
        d = increments(z, ls.lag_px, axis)
        assert ls.n_pairs == d.size
        p, n = pair_fractions(labels, ls.lag_px, axis)
        np.testing.assert_allclose(ls.p, p, atol=1e-15)
        assert n == ls.n_pairs


def test_increment_model_matches_sample(fields, model_fit):
    z, _, fit = model_fit
    delta = fields.MU[1] - fields.MU[0]  # x in A (low), x + s in B: dZ near +8 nm, weight p_AB
    assert fit.ks_height < 0.02
    for ls in fit.lags:
        assert ls.ks_increment < 0.02
        assert ls.l1_increment < 0.06
        assert ls.js_increment < 0.05
        d = increments(z, ls.lag_px, "both")
        assert d.size == ls.n_pairs

        def cdf(v, ls=ls):
            return increment_cdf(v, fit, ls)

        assert ks_distance(d, cdf) == pytest.approx(ls.ks_increment, abs=1e-12)
        for centre, p_ij in ((delta, ls.p[0, 1]), (-delta, ls.p[1, 0])):
            frac = np.mean(np.abs(d - centre) < 4.0)
            model = float(cdf(centre + 4.0) - cdf(centre - 4.0))
            assert frac == pytest.approx(model, rel=0.02)
            assert frac == pytest.approx(p_ij, rel=0.03)
        # the secondary peaks show in the histogram: local maxima near +-delta
        h = ls.hist
        assert h is not None and _MIN_BINS <= h.density.size <= _MAX_BINS
        c = h.centers
        for sign in (1, -1):
            peak = h.density[np.abs(c - sign * delta) < 1.0].max()
            trough = h.density[np.abs(c - sign * delta / 2) < 0.5].max()
            assert peak > 3 * trough
        # and their weight grows with the lag (the scaling of increment distributions)
    p_ab = [ls.p[0, 1] for ls in fit.lags]
    assert all(np.diff(p_ab) > 0)


def test_pair_fractions_stationary_indicator_relation(fields, model_fit):
    _, labels, fit = model_fit
    c = fit.c
    ind = (labels == 1).astype(float)
    for ls in fit.lags:
        a, b = fields.direct_pairs(ind, np.ones_like(labels), 1, ls.lag_px, "both")
        rho_i = np.corrcoef(a, b)[0, 1]
        # exact with the pair ends' own fractions c1, c2 ...
        c1, c2 = a.mean(), b.mean()
        cov = rho_i * math.sqrt(c1 * (1 - c1) * c2 * (1 - c2))
        assert ls.p[0, 0] == pytest.approx(c1 * c2 + cov, abs=1e-12)
        assert ls.p[0, 1] == pytest.approx(c1 * (1 - c2) - cov, abs=1e-12)
        assert ls.p[1, 0] == pytest.approx((1 - c1) * c2 - cov, abs=1e-12)
        # ... and science.md's stationary form with the frame's c, up to edge effects
        assert ls.p[0, 0] == pytest.approx(c**2 + c * (1 - c) * rho_i, abs=5e-3)
        assert ls.p[1, 1] == pytest.approx((1 - c) ** 2 + c * (1 - c) * rho_i, abs=5e-3)
        assert ls.p[0, 1] == pytest.approx(c * (1 - c) * (1 - rho_i), abs=5e-3)
        assert ls.p[0, 1] == pytest.approx(ls.p[1, 0], rel=0.05)


def test_lag_longer_than_frame():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(64, 200))
    labels = np.where(z > 0.5, 1, 2).astype(np.uint8)
    fit = fit_frame(z, labels, (1, 100, 600))
    short, mid, long_ = fit.lags
    assert short.n_pairs > 0 and not short.flags
    assert mid.n_pairs == 64 * 100  # only x pairs fit
    assert any("no y pairs" in f for f in mid.flags)
    assert long_.n_pairs == 0 and np.isnan(long_.p).all()
    assert math.isnan(long_.rho[1]) and math.isnan(long_.ks_increment)
    assert any("no valid pairs" in f for f in long_.flags)
    assert len(fit.to_rows()) == 3


def test_lagged_gram_matches_the_direct_product():
    from napari_calcite_afm.stats.lags import _lagged_gram

    rng = np.random.default_rng(14)
    flat = rng.normal(size=(6, 5000))
    for offset in (1, 7, 1200):
        want = flat[:, :-offset] @ flat[:, offset:].T
        np.testing.assert_allclose(_lagged_gram(flat, offset), want, rtol=1e-12, atol=1e-9)
