"""Tests of napari_calcite_afm.stats: the multimodal Gaussian model (science.md).

The synthetic frames are drawn from the model itself: two independent stationary Gaussian
fields (Gaussian-filtered white noise, periodic, so their correlation is known exactly)
laid over a thresholded smooth random indicator with c = 0.3. Tolerances on the recovered
parameters are a few standard errors computed from the known correlation (integral scale
for means and standard deviations, Bartlett's formula for correlation coefficients).
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy import stats as sst

from napari_calcite_afm import stats as S
from napari_calcite_afm.io import CalciteAFMError

MU = (-8.0, 0.0)  # mu_A (pits, low), mu_B (terrace)
SIG = (1.0, 0.5)
ELL = 3.0  # Gaussian kernel std of the fields, pixels
C_TRUE = 0.3
LAGS = (1, 2, 4, 8)


# ----------------------------------------------------------------------------- helpers
def _kernel(ell: float, n: int = 257) -> np.ndarray:
    delta = np.zeros(n)
    delta[n // 2] = 1.0
    return ndi.gaussian_filter1d(delta, ell, mode="wrap", truncate=4.0)


def field_corr(ell: float, smax: int = 64) -> np.ndarray:
    """Exact correlation along one axis of 2D Gaussian-filtered white noise (periodic)."""
    k = _kernel(ell)
    return np.array([np.dot(k, np.roll(k, s)) for s in range(smax + 1)]) / np.dot(k, k)


def unit_field(shape, ell, rng) -> np.ndarray:
    """Stationary zero-mean Gaussian field with unit variance and known correlation."""
    f = ndi.gaussian_filter(rng.normal(size=shape), ell, mode="wrap", truncate=4.0)
    k = _kernel(ell)
    return f / np.dot(k, k)  # variance of the filtered noise is (sum k^2)^2


def model_frame(shape=(512, 512), seed=0, mu=MU, sig=SIG, ell=ELL, c=C_TRUE):
    rng = np.random.default_rng(seed)
    fa = unit_field(shape, ell, rng)
    fb = unit_field(shape, ell, rng)
    smooth = ndi.gaussian_filter(rng.normal(size=shape), 15.0, mode="wrap")
    mask_a = smooth < np.quantile(smooth, c)
    z = np.where(mask_a, mu[0] + sig[0] * fa, mu[1] + sig[1] * fb).astype(np.float32)
    labels = np.where(mask_a, 1, 2).astype(np.uint8)
    return z, labels


def bartlett_se(rho: np.ndarray, s: int, n: float, kmax: int = 40) -> float:
    """Bartlett's standard error of a lag-s correlation estimate from n pairs (2D field)."""
    k = np.arange(-kmax, kmax + 1)
    kx, ky = np.meshgrid(k, k, indexing="ij")

    def r2(dx, dy):
        dx, dy = np.abs(dx), np.abs(dy)
        ok = (dx <= kmax) & (dy <= kmax)
        out = np.zeros(dx.shape)
        out[ok] = rho[dx[ok]] * rho[dy[ok]]
        return out

    rs = rho[s]
    terms = (
        r2(kx, ky) ** 2
        + r2(kx + s, ky) * r2(kx - s, ky)
        - 4 * rs * r2(kx, ky) * r2(kx - s, ky)
        + 2 * rs**2 * r2(kx, ky) ** 2
    )
    return math.sqrt(terms.sum() / n)


def brute_ks(x, cdf, cdf_left=None) -> float:
    x = np.sort(np.asarray(x, float))
    n = x.size
    lo = np.searchsorted(x, x, "left")
    hi = np.searchsorted(x, x, "right")
    f = cdf(x)
    fl = cdf_left(x) if cdf_left else f
    return float(max(np.max(np.abs(hi / n - f)), np.max(np.abs(lo / n - fl))))


def direct_pairs(zp, lab, cls, s, axis):
    """Both ends of the pairs (x, x + s) lying in class `cls` (reference implementation)."""
    a_parts, b_parts = [], []
    if axis in ("x", "both"):
        m = (lab[:, :-s] == cls) & (lab[:, s:] == cls)
        a_parts.append(zp[:, :-s][m])
        b_parts.append(zp[:, s:][m])
    if axis in ("y", "both"):
        m = (lab[:-s] == cls) & (lab[s:] == cls)
        a_parts.append(zp[:-s][m])
        b_parts.append(zp[s:][m])
    return np.concatenate(a_parts), np.concatenate(b_parts)


@pytest.fixture(scope="module")
def model_fit():
    z, labels = model_frame()
    fit = S.fit_frame(z, labels, LAGS, pixel_size_nm=11.7)
    return z, labels, fit


def test_threads_give_the_same_fit_as_one_thread():
    """Tasks on several threads each use their own scratch arrays: same numbers."""
    z, labels = model_frame((192, 160), seed=5)
    z[3, 7] = np.nan
    one = S.fit_frame(z, labels, (1, 2, 4, 8, 16), workers=1).to_dict(include_histograms=True)
    work = S._Workspace()
    for _ in range(2):  # a reused workspace (as fit_stack does) too
        many = S.fit_frame(z, labels, (1, 2, 4, 8, 16), workers=3, _workspace=work)
        assert many.to_dict(include_histograms=True) == one
    stack = S.fit_stack(np.stack([z, z[::-1]]), np.stack([labels, labels[::-1]]), (1, 3), workers=2)
    assert stack[0].ks_height == S.fit_frame(z, labels, (1, 3), workers=1).ks_height


def test_concurrent_frames_keep_their_own_scratch_arrays():
    """fit_frame from several threads at once (as the pipeline runs it) is unaffected."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [model_frame((160, 144), seed=s) for s in (7, 8, 9, 10)]
    want = [S.fit_frame(z, lab, (1, 3), workers=1).to_dict() for z, lab in frames]
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(lambda f: S.fit_frame(*f, (1, 3), workers=1).to_dict(), frames * 3))
    assert got == want * 3


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_bad_workers_raise(workers):
    z, labels = model_frame((64, 64), seed=6)
    with pytest.raises(S.StatsError, match="workers"):
        S.fit_frame(z, labels, (1, 2), workers=workers)


# ----------------------------------------------------------------------------- identities
def _check_identities(fit, z, labels):
    w, mu, sig = fit.height_components()
    ok = np.isfinite(mu)
    valid = np.isfinite(z) & (labels > 0)
    zp = z.astype(np.float64)[valid] - fit.mean_height_nm
    scale = max(1.0, float(np.abs(zp).max()))
    assert abs(np.sum(w[ok] * mu[ok])) < 1e-12 * scale
    var_total = zp.var()
    assert np.sum(w[ok] * (sig[ok] ** 2 + mu[ok] ** 2)) == pytest.approx(var_total, rel=1e-11)


def test_identities_two_classes(model_fit):
    z, labels, fit = model_fit
    c = fit.c
    a, b = fit.regions
    assert c * a.mu + (1 - c) * b.mu == pytest.approx(0.0, abs=1e-12)
    var = np.var(z.astype(np.float64) - fit.mean_height_nm)
    model_var = c * a.sigma**2 + (1 - c) * b.sigma**2 + c * (1 - c) * (a.mu - b.mu) ** 2
    assert model_var == pytest.approx(var, rel=1e-12)
    _check_identities(fit, z, labels)


def test_identities_with_nan_and_unlabelled_pixels():
    rng = np.random.default_rng(5)
    z, labels = model_frame((96, 128), seed=5)
    z = z.astype(np.float64)
    z[rng.random(z.shape) < 0.05] = np.nan
    labels[rng.random(z.shape) < 0.05] = 0
    labels[rng.random(z.shape) < 0.1] = 3
    for k in (2, 3):
        fit = S.fit_frame(z, labels, (1, 3), n_classes=k)
        assert sum(r.weight for r in fit.regions) == pytest.approx(1.0, abs=1e-15)
        _check_identities(fit, z, labels)


def test_parameters_equal_direct_numpy(model_fit):
    z, labels, fit = model_fit
    zp = z.astype(np.float64) - z.astype(np.float64).mean()
    assert fit.mean_height_nm == pytest.approx(float(z.astype(np.float64).mean()), abs=1e-12)
    assert fit.c == np.mean(labels == 1)  # exact
    for r, lab in zip(fit.regions, (1, 2)):
        assert r.mu == pytest.approx(zp[labels == lab].mean(), abs=1e-12)
        assert r.sigma == pytest.approx(zp[labels == lab].std(), rel=1e-12)
        assert r.n_pixels == np.count_nonzero(labels == lab)
    for ls in fit.lags:
        assert ls.lag_nm == pytest.approx(11.7 * ls.lag_px)
        for lab in (1, 2):
            a, b = direct_pairs(zp, labels, lab, ls.lag_px, "both")
            assert ls.n_same_pairs[lab] == a.size
            assert ls.rho[lab] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-10)


@pytest.mark.parametrize("axis", ["x", "y"])
def test_single_axis_matches_direct(axis):
    z, labels = model_frame((80, 120), seed=2)
    fit = S.fit_frame(z, labels, (1, 5), axis=axis)
    zp = S.fluctuation(z)
    for ls in fit.lags:
        assert ls.axis == axis
        for lab in (1, 2):
            a, b = direct_pairs(zp, labels, lab, ls.lag_px, axis)
            assert ls.rho[lab] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-10)
        d = S.increments(z, ls.lag_px, axis)
        assert ls.n_pairs == d.size
        p, n = S.pair_fractions(labels, ls.lag_px, axis)
        np.testing.assert_allclose(ls.p, p, atol=1e-15)
        assert n == ls.n_pairs


# ----------------------------------------------------------------------------- recovery
def test_recovers_true_parameters(model_fit):
    _, labels, fit = model_fit
    a, b = fit.regions
    assert fit.c == pytest.approx(C_TRUE, abs=1 / labels.size)
    # standard errors of correlated fields: mean ~ sigma sqrt(A_c / n), A_c = 4 pi l^2;
    # standard deviation ~ sigma sqrt(pi l^2 / n) (integral of rho^2 = 2 pi l^2)
    area = 4 * math.pi * ELL**2
    se_mu = math.hypot(SIG[0] * math.sqrt(area / a.n_pixels), SIG[1] * math.sqrt(area / b.n_pixels))
    assert a.mu - b.mu == pytest.approx(MU[0] - MU[1], abs=4 * se_mu)
    for r, sig in zip((a, b), SIG):
        se_sig = sig * math.sqrt(math.pi * ELL**2 / r.n_pixels)
        assert r.sigma == pytest.approx(sig, abs=4 * se_sig)
    rho_true = field_corr(ELL)
    # the discrete kernel's correlation is the continuous exp(-s^2 / (4 l^2)) to 1e-6
    np.testing.assert_allclose(
        rho_true[list(LAGS)], np.exp(-(np.array(LAGS) ** 2) / (4 * ELL**2)), atol=1e-4
    )
    for ls in fit.lags:
        for lab in (1, 2):
            # Bartlett's formula with the pairs of one direction: conservative for "both"
            se = bartlett_se(rho_true, ls.lag_px, ls.n_same_pairs[lab] / 2)
            assert ls.rho[lab] == pytest.approx(rho_true[ls.lag_px], abs=5 * se)


def test_increment_model_matches_sample(model_fit):
    z, _, fit = model_fit
    delta = MU[1] - MU[0]  # x in A (low), x + s in B: dZ near +8 nm, weight p_AB
    assert fit.ks_height < 0.02
    for ls in fit.lags:
        assert ls.ks_increment < 0.02
        assert ls.l1_increment < 0.06
        assert ls.js_increment < 0.05
        d = S.increments(z, ls.lag_px, "both")
        assert d.size == ls.n_pairs

        def cdf(v, ls=ls):
            return S.increment_cdf(v, fit, ls)

        assert S.ks_distance(d, cdf) == pytest.approx(ls.ks_increment, abs=1e-12)
        for centre, p_ij in ((delta, ls.p[0, 1]), (-delta, ls.p[1, 0])):
            frac = np.mean(np.abs(d - centre) < 4.0)
            model = float(cdf(centre + 4.0) - cdf(centre - 4.0))
            assert frac == pytest.approx(model, rel=0.02)
            assert frac == pytest.approx(p_ij, rel=0.03)
        # the secondary peaks show in the histogram: local maxima near +-delta
        h = ls.hist
        assert h is not None and S._MIN_BINS <= h.density.size <= S._MAX_BINS
        c = h.centers
        for sign in (1, -1):
            peak = h.density[np.abs(c - sign * delta) < 1.0].max()
            trough = h.density[np.abs(c - sign * delta / 2) < 0.5].max()
            assert peak > 3 * trough
        # and their weight grows with the lag (the scaling of increment distributions)
    p_ab = [ls.p[0, 1] for ls in fit.lags]
    assert all(np.diff(p_ab) > 0)


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
        np.testing.assert_allclose(S.increment_pdf(d, fit, ls.lag_px), expected, rtol=1e-12)
    zz = np.linspace(-12, 6, 9)
    expected = fit.c * sst.norm.pdf(zz, a.mu, a.sigma) + (1 - fit.c) * sst.norm.pdf(
        zz, b.mu, b.sigma
    )
    np.testing.assert_allclose(S.height_pdf(zz, fit), expected, rtol=1e-12)
    np.testing.assert_allclose(
        S.height_cdf(zz, fit),
        fit.c * sst.norm.cdf(zz, a.mu, a.sigma) + (1 - fit.c) * sst.norm.cdf(zz, b.mu, b.sigma),
        rtol=1e-12,
        atol=1e-15,
    )


# ----------------------------------------------------------------------------- pair fractions
def _count_pairs_loop(labels, s, axis, k):
    lut = {0: None, 1: 0, 2: 1, 3: 1 if k == 2 else 2}
    counts = np.zeros((k, k))
    rows, cols = labels.shape
    steps = {"x": [(0, s)], "y": [(s, 0)], "both": [(0, s), (s, 0)]}[axis]
    for dr, dc in steps:
        for r in range(rows - dr):
            for c in range(cols - dc):
                i, j = lut[int(labels[r, c])], lut[int(labels[r + dr, c + dc])]
                if i is not None and j is not None:
                    counts[i, j] += 1
    return counts / counts.sum(), int(counts.sum())


@pytest.mark.parametrize("axis", ["x", "y", "both"])
@pytest.mark.parametrize("k", [2, 3])
def test_pair_fractions_match_direct_counts(axis, k):
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 4, size=(17, 23)).astype(np.uint8)
    for s in (1, 3):
        p, n = S.pair_fractions(labels, s, axis, n_classes=k)
        p_ref, n_ref = _count_pairs_loop(labels, s, axis, k)
        assert n == n_ref
        np.testing.assert_allclose(p, p_ref, atol=1e-15)
        assert p.sum() == pytest.approx(1.0, abs=1e-14)
        z = rng.normal(size=labels.shape)
        fit = S.fit_frame(z, labels, (s,), axis=axis, n_classes=k, em=False, min_pixels=1)
        np.testing.assert_allclose(fit.lags[0].p, p_ref, atol=1e-15)
        assert fit.lags[0].n_pairs == n_ref


def test_pair_fractions_half_plane_formula():
    rows, cols, s = 32, 40, 3
    labels = np.full((rows, cols), 2, dtype=np.uint8)
    labels[:, : cols // 2] = 1
    p, _ = S.pair_fractions(labels, s, "x")
    half = cols // 2
    assert p[0, 0] == pytest.approx((half - s) / (cols - s))
    assert p[1, 1] == pytest.approx((half - s) / (cols - s))
    assert p[0, 1] == pytest.approx(s / (cols - s))  # A then B going right
    assert p[1, 0] == 0.0
    p, _ = S.pair_fractions(labels, s, "y")
    np.testing.assert_allclose(p, [[0.5, 0.0], [0.0, 0.5]])


def test_pair_fractions_stationary_indicator_relation(model_fit):
    _, labels, fit = model_fit
    c = fit.c
    ind = (labels == 1).astype(float)
    for ls in fit.lags:
        a, b = direct_pairs(ind, np.ones_like(labels), 1, ls.lag_px, "both")
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


# ----------------------------------------------------------------------------- KS, histograms
def test_ks_distance_is_exact():
    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000)
    assert S.ks_distance(x, sst.norm.cdf) == pytest.approx(
        sst.kstest(x, "norm").statistic, abs=1e-14
    )
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
            return S.mixture_cdf(v, w, m, s)

        cdf_left = None
        if trial % 4 == 3:  # a point mass in the model and in the data
            s = s.copy()
            s[0] = 0.0
            x[comp == 0] = m[0]

            def cdf(v, w=w, m=m, s=s):
                return S.mixture_cdf(v, w, m, s)

            def cdf_left(v, w=w, m=m, s=s):
                return S.mixture_cdf(v, w, m, s, left=True)

        assert S.ks_distance(x, cdf, cdf_left=cdf_left) == pytest.approx(
            brute_ks(x, cdf, cdf_left), abs=1e-13
        )


def test_histogram_and_distances():
    rng = np.random.default_rng(4)
    x = rng.normal(2.0, 0.5, 200_000)
    h = S.histogram(x)
    assert S._MIN_BINS <= h.density.size <= S._MAX_BINS
    np.testing.assert_allclose(np.diff(h.edges), h.widths[0], rtol=1e-9)
    assert np.sum(h.density * h.widths) == pytest.approx(1 - h.outside, abs=1e-12)
    assert h.outside < 1e-3
    counts, _ = np.histogram(x, bins=h.edges)
    np.testing.assert_allclose(h.density * h.n * h.widths, counts, atol=0.5)

    def good(v):
        return sst.norm.cdf(v, 2.0, 0.5)

    def bad(v):
        return sst.norm.cdf(v, 2.3, 0.5)

    l1, js = S.histogram_distances(x, good)
    assert 0 <= l1 < 0.03 and 0 <= js < 0.02
    l1b, jsb = S.histogram_distances(x, bad)
    assert l1b > 5 * l1 and jsb > 5 * js and l1b <= 2 and jsb <= 1
    # far outliers stay outside the robust range but count in the distances
    y = np.concatenate([x, [1e6] * 10])
    hy = S.histogram(y)
    assert hy.edges[-1] < 100 and 10 / y.size <= hy.outside < 10 / y.size + 1e-3
    assert S.histogram(x, bins=30).density.size == 30


def test_mixture_functions_are_consistent():
    w, m, s = [0.2, 0.8, 0.0], [-3.0, 1.0, np.nan], [0.7, 0.4, np.nan]  # zero weight ignored
    x = np.linspace(-10, 10, 20001)
    pdf = S.mixture_pdf(x, w, m, s)
    cdf = S.mixture_cdf(x, w, m, s)
    assert np.trapezoid(pdf, x) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.gradient(cdf, x), pdf, atol=1e-5)
    np.testing.assert_allclose(S.mixture_logpdf(x, w, m, s), np.log(pdf), rtol=1e-12)
    far = np.logaddexp(  # both densities underflow there: the log-sum-exp form takes over
        math.log(0.2) + sst.norm.logpdf(200.0, -3.0, 0.7),
        math.log(0.8) + sst.norm.logpdf(200.0, 1.0, 0.4),
    )
    assert S.mixture_logpdf(200.0, w, m, s) == pytest.approx(far, rel=1e-12)
    assert np.isnan(S.mixture_pdf(0.0, [0.5, 0.5], [0.0, np.nan], [1.0, 1.0]))


# ----------------------------------------------------------------------------- EM
def test_em_recovers_a_separated_mixture():
    rng = np.random.default_rng(7)
    n = 200_000
    comp = rng.random(n) < 0.3
    x = np.where(comp, rng.normal(-5.0, 1.0, n), rng.normal(0.0, 0.5, n))
    fit = S.em_gaussian_mixture(x)
    assert fit.converged and not fit.flags
    assert fit.c == pytest.approx(0.3, abs=0.005)  # lower-mean component first
    np.testing.assert_allclose(fit.means, [-5.0, 0.0], atol=0.02)
    np.testing.assert_allclose(fit.sigmas, [1.0, 0.5], atol=0.02)
    ll_true = float(np.sum(np.log(0.3 * sst.norm.pdf(x, -5, 1) + 0.7 * sst.norm.pdf(x, 0, 0.5))))
    assert fit.loglik >= ll_true - 1.0  # the maximum-likelihood fit beats the truth
    assert fit.loglik == pytest.approx(
        float(np.sum(S.mixture_logpdf(x, fit.weights, fit.means, fit.sigmas)))
    )
    assert fit.ks_height < 0.01 and fit.l1_height < 0.05
    again = S.em_gaussian_mixture(x)
    np.testing.assert_array_equal(again.means, fit.means)  # deterministic


def test_em_matches_pointwise_em():
    sk = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(-1.0, 0.6, 6_000), rng.normal(1.0, 0.8, 10_000)])
    fit = S.em_gaussian_mixture(x, tol=1e-12, max_iter=5000)
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
    fit = S.em_gaussian_mixture(np.full(100, 3.0))
    assert np.isnan(fit.means).all() and fit.flags
    fit = S.em_gaussian_mixture([1.0, np.nan])
    assert np.isnan(fit.means).all() and fit.flags
    with pytest.raises(CalciteAFMError):
        S.em_gaussian_mixture([1.0, 2.0], n_components=0)


# ----------------------------------------------------------------------------- edge cases
def test_region_empty():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40, 50))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    fit = S.fit_frame(z, labels, (1, 2))
    a, b = fit.regions
    assert a.weight == 0.0 and a.n_pixels == 0
    assert math.isnan(a.mu) and math.isnan(a.sigma)
    assert "region A empty" in fit.flags
    assert b.weight == 1.0 and b.sigma > 0
    assert np.isfinite(fit.ks_height)  # the model is B alone
    for ls in fit.lags:
        assert math.isnan(ls.rho[1]) and np.isfinite(ls.rho[2])
        assert ls.p[0, 0] == 0.0 and ls.p[1, 1] == 1.0
        assert np.isfinite(ls.ks_increment)
    rows = fit.to_rows()
    assert len(rows) == 2 and "region A empty" in rows[0]["flags"]


def test_region_too_small():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(40, 50))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[0, :5] = 1
    fit = S.fit_frame(z, labels, (1,), min_pixels=10)
    a = fit.regions[0]
    assert a.n_pixels == 5 and a.weight == 5 / z.size
    assert math.isnan(a.mu) and math.isnan(a.sigma)
    assert any("region A: 5 pixels" in f for f in fit.flags)
    assert math.isnan(fit.ks_height) and any("height model undefined" in f for f in fit.flags)
    assert math.isnan(fit.lags[0].ks_increment)
    assert math.isnan(fit.lags[0].rho[1])
    fit = S.fit_frame(z, labels, (1,), min_pixels=5)
    assert np.isfinite(fit.regions[0].mu) and np.isfinite(fit.ks_height)


def test_constant_frame():
    z = np.full((30, 30), 7.25, dtype=np.float32)
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[5:15, 5:15] = 1
    fit = S.fit_frame(z, labels, (1, 4))
    assert any("constant frame" in f for f in fit.flags)
    assert fit.mean_height_nm == 7.25
    for r in fit.regions:
        assert r.sigma == 0.0 and r.mu == 0.0
    assert fit.ks_height == 0.0
    for ls in fit.lags:
        assert math.isnan(ls.rho[1]) and math.isnan(ls.rho[2])
        assert ls.ks_increment == 0.0  # all increments 0, the model a point mass at 0
        assert ls.flags
    assert fit.em is not None and np.isnan(fit.em.means).all()
    json.dumps(fit.to_dict())


def test_constant_region_in_a_noisy_frame():
    rng = np.random.default_rng(3)
    z = np.zeros((60, 60))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[10:40, 10:40] = 1
    z[labels == 1] = rng.normal(-3, 0.5, 900)
    fit = S.fit_frame(z, labels, (1,))
    assert fit.regions[1].sigma == 0.0
    assert any("region B constant" in f for f in fit.flags)
    assert math.isnan(fit.lags[0].rho[2]) and np.isfinite(fit.lags[0].rho[1])
    assert np.isfinite(fit.ks_height) and fit.ks_height < 0.1


def test_lag_longer_than_frame():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(64, 200))
    labels = np.where(z > 0.5, 1, 2).astype(np.uint8)
    fit = S.fit_frame(z, labels, (1, 100, 600))
    short, mid, long_ = fit.lags
    assert short.n_pairs > 0 and not short.flags
    assert mid.n_pairs == 64 * 100  # only x pairs fit
    assert any("no y pairs" in f for f in mid.flags)
    assert long_.n_pairs == 0 and np.isnan(long_.p).all()
    assert math.isnan(long_.rho[1]) and math.isnan(long_.ks_increment)
    assert any("no valid pairs" in f for f in long_.flags)
    assert len(fit.to_rows()) == 3


def test_nan_pixels_are_ignored_like_unlabelled_ones():
    rng = np.random.default_rng(6)
    z, labels = model_frame((96, 96), seed=6)
    z = z.astype(np.float64)
    holes = rng.random(z.shape) < 0.03
    z_nan = z.copy()
    z_nan[holes] = np.nan
    lab0 = labels.copy()
    lab0[holes] = 0
    f1 = S.fit_frame(z_nan, labels, (1, 3))
    f2 = S.fit_frame(z, lab0, (1, 3))
    assert f1.n_valid == f2.n_valid == np.count_nonzero(~holes)
    r1, r2 = f1.to_rows(), f2.to_rows()
    for a, b in zip(r1, r2):
        for key, v in a.items():
            if isinstance(v, float):
                assert v == pytest.approx(b[key], rel=1e-12, abs=1e-12, nan_ok=True), key
            else:
                assert v == b[key], key
    assert not np.isnan(f1.mean_height_nm)


def test_no_valid_pixels():
    z = np.full((10, 10), np.nan)
    fit = S.fit_frame(z, np.ones((10, 10), np.uint8), (1,))
    assert fit.n_valid == 0 and "no valid labelled pixels" in fit.flags
    assert math.isnan(fit.c) and len(fit.to_rows()) == 1


def test_bad_arguments_raise_calcite_error():
    z = np.zeros((8, 8))
    lab = np.ones((8, 8), np.uint8)
    bad_calls = [
        lambda: S.fit_frame(z, np.ones((8, 9), np.uint8)),
        lambda: S.fit_frame(np.zeros((2, 8, 8)), np.ones((2, 8, 8), np.uint8)),
        lambda: S.fit_frame(z, np.full((8, 8), 5)),
        lambda: S.fit_frame(z, np.full((8, 8), -1)),
        lambda: S.fit_frame(z, np.full((8, 8), 1.5)),
        lambda: S.fit_frame(z, lab.astype(bool)),
        lambda: S.fit_frame(z, lab, (0,)),
        lambda: S.fit_frame(z, lab, (-2,)),
        lambda: S.fit_frame(z, lab, (1.5,)),
        lambda: S.fit_frame(z, lab, ("a",)),
        lambda: S.fit_frame(z, lab, axis="z"),
        lambda: S.fit_frame(z, lab, n_classes=4),
        lambda: S.fit_frame(z, lab, pixel_size_nm=0),
        lambda: S.fit_frame(z, lab, pixel_size_nm=float("nan")),
        lambda: S.fit_frame(z, lab, min_pixels=0),
        lambda: S.increments(z, 0),
        lambda: S.pair_fractions(lab, 1, axis="diagonal"),
    ]
    for call in bad_calls:
        with pytest.raises(CalciteAFMError):
            call()
    with pytest.raises(ValueError, match="does not match"):
        S.fit_frame(z, np.ones((8, 9), np.uint8))


# ----------------------------------------------------------------------------- classes, rows
def test_two_class_maps_monolayer_to_terrace():
    z, labels = model_frame((64, 64), seed=9)
    labels = labels.copy()
    labels[::4, ::4][labels[::4, ::4] == 2] = 3
    assert (labels == 3).any()
    f3as2 = S.fit_frame(z, labels, (1, 2), n_classes=2)
    f2 = S.fit_frame(z, np.where(labels == 3, 2, labels), (1, 2), n_classes=2)
    assert f3as2.to_rows() == f2.to_rows()


def test_three_classes():
    rng = np.random.default_rng(10)
    z, labels = model_frame((128, 128), seed=10)
    z = z.astype(np.float64)
    mono = (labels == 2) & (ndi.gaussian_filter(rng.normal(size=z.shape), 4) > 0.05)
    labels = labels.copy()
    labels[mono] = 3
    z[mono] -= 0.31  # one monolayer step down
    fit = S.fit_frame(z, labels, (1, 4), n_classes=3, pixel_size_nm=2.0)
    assert [r.name for r in fit.regions] == ["A", "B", "M"]
    assert fit.regions[2].weight == pytest.approx(mono.mean())
    _check_identities(fit, z, labels)
    for ls in fit.lags:
        assert ls.p.shape == (3, 3) and ls.p.sum() == pytest.approx(1.0, abs=1e-14)
        p, _ = S.pair_fractions(labels, ls.lag_px, "both", n_classes=3)
        np.testing.assert_allclose(ls.p, p, atol=1e-15)
        m = ls.means.reshape(3, 3)
        mu = [r.mu for r in fit.regions]
        assert m[1, 2] == pytest.approx(mu[2] - mu[1])
        assert set(ls.rho) == {1, 2, 3}
    rows = fit.to_rows(frame=4, time_s=1200.0)
    assert list(rows[0]) == S.row_columns(3)
    assert rows[0]["c_M"] == fit.regions[2].weight and rows[0]["p_MB"] == fit.lags[0].p[2, 1]


def test_rows_dicts_and_stack(model_fit):
    _, _, fit = model_fit
    rows = fit.to_rows(frame=3, time_s=900.0)
    required = [
        "frame", "time_s", "lag_px", "lag_nm", "c", "mu_A", "sigma_A", "rho_A",
        "mu_B", "sigma_B", "rho_B", "ks_height", "ks_increment",
    ]  # fmt: skip
    assert S.row_columns(2)[:13] == required
    assert len(rows) == len(LAGS)
    for row, ls in zip(rows, fit.lags):
        assert list(row) == S.row_columns(2)
        assert row["frame"] == 3 and row["time_s"] == 900.0
        assert row["lag_px"] == ls.lag_px and row["lag_nm"] == pytest.approx(11.7 * ls.lag_px)
        assert row["rho_A"] == ls.rho[1] and row["p_AB"] == ls.p[0, 1]
        assert row["em_c"] == fit.em.c and row["flags"] == ""
    text = json.dumps(fit.to_dict(include_histograms=True))
    assert "height_hist" in text
    # stacks: progress, stop, rows with times
    z, labels = model_frame((48, 48), seed=12)
    stack = np.stack([z, z + 1.0, z * 2.0])
    lab = np.stack([labels] * 3)
    seen = []
    fits = S.fit_stack(stack, lab, (1,), progress=seen.append, pixel_size_nm=5.0)
    assert len(fits) == 3 and [p["done"] for p in seen] == [1, 2, 3]
    assert fits[1].regions[0].mu == pytest.approx(fits[0].regions[0].mu, abs=1e-5)
    rows = S.fits_to_rows(fits, times_s=[0.0, 300.0, 600.0])
    assert [r["time_s"] for r in rows] == [0.0, 300.0, 600.0]
    stop = threading.Event()
    stop.set()
    assert S.fit_stack(stack, lab, (1,), stop=stop) == []


def test_fluctuation_and_increments():
    z = np.array([[1.0, 2.0, 4.0], [3.0, np.nan, 9.0]])
    zp = S.fluctuation(z)
    assert np.nanmean(zp) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(zp[1, 1])
    np.testing.assert_array_equal(S.increments(z, 1, "x"), [1.0, 2.0])
    np.testing.assert_array_equal(S.increments(z, 1, "y"), [2.0, 5.0])
    np.testing.assert_array_equal(S.increments(z, 1, "both"), [1.0, 2.0, 2.0, 5.0])
    assert S.increments(z, 5, "x").size == 0
    lab = np.array([[1, 0, 2], [2, 2, 2]])
    np.testing.assert_array_equal(S.increments(z, 2, "x", labels=lab), [3.0, 6.0])
    np.testing.assert_array_equal(S.increments(z, 1, "x", labels=lab), [])
    zl = S.fluctuation(z, labels=lab)
    assert np.isnan(zl[0, 1]) and np.nanmean(zl) == pytest.approx(0.0, abs=1e-15)
