"""GSG estimators (napari_calcite_afm.stats.gsg_estimate): recovery on simulated fields,
step detection, degenerate input, the pieces (log-binned samples, crossing fraction)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.stats import gsg_correlation, simulate_gsg_field
from napari_calcite_afm.stats.gsg_estimate import (
    _best_q,
    _estimate,
    _field_samples,
    _probs,
    _summarise,
)

LAGS = (1, 2, 4)


def _samples(y, mask=None, step=False):
    mask = np.ones(y.shape, bool) if mask is None else mask
    return _field_samples(y, mask, LAGS, "both", step=step)


@pytest.mark.parametrize("method", ["ml", "moments"])
@pytest.mark.parametrize(("alpha", "ell", "seed"), [(1.3, 3.0, 21), (1.7, 5.0, 22)])
def test_estimators_recover_the_parameters(method, alpha, ell, seed):
    y = simulate_gsg_field((160, 160), alpha, 2.0, ell, mu=1.0, seed=seed)
    h, lags = _samples(y)
    p = _estimate(h, lags, method, steps=False, min_pixels=10)
    assert p.flags == []
    assert abs(p.alpha - alpha) < 0.2
    assert abs(p.sigma / 2.0 - 1.0) < 0.15
    assert p.mu == pytest.approx(y.mean())
    truth = gsg_correlation(np.array(LAGS), ell)
    assert np.abs(np.array([p.rho[s] for s in LAGS]) - truth).max() < 0.07
    assert all(q == 0 for q in p.step_fraction.values())
    assert math.isnan(p.step_height)
    assert (p.method, p.n, p.n_pairs[1]) == (method, y.size, 2 * 160 * 159)


def _stepped(seed, n=160, h=0.31, roughness=0.03):
    """Terraces: a staircase of steps of height ``h`` plus Gaussian roughness."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)[None, :] + 8.0 * np.sin(np.arange(n)[:, None] / 15.0)
    levels = np.floor(x / 9.0) * -h  # a step every 9 px, wavy
    return levels + roughness * rng.normal(size=(n, n))


def test_step_crossings_are_found_and_fitted():
    z = _stepped(23)
    h, lags = _samples(z, step=True)
    assert lags[1].step == pytest.approx(0.31, abs=0.02)
    p = _estimate(h, lags, "ml", steps=True, min_pixels=10)
    assert p.step_height == pytest.approx(0.31, abs=0.02)
    # a step every 9 px along x, none along y: about 1/18 of the pairs at lag 1
    assert p.step_fraction[1] == pytest.approx(1 / 18, abs=0.02)
    assert p.step_fraction[1] < p.step_fraction[2] < p.step_fraction[4]
    without = _estimate(h, lags, "ml", steps=False, min_pixels=10)
    assert without.loglik < p.loglik


def test_no_steps_in_a_gsg_field():
    y = simulate_gsg_field((160, 160), 1.2, 1.0, 3.0, seed=24)
    _, lags = _samples(y, step=True)
    assert math.isnan(lags[1].step)


@pytest.mark.parametrize("method", ["ml", "moments"])
def test_degenerate_input_gives_nan_and_a_flag(method):
    rng = np.random.default_rng(25)
    cases = {
        "values < min_pixels": (rng.normal(size=(3, 3)), None),
        "zero variance": (np.full((20, 20), 4.0), None),
        "kurtosis below 3": (rng.uniform(size=(64, 64)), None),
    }
    for why, (y, mask) in cases.items():
        h, lags = _samples(y, mask)
        p = _estimate(h, lags, method, steps=False, min_pixels=10)
        assert math.isnan(p.alpha) and math.isnan(p.sigma), why
        assert all(math.isnan(r) for r in p.rho.values()), why
        assert len(p.flags) == 1 and why in p.flags[0], (why, p.flags)


def test_a_lag_without_enough_pairs_is_left_out():
    y = simulate_gsg_field((40, 40), 1.0, 1.0, 2.0, seed=26)
    mask = np.zeros(y.shape, bool)
    mask[:, :3] = True  # three columns, and two rows: 20 pairs 30 px apart along x
    mask[:2, :] = True
    h, lags = _field_samples(y, mask, (1, 30), "x")
    assert lags[30].n == 20
    p = _estimate(h, lags, "ml", steps=False, min_pixels=25)
    assert math.isfinite(p.rho[1]) and math.isnan(p.rho[30])
    assert any("lag 30 px" in f for f in p.flags)


def test_summary_bins_are_exact():
    x = np.random.default_rng(27).standard_t(3, 50_000)
    smp = _summarise(x)
    ax = np.abs(x)
    assert smp.counts.sum() == x.size
    assert np.all(np.diff(smp.edges) > 0)
    expected = np.bincount(np.searchsorted(smp.edges, ax, side="right"), minlength=48)
    assert np.array_equal(smp.counts, expected)
    assert smp.m2 == pytest.approx(np.mean(x**2)) and smp.m4 == pytest.approx(np.mean(x**4))
    assert smp.kurtosis == pytest.approx(smp.m4 / smp.m2**2)


def test_best_q_finds_the_mixture_weight():
    rng = np.random.default_rng(28)
    p0 = rng.dirichlet(np.ones(20), size=(3, 2))
    p1 = rng.dirichlet(np.ones(20), size=(3, 2))
    truth = np.array([[0.0, 0.1], [0.3, 0.95], [0.6, 0.02]])
    counts = np.ones((2, 20))
    q = np.empty((3, 2))
    for j in range(3):  # counts proportional to the true mixture, lag by lag
        mix = (1 - truth[j, :, None]) * p0[j] + truth[j, :, None] * p1[j]
        q[j] = _best_q(p0[j : j + 1], p1[j : j + 1], 1e6 * mix)[0]
    assert np.allclose(q, truth, atol=1e-5)
    assert _probs(np.array([0.2, 0.7])).tolist() == pytest.approx([0.2, 0.5, 0.3])
    assert counts.shape == (2, 20)


def _q_loglik(q, p0, p1, counts):
    return float(np.sum(counts * np.log((1 - q) * p0 + q * p1)))


def test_best_q_with_bins_empty_without_steps_and_in_batches():
    # bins the model without steps leaves empty (p0 at the 1e-300 floor) make the slope
    # ~ n / q near 0; the weight must still be the maximiser, whatever the batching
    rng = np.random.default_rng(29)
    rows, lags, bins = 5, 3, 24
    p0 = rng.dirichlet(np.ones(bins), size=(rows, lags))
    p0[..., -4:] = 0.0
    p0 = _probs(np.cumsum(p0, axis=-1)[..., :-1])  # renormalised, floored at 1e-300
    p1 = rng.dirichlet(np.ones(bins), size=(rows, lags))
    counts = rng.integers(50, 5000, size=(lags, bins)).astype(float)
    counts[:, -4:] = [[3, 1, 0, 2], [40, 0, 0, 9], [1, 0, 0, 0]]
    q = _best_q(p0, p1, counts)
    for j in range(rows):
        one = _best_q(p0[j : j + 1], p1[j : j + 1], counts)[0]
        assert np.allclose(one, q[j], rtol=0, atol=1e-11)  # the batch does not matter
        for i in range(lags):
            args = (p0[j, i], p1[j, i], counts[i])
            assert 0 < q[j, i] < 0.95
            best = _q_loglik(q[j, i], *args)
            for v in (q[j, i] * 0.999, min(q[j, i] * 1.001, 0.95)):
                assert _q_loglik(v, *args) <= best
