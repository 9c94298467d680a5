"""Tests of napari_calcite_afm.stats.em: the binned EM fit of a Gaussian mixture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sst

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.stats import StatsError, em_gaussian_mixture, mixture_logpdf


def test_em_recovers_a_separated_mixture():
    rng = np.random.default_rng(7)
    n = 200_000
    comp = rng.random(n) < 0.3
    x = np.where(comp, rng.normal(-5.0, 1.0, n), rng.normal(0.0, 0.5, n))
    fit = em_gaussian_mixture(x)
    assert fit.converged and not fit.flags
    assert fit.c == pytest.approx(0.3, abs=0.005)  # lower-mean component first
    np.testing.assert_allclose(fit.means, [-5.0, 0.0], atol=0.02)
    np.testing.assert_allclose(fit.sigmas, [1.0, 0.5], atol=0.02)
    ll_true = float(np.sum(np.log(0.3 * sst.norm.pdf(x, -5, 1) + 0.7 * sst.norm.pdf(x, 0, 0.5))))
    assert fit.loglik >= ll_true - 1.0  # the maximum-likelihood fit beats the truth
    assert fit.loglik == pytest.approx(
        float(np.sum(mixture_logpdf(x, fit.weights, fit.means, fit.sigmas)))
    )
    assert fit.ks_height < 0.01 and fit.l1_height < 0.05
    again = em_gaussian_mixture(x)
    np.testing.assert_array_equal(again.means, fit.means)  # deterministic


def test_em_matches_pointwise_em():
    sk = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(-1.0, 0.6, 6_000), rng.normal(1.0, 0.8, 10_000)])
    fit = em_gaussian_mixture(x, tol=1e-12, max_iter=5000)
    ref = sk.GaussianMixture(2, tol=1e-9, max_iter=5000, random_state=0).fit(x[:, None])
    order = np.argsort(ref.means_.ravel())
    np.testing.assert_allclose(fit.means, ref.means_.ravel()[order], atol=5e-4)
    np.testing.assert_allclose(fit.weights, ref.weights_[order], atol=5e-4)
    np.testing.assert_allclose(fit.sigmas, np.sqrt(ref.covariances_.ravel()[order]), atol=5e-4)
    assert fit.loglik == pytest.approx(ref.score(x[:, None]) * x.size, abs=0.01)


def test_em_on_model_fields_compared_with_segmentation(model_fit):
    _, _, fit = model_fit
    em = fit.em
    assert em is not None and em.converged
    # here the classes are well separated, so EM finds the same modes as the segmentation
    assert em.c == pytest.approx(fit.c, abs=0.01)
    assert em.means[0] == pytest.approx(fit.regions[0].mu, abs=0.05)
    assert em.means[1] == pytest.approx(fit.regions[1].mu, abs=0.05)
    print(f"KS heights: segmentation {fit.ks_height:.4f}, EM {em.ks_height:.4f}")
    assert np.isfinite(em.ks_height) and np.isfinite(em.l1_height)


def test_em_degenerate_samples():
    fit = em_gaussian_mixture(np.full(100, 3.0))
    assert np.isnan(fit.means).all() and fit.flags
    fit = em_gaussian_mixture([1.0, np.nan])
    assert np.isnan(fit.means).all() and fit.flags
    with pytest.raises(CalciteAFMError):
        em_gaussian_mixture([1.0, 2.0], n_components=0)


def test_em_three_components_and_bad_settings():
    rng = np.random.default_rng(16)
    x = np.concatenate([rng.normal(m, 0.3, 20_000) for m in (-4.0, 0.0, 3.0)])
    fit = em_gaussian_mixture(x, 3)
    np.testing.assert_allclose(fit.means, [-4.0, 0.0, 3.0], atol=0.02)
    assert em_gaussian_mixture([], 2).flags == ["empty sample"]
    for kwargs in ({"n_components": 1.5}, {"max_iter": 0}, {"tol": 0.0}):
        with pytest.raises(StatsError):
            em_gaussian_mixture(x, **kwargs)
    short = em_gaussian_mixture(x, 3, max_iter=1)
    assert not short.converged and short.n_iter == 1 and "not converged" in short.flags[0]
