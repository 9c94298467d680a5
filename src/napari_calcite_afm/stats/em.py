"""A 1D Gaussian mixture fitted by expectation-maximisation on a binned sample.

:func:`em_gaussian_mixture` fits ``sum_k w_k N(mu_k, sigma_k)`` to a sample (nm) without
any segmentation; :func:`~napari_calcite_afm.stats.fit_frame` runs it on ``Z'`` for
comparison with the segmentation-based model. Deterministic (no randomness).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.normal(-5, 1, 30_000), rng.normal(1, 0.5, 70_000)])
>>> np.round(em_gaussian_mixture(x).means, 1).tolist()
[-5.0, 1.0]
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import StatsError
from .goodness import _binned_distances, _binned_ks
from .mixtures import _LOG_SQRT_2PI, _loglik, mixture_cdf
from .results import EMFit
from .sample import _Binned, _finite_1d


def _em_binned(binned: _Binned, k: int, max_iter: int, tol: float, min_sigma_frac: float):
    """EM for a 1D Gaussian mixture on binned sufficient statistics.

    The points are summarised per level-0 group (about 2.5e-4 of the robust range wide):
    count, sum of x and sum of x^2, the sums built from fine buckets 16 times narrower
    (their binning error is of order (range / 65 000)^2, far below any sigma of interest).
    Responsibilities are evaluated at each group's mean; the M-step uses the sums.
    """
    n = binned.n
    cnt, sx, sxx = binned.group_sums()
    keep = cnt > 0
    cnt, sx, sxx = cnt[keep], sx[keep], sxx[keep]
    xb = sx / cnt
    scatter = np.maximum(sxx - sx * xb, 0.0)  # within-bucket sum of squared deviations
    mean = sx.sum() / n
    sd = math.sqrt(max(float((scatter + cnt * (xb - mean) ** 2).sum()) / n, 0.0))
    floor = max(min_sigma_frac * sd, 1e-12)
    w, m, s = _em_init(cnt, sx, sxx, xb, n, k, sd, floor)
    prev = -math.inf
    converged = False
    n_iter = 0
    lp = np.empty((k, xb.size))
    for _ in range(max_iter):
        n_iter += 1
        for j in range(k):  # E-step, (components, buckets) layout
            t = xb - m[j]
            t *= 1.0 / s[j]
            t *= t
            np.multiply(t, -0.5, out=lp[j])
            lp[j] += math.log(w[j]) - math.log(s[j]) - _LOG_SQRT_2PI
        lmax = lp.max(axis=0)
        r = np.exp(lp - lmax)
        tot = r.sum(axis=0)
        r /= tot
        ll = float(np.dot(cnt, lmax + np.log(tot))) / n
        # M-step (row-wise dot products: small, single-threaded BLAS calls)
        nk = np.maximum(np.array([np.dot(rj, cnt) for rj in r]), 1e-300)
        w = np.maximum(nk / n, 1e-300)
        m = np.array([np.dot(rj, sx) for rj in r]) / nk
        var = np.empty(k)
        for j in range(k):
            dev = xb - m[j]
            dev *= dev
            dev *= cnt
            dev += scatter
            var[j] = float(np.dot(r[j], dev)) / nk[j]
        s = np.sqrt(np.maximum(var, floor * floor))
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    order = np.argsort(m, kind="stable")
    return w[order], m[order], s[order], n_iter, converged


def _em_init(cnt, sx, sxx, xb, n, k, sd, floor):
    """Initial mixture: Otsu's split of the binned sample for two components, else quantiles."""
    ccnt = np.cumsum(cnt)
    if k == 2 and cnt.size >= 2:
        csx = np.cumsum(sx)
        w0 = ccnt[:-1]
        w1 = n - w0
        m0 = csx[:-1] / w0
        m1 = (csx[-1] - csx[:-1]) / w1
        cut = int(np.argmax(w0 * w1 * (m0 - m1) ** 2)) + 1
        parts = [slice(0, cut), slice(cut, None)]
    else:
        bounds = np.searchsorted(ccnt, n * np.arange(1, k) / k)
        bounds = np.concatenate(([0], np.minimum(bounds + 1, cnt.size), [cnt.size]))
        parts = [slice(bounds[j], bounds[j + 1]) for j in range(k)]
    w = np.empty(k)
    m = np.empty(k)
    s = np.empty(k)
    for j, sl in enumerate(parts):
        nj = cnt[sl].sum()
        if nj <= 0:
            w[j], m[j], s[j] = 1.0 / n, xb[min(sl.start or 0, xb.size - 1)], sd
            continue
        w[j] = nj / n
        m[j] = sx[sl].sum() / nj
        s[j] = math.sqrt(max(sxx[sl].sum() / nj - m[j] ** 2, 0.0))
    s = np.maximum(s, floor)
    w /= w.sum()
    return w, m, s


def _em_nan(n: int, k: int, flag: str) -> EMFit:
    """An EM fit of ``k`` NaN components (a sample of ``n`` values), with ``flag``."""
    nan = np.full(k, np.nan)
    return EMFit(nan, nan.copy(), nan.copy(), math.nan, n, 0, False, flags=[flag])


def _em_on_binned(binned: _Binned, k: int, max_iter: int, tol: float, min_sigma_frac: float):
    """:func:`em_gaussian_mixture` of a binned sample, with its goodness of fit."""
    n = binned.n
    if binned.xmax <= binned.xmin:
        return _em_nan(n, k, "constant sample, no mixture to fit")
    if n < 2 * k:
        return _em_nan(n, k, f"only {n} values for {k} components")
    w, m, s, it, conv = _em_binned(binned, k, max_iter, tol, min_sigma_frac)
    flags = [] if conv else [f"not converged after {it} iterations"]
    loglik = _loglik(binned.x, w, m, s, binned.work)

    def cdf(v):
        return mixture_cdf(v, w, m, s)

    ks = _binned_ks(binned, cdf)
    l1, js = _binned_distances(binned, cdf)
    return EMFit(w, m, s, loglik, n, it, conv, ks, l1, js, flags)


def em_gaussian_mixture(
    values,
    n_components: int = 2,
    *,
    max_iter: int = 500,
    tol: float = 1e-9,
    min_sigma_frac: float = 1e-3,
) -> EMFit:
    """Fit a 1D Gaussian mixture by expectation-maximisation (deterministic).

    The sample is assigned to about 4 000 buckets over its robust range (plus two
    outer buckets, summarised exactly); EM runs on the buckets' counts and sums of ``x``
    and ``x^2`` (responsibilities at each bucket's mean), so one iteration costs
    O(buckets), not O(n), and the estimates differ from a pointwise EM by far less than
    their sampling error. Initialisation: Otsu's threshold of the binned sample for two
    components (robust to unequal weights), quantile slices otherwise. No randomness is
    involved.

    Parameters
    ----------
    values : array_like
        Sample, nm (NaN ignored), e.g. ``Z'`` of a frame.
    n_components : int
        Number of Gaussian components (>= 1).
    max_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence: change of the mean log-likelihood per value (nats) between iterations.
    min_sigma_frac : float
        Floor on each component's standard deviation, as a fraction of the sample's
        (prevents collapse onto one value).

    Returns
    -------
    EMFit
        Components ordered by increasing mean; ``loglik`` exact over all values; KS, L1 and
        JS goodness of fit to the sample. A constant or too small sample gives NaN
        parameters and a flag.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-5, 1, 30_000), rng.normal(1, 0.5, 70_000)])
    >>> fit = em_gaussian_mixture(x)
    >>> np.round(fit.weights, 2).tolist(), np.round(fit.means, 1).tolist()
    ([0.3, 0.7], [-5.0, 1.0])
    """
    if int(n_components) != n_components or n_components < 1:
        raise StatsError(f"n_components must be a positive integer, got {n_components!r}")
    if max_iter < 1 or not tol > 0:
        raise StatsError("max_iter must be >= 1 and tol > 0")
    k = int(n_components)
    x = _finite_1d(values)
    if x.size == 0:
        return _em_nan(0, k, "empty sample")
    return _em_on_binned(_Binned(x), k, int(max_iter), float(tol), float(min_sigma_frac))
