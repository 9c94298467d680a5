"""Tests of napari_calcite_afm.stats.mixtures: the mixture densities f and g."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from napari_calcite_afm.stats import (
    StatsError,
    height_cdf,
    height_pdf,
    increment_pdf,
    mixture_cdf,
    mixture_logpdf,
    mixture_pdf,
)


def test_increment_components_follow_the_formulas(model_fit):
    _, _, fit = model_fit
    a, b = fit.regions
    for ls in fit.lags:
        w = ls.weights.reshape(2, 2)
        m = ls.means.reshape(2, 2)
        s = ls.sigmas.reshape(2, 2)
        np.testing.assert_array_equal(w, ls.p)
        assert m[0, 0] == m[1, 1] == 0.0
        assert m[0, 1] == pytest.approx(b.mu - a.mu)  # p_AB: x in A, x + s in B
        assert m[1, 0] == pytest.approx(a.mu - b.mu)
        assert s[0, 0] == pytest.approx(a.sigma * math.sqrt(2 * (1 - ls.rho[1])))
        assert s[1, 1] == pytest.approx(b.sigma * math.sqrt(2 * (1 - ls.rho[2])))
        assert s[0, 1] == s[1, 0] == pytest.approx(math.hypot(a.sigma, b.sigma))
        d = np.linspace(-15, 15, 7)
        expected = sum(
            w[i, j] * sst.norm.pdf(d, m[i, j], s[i, j]) for i in range(2) for j in range(2)
        )
        np.testing.assert_allclose(increment_pdf(d, fit, ls.lag_px), expected, rtol=1e-12)
    zz = np.linspace(-12, 6, 9)
    expected = fit.c * sst.norm.pdf(zz, a.mu, a.sigma) + (1 - fit.c) * sst.norm.pdf(
        zz, b.mu, b.sigma
    )
    np.testing.assert_allclose(height_pdf(zz, fit), expected, rtol=1e-12)
    np.testing.assert_allclose(
        height_cdf(zz, fit),
        fit.c * sst.norm.cdf(zz, a.mu, a.sigma) + (1 - fit.c) * sst.norm.cdf(zz, b.mu, b.sigma),
        rtol=1e-12,
        atol=1e-15,
    )


def test_mixture_functions_are_consistent():
    w, m, s = [0.2, 0.8, 0.0], [-3.0, 1.0, np.nan], [0.7, 0.4, np.nan]  # zero weight ignored
    x = np.linspace(-10, 10, 20001)
    pdf = mixture_pdf(x, w, m, s)
    cdf = mixture_cdf(x, w, m, s)
    assert np.trapezoid(pdf, x) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.gradient(cdf, x), pdf, atol=1e-5)
    np.testing.assert_allclose(mixture_logpdf(x, w, m, s), np.log(pdf), rtol=1e-12)
    far = np.logaddexp(  # both densities underflow there: the log-sum-exp form takes over
        math.log(0.2) + sst.norm.logpdf(200.0, -3.0, 0.7),
        math.log(0.8) + sst.norm.logpdf(200.0, 1.0, 0.4),
    )
    assert mixture_logpdf(200.0, w, m, s) == pytest.approx(far, rel=1e-12)
    assert np.isnan(mixture_pdf(0.0, [0.5, 0.5], [0.0, np.nan], [1.0, 1.0]))


def test_height_model_of_an_em_fit_is_its_mixture(model_fit):
    _, _, fit = model_fit
    em = fit.em
    zz = np.linspace(-12, 6, 9)
    comps = (em.weights, em.means, em.sigmas)
    np.testing.assert_array_equal(height_pdf(zz, em), mixture_pdf(zz, *comps))
    np.testing.assert_array_equal(height_cdf(zz, em), mixture_cdf(zz, *comps))


def test_point_masses_and_mismatched_components():
    # a sigma = 0 component is a point mass: infinite density, a jump of the CDF
    assert mixture_pdf(1.0, [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]) == np.inf
    assert float(mixture_cdf(1.0, [0.5], [1.0], [0.0])) == 1.0
    assert float(mixture_cdf(1.0, [0.5], [1.0], [0.0], left=True)) == 0.0
    with pytest.raises(StatsError, match="same length"):
        mixture_pdf(0.0, [1.0, 0.0], [0.0], [1.0])
