"""GSG densities (napari_calcite_afm.stats.gsg): normalisation, the Gaussian case, moments,
the quadrature against Monte Carlo, simulated fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from napari_calcite_afm.stats import (
    StatsError,
    gsg_cdf,
    gsg_correlation,
    gsg_cross_components,
    gsg_height_components,
    gsg_increment_cdf,
    gsg_increment_components,
    gsg_increment_pdf,
    gsg_moments,
    gsg_pdf,
    ks_distance,
    mixture_cdf,
    mixture_pdf,
    simulate_gsg_field,
    subordinator_moment,
)

ALPHAS = (0.6, 1.2, 1.5, 1.9)


def _moments(w, s):
    """Variance and kurtosis of a zero-mean Gaussian scale mixture."""
    v = float(np.sum(w * s**2))
    return v, 3.0 * float(np.sum(w * s**4)) / v**2


@pytest.mark.parametrize("alpha", ALPHAS)
def test_height_density_integrates_to_one(alpha):
    y = np.linspace(-400.0, 400.0, 800_001)
    assert abs(gsg_pdf(y, alpha, 1.0, mu=3.0).sum() * 0.001 - 1.0) < 1e-6
    c = gsg_cdf(np.array([-1e4, 3.0, 1e4]), alpha, 1.0, mu=3.0)
    assert c[0] < 1e-9 and abs(c[1] - 0.5) < 1e-12 and c[2] > 1 - 1e-9


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("rho", (-0.5, 0.0, 0.9, 0.999))
def test_increment_density_integrates_to_one(alpha, rho):
    # the peak at 0 is narrow for rho -> 1: a grid dense near 0 (trapezoids)
    half = np.logspace(-7, 3, 40_001)
    d = np.concatenate([-half[::-1], [0.0], half])
    integral = np.trapezoid(gsg_increment_pdf(d, alpha, 1.0, rho), d)
    assert abs(integral - 1.0) < 1e-4
    c = gsg_increment_cdf(np.array([-1e4, 0.0, 1e4]), alpha, 1.0, rho)
    assert c[0] < 1e-9 and abs(c[1] - 0.5) < 1e-12 and c[2] > 1 - 1e-9
    w, m, s = gsg_increment_components(alpha, 1.0, rho)
    assert abs(w.sum() - 1.0) < 1e-12 and np.all(m == 0) and np.all(s > 0)


def test_alpha_two_is_the_gaussian_exactly():
    y = np.linspace(-5.0, 7.0, 101)
    assert np.array_equal(gsg_pdf(y, 2.0, 1.5, mu=1.0), mixture_pdf(y, [1.0], [1.0], [1.5]))
    assert np.allclose(gsg_cdf(y, 2.0, 1.5, mu=1.0), sst.norm.cdf(y, 1.0, 1.5), atol=1e-15)
    w, m, s = gsg_increment_components(2.0, 1.5, 0.6)
    assert w.tolist() == [1.0] and m.tolist() == [0.0]
    assert s[0] == 1.5 * math.sqrt(2 * (1 - 0.6))
    w, m, s = gsg_cross_components(2.0, 3.0, -5.0, 2.0, 4.0, 1.0)
    assert (w.tolist(), m.tolist(), s.tolist()) == ([1.0], [6.0], [5.0])
    assert gsg_moments(2.0, 2.0, rho=0.3) == {
        "variance": 4.0,
        "kurtosis": 3.0,
        "correlation": 0.3,
        "increment_variance": pytest.approx(4.0 * 2 * 0.7),
        "increment_kurtosis": pytest.approx(3.0),
    }


@pytest.mark.parametrize("alpha", ALPHAS)
def test_moments_match_the_closed_forms(alpha):
    a = 2.0 - alpha
    m = gsg_moments(alpha, 2.0, rho=0.7)
    # science notes: E[U^k] = exp(k^2 a^2 / 2), Var Y = sigma^2 E[U], kurtosis 3 exp(a^2)
    assert subordinator_moment(1.0, alpha) == pytest.approx(math.exp(a * a / 2))
    assert m["variance"] == pytest.approx(4.0 * math.exp(a * a / 2))
    assert m["kurtosis"] == pytest.approx(3.0 * math.exp(a * a))
    assert m["correlation"] == pytest.approx(math.exp(-a * a / 4) * 0.7)
    # the quadrature keeps the second moment and the kurtosis
    v, k = _moments(*gsg_height_components(alpha, 2.0)[::2])
    assert v == pytest.approx(m["variance"], rel=1e-9)
    assert k == pytest.approx(m["kurtosis"], rel=2e-3)
    w, _, s = gsg_increment_components(alpha, 2.0, 0.7)
    v, k = _moments(w, s)
    assert v == pytest.approx(m["increment_variance"], rel=2e-3)
    # the fourth moment lives in the far tail of V: 3 % at alpha 0.6, finer above
    assert k == pytest.approx(m["increment_kurtosis"], rel=3e-2 if alpha < 1 else 5e-3)


@pytest.mark.parametrize(("alpha", "rho"), [(1.2, 0.0), (1.2, 0.999), (0.8, 0.9), (1.8, 0.5)])
def test_increment_cdf_matches_monte_carlo(alpha, rho):
    """The quadrature against 400 000 increments drawn from the definition."""
    rng = np.random.default_rng(11)
    n, a = 400_000, 2.0 - alpha
    g1 = rng.normal(size=n)
    g2 = rho * g1 + math.sqrt(1 - rho * rho) * rng.normal(size=n)
    u1, u2 = np.exp(a * rng.normal(size=n)), np.exp(a * rng.normal(size=n))
    d = 1.3 * (np.sqrt(u2) * g2 - np.sqrt(u1) * g1)
    assert ks_distance(d, lambda x: gsg_increment_cdf(x, alpha, 1.3, rho)) < 0.004
    y = 1.3 * np.sqrt(u1) * g1
    assert ks_distance(y, lambda x: gsg_cdf(x, alpha, 1.3)) < 0.004


def test_cross_components_match_monte_carlo():
    rng = np.random.default_rng(12)
    n = 300_000
    y1 = -2.0 + 0.5 * np.exp(0.4 * rng.normal(size=n)) * rng.normal(size=n)  # alpha 1.2
    y2 = 1.0 + 0.3 * np.exp(0.25 * rng.normal(size=n)) * rng.normal(size=n)  # alpha 1.5
    w, m, s = gsg_cross_components(1.2, 0.5, -2.0, 1.5, 0.3, 1.0)
    assert m[0] == 3.0
    assert ks_distance(y2 - y1, lambda x: mixture_cdf(x, w, m, s)) < 0.004


@pytest.mark.parametrize(
    "call",
    [
        lambda: gsg_pdf(0.0, 0.0, 1.0),
        lambda: gsg_pdf(0.0, 2.5, 1.0),
        lambda: gsg_pdf(0.0, 1.5, -1.0),
        lambda: gsg_increment_pdf(0.0, 1.5, 1.0, 1.5),
        lambda: gsg_moments(float("nan"), 1.0),
        lambda: gsg_correlation(1.0, 0.0),
        lambda: gsg_correlation(1.0, 2.0, "spherical"),
        lambda: simulate_gsg_field((0, 4), 1.5, 1.0, 2.0),
    ],
)
def test_bad_arguments_raise_stats_errors(call):
    with pytest.raises(StatsError):
        call()


def test_simulated_field_has_the_model_statistics():
    alpha, sigma, ell = 1.4, 2.0, 4.0
    y = simulate_gsg_field((256, 256), alpha, sigma, ell, mu=5.0, seed=13)
    m = gsg_moments(alpha, sigma, rho=float(gsg_correlation(2, ell)))
    z = y - 5.0
    assert abs(y.mean() - 5.0) < 0.2
    assert z.var() == pytest.approx(m["variance"], rel=0.1)
    assert sst.kurtosis(z.ravel(), fisher=False) == pytest.approx(m["kurtosis"], rel=0.1)
    corr = np.mean(z[:, 2:] * z[:, :-2]) / z.var()
    assert corr == pytest.approx(m["correlation"], abs=0.03)
    same = simulate_gsg_field((256, 256), alpha, sigma, ell, mu=5.0, seed=13)
    assert np.array_equal(y, same)
    g = simulate_gsg_field((256, 256), 2.0, 1.0, ell, covariance="gaussian", seed=14)
    assert np.mean(g[:, 4:] * g[:, :-4]) == pytest.approx(math.exp(-1.0), abs=0.05)


def test_scale_mixture_cdf_on_sorted_points_is_the_same():
    from napari_calcite_afm.stats.gsg import _scale_mixture_cdf

    x = np.sort(np.concatenate([np.linspace(-50, 50, 801), [-1e-9, 0.0, 3e-3]]))
    w = np.array([0.5, 0.3, 0.15, 0.05])
    s = np.array([0.01, 0.4, 2.0, 9.0])
    fast = _scale_mixture_cdf(x, w, s, sorted_x=True)
    assert np.array_equal(fast, _scale_mixture_cdf(x, w, s))  # the same numbers, bit for bit
    assert fast[0] < 1e-6 and fast[-1] > 1 - 1e-6 and np.all(np.diff(fast) >= 0)
