"""Tests of napari_calcite_afm.stats.goodness: exact KS, histograms, L1 and JS distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from napari_calcite_afm.stats import (
    _MAX_BINS,
    _MIN_BINS,
    StatsError,
    histogram,
    histogram_distances,
    ks_distance,
    mixture_cdf,
)


def test_ks_distance_is_exact(fields):
    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000)
    assert ks_distance(x, sst.norm.cdf) == pytest.approx(sst.kstest(x, "norm").statistic, abs=1e-14)
    for trial in range(40):
        n = int(rng.choice([1, 7, 500, 30_000, 120_000]))
        w = rng.dirichlet([1, 1, 1])
        m = rng.normal(0, 5, 3)
        s = rng.uniform(0.05, 2, 3)
        comp = rng.choice(3, size=n, p=w)
        x = rng.normal(m[comp], s[comp])
        if trial % 4 == 1:
            x = np.round(x, 1)  # ties
        if trial % 4 == 2:
            x[: n // 10 + 1] = 1e4  # far outliers
            m = m + 0.2

        def cdf(v, w=w, m=m, s=s):
            return mixture_cdf(v, w, m, s)

        cdf_left = None
        if trial % 4 == 3:  # a point mass in the model and in the data
            s = s.copy()
            s[0] = 0.0
            x[comp == 0] = m[0]

            def cdf(v, w=w, m=m, s=s):
                return mixture_cdf(v, w, m, s)

            def cdf_left(v, w=w, m=m, s=s):
                return mixture_cdf(v, w, m, s, left=True)

        assert ks_distance(x, cdf, cdf_left=cdf_left) == pytest.approx(
            fields.brute_ks(x, cdf, cdf_left), abs=1e-13
        )


def test_histogram_and_distances():
    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 0.5, 200_000)
    h = histogram(x)
    assert _MIN_BINS <= h.density.size <= _MAX_BINS
    np.testing.assert_allclose(np.diff(h.edges), h.widths[0], rtol=1e-9)
    assert np.sum(h.density * h.widths) == pytest.approx(1 - h.outside, abs=1e-12)
    assert h.outside < 1e-3
    counts, _ = np.histogram(x, bins=h.edges)
    np.testing.assert_allclose(h.density * h.n * h.widths, counts, atol=0.5)

    def good(v):
        return sst.norm.cdf(v, 2.0, 0.5)

    def bad(v):
        return sst.norm.cdf(v, 2.3, 0.5)

    l1, js = histogram_distances(x, good)
    assert 0 <= l1 < 0.03 and 0 <= js < 0.02
    l1b, jsb = histogram_distances(x, bad)
    assert l1b > 5 * l1 and jsb > 5 * js and l1b <= 2 and jsb <= 1
    # far outliers stay outside the robust range but count in the distances
    y = np.concatenate([x, [1e6] * 10])
    hy = histogram(y)
    assert hy.edges[-1] < 100 and 10 / y.size <= hy.outside < 10 / y.size + 1e-3
    assert histogram(x, bins=30).density.size == 30


def test_distances_follow_their_definitions():
    """L1 and JS (base 2, via scipy) equal the formulas on the bin probabilities."""
    rng = np.random.default_rng(15)
    x = rng.normal(0.0, 1.0, 5_000)

    def cdf(v):
        return sst.norm.cdf(v, 0.2, 1.1)

    l1, js = histogram_distances(x, cdf, bins=40)
    h = histogram(x, bins=40)
    inside = h.density * h.widths
    below = np.count_nonzero(x < h.edges[0]) / x.size
    ps = np.concatenate(([below], inside, [1.0 - below - inside.sum()]))
    pm = np.diff(np.concatenate(([0.0], cdf(h.edges), [1.0])))
    mid = 0.5 * (ps + pm)
    div = sum(0.5 * np.sum(p[p > 0] * np.log2(p[p > 0] / mid[p > 0])) for p in (ps, pm))
    assert l1 == pytest.approx(np.abs(ps - pm).sum(), abs=1e-12)
    assert js == pytest.approx(math.sqrt(div), abs=1e-12)


def test_equal_probabilities_are_at_distance_zero():
    """A divergence that rounds below zero gives a JS distance of 0, not NaN."""
    from napari_calcite_afm.stats.goodness import _l1_js

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(50))
    assert _l1_js(p, p) == (0.0, 0.0)
    for _ in range(20):  # equal up to rounding: about half round below zero in scipy
        q = p * (1 + 1e-16 * rng.normal(size=p.size))
        l1, js = _l1_js(p, q)
        assert 0.0 <= js < 1e-7 and l1 < 1e-14


def test_empty_samples_and_undefined_models():
    assert math.isnan(ks_distance([np.nan], sst.norm.cdf))
    assert all(math.isnan(v) for v in histogram_distances([], sst.norm.cdf))
    with pytest.raises(StatsError, match="empty"):
        histogram([np.nan])
    with pytest.raises(StatsError, match="bins"):
        histogram([1.0, 2.0], bins=0)

    def undefined(v):
        return np.full(np.shape(v), np.nan)

    assert math.isnan(ks_distance([1.0, 2.0], undefined))
    assert all(math.isnan(v) for v in histogram_distances([1.0, 2.0], undefined))
