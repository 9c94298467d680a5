"""Goodness of fit of a model to a sample: exact Kolmogorov-Smirnov, L1, Jensen-Shannon.

- :func:`ks_distance`: ``sup_x |F_n(x) - F(x)|`` over every sample value (no
  subsampling), at close to linear cost;
- :func:`histogram_distances`: L1 and Jensen-Shannon distances between the probabilities
  of the :func:`~.sample.histogram` bins (plus the two outer intervals) under the sample
  and under the model.

Both take the model as a vectorised CDF of values in nm (e.g. a
:func:`~.mixtures.mixture_cdf` with fixed components).

Examples
--------
>>> from scipy.special import ndtr
>>> ks_distance([0.0], ndtr)
0.5
>>> l1, js = histogram_distances(np.random.default_rng(1).normal(size=100_000), ndtr)
>>> l1 < 0.05 and js < 0.02
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import jensenshannon

from .sample import _Binned, _finite_1d

_SORT_LIMIT = 20_000  # the exact KS sorts at most about this many candidate points


def _binned_distances(binned: _Binned, cdf: Callable) -> tuple[float, float]:
    """L1 and Jensen-Shannon distances between the bin probabilities and the model's.

    The bins are the histogram bins of ``binned`` plus the two outer intervals; NaN for
    an undefined model (a non-finite ``cdf``).
    """
    fe = cdf(binned.edges)
    if not np.isfinite(fe).all():
        return math.nan, math.nan
    pm = np.diff(np.concatenate(([0.0], fe, [1.0])))
    np.maximum(pm, 0.0, out=pm)
    ps = np.concatenate(([binned.counts[0]], binned.hist_counts, [binned.counts[-1]])) / binned.n
    return _l1_js(ps, pm)


def _binned_ks(binned: _Binned, cdf: Callable, cdf_left: Callable | None = None) -> float:
    """Exact KS distance of a binned sample to ``cdf``.

    Coarse groups first, then the fine buckets of the candidate groups, then the points
    (:func:`_ks_groups`); NaN for an undefined model.
    """
    n, eps, cum = binned.n, binned.eps, binned.cum
    if not np.isfinite(cdf(np.array([binned.a[0], binned.b[-1]]))).all():
        return math.nan
    st, en = binned.g0_start, binned.g0_end
    best = 0.0
    for level in range(2):
        cnt = cum[en] - cum[st]
        clow = cum[st]
        best, cand = _group_bounds(cnt, clow, binned.a[st], binned.b[en - 1], n, cdf, eps, best)
        if not cand.any():
            return best
        st, en = st[cand], en[cand]
        if level == 0:  # expand the candidate groups into their fine buckets
            sizes = en - st
            first = np.cumsum(sizes) - sizes
            st = np.repeat(st - first, sizes) + np.arange(int(sizes.sum()))
            en = st + 1
    # gather the points of the candidate fine buckets (a few runs of buckets, usually)
    idx = binned.idx
    breaks = np.flatnonzero(np.diff(st) != 1)
    if breaks.size < 4:
        firsts = st[np.concatenate(([0], breaks + 1))]
        lasts = st[np.concatenate((breaks, [st.size - 1]))]
        sel = None
        for f0, l0 in zip(firsts, lasts):  # f0 <= idx <= l0 as one unsigned compare
            run = (idx - np.int32(f0)).view(np.uint32) <= np.uint32(l0 - f0)
            sel = run if sel is None else (sel | run)
    else:
        sel = np.zeros(binned.nf + 2, dtype=bool)
        sel[st] = True
        sel = sel[idx]
    comp = np.full(binned.nf + 2, -1, dtype=np.intp)
    comp[st] = np.arange(st.size)
    at = np.flatnonzero(sel)  # (much faster than boolean indexing for sparse masks)
    return _ks_groups(
        binned.x.take(at),
        comp.take(idx.take(at)),
        binned.counts[st],
        cum[st],
        binned.a[st],
        binned.b[st],
        n,
        cdf,
        cdf_left,
        eps,
        best,
    )


def _group_bounds(cnt, clow, a, b, n, cdf, eps, best):
    """Best lower bound so far and the groups whose upper bound exceeds it."""
    fa = cdf(a - eps)
    fb = cdf(b + eps)
    chigh = clow + cnt
    upper = np.maximum(chigh / n - fa, fb - clow / n)
    lower = np.maximum(fa - clow / n, chigh / n - fb)
    ne = cnt > 0
    best = max(best, float(lower[ne].max()))
    return best, ne & (upper > best)


def _l1_js(ps: np.ndarray, pm: np.ndarray) -> tuple[float, float]:
    """L1 distance and Jensen-Shannon distance (base 2) of two probability vectors.

    The Jensen-Shannon distance is :func:`scipy.spatial.distance.jensenshannon`; a
    rounding-negative divergence (two equal vectors) counts as 0, not NaN.
    """
    l1 = float(np.abs(ps - pm).sum())
    with np.errstate(invalid="ignore"):
        js = float(jensenshannon(ps, pm, base=2.0))
    return l1, 0.0 if math.isnan(js) else js


def _ks_groups(x, g, counts, clow, a, b, n, cdf, cdf_left, eps, best=0.0) -> float:
    """Exact ``sup |F_n - F|`` from ordered groups of points, refining only where needed.

    For a group holding ranks ``clow .. clow + count`` inside ``[a, b]``, the deviation of
    its points is at most ``max(chigh/n - F(a), F(b) - clow/n)`` and some point reaches at
    least ``max(F(a) - clow/n, chigh/n - F(b))``. Groups whose upper bound cannot beat the
    best lower bound are dropped; the others are split (uniform sub-buckets) until few
    points are left, which are then sorted and evaluated exactly, ties included.
    """
    cand = counts > 0
    for level in range(8):
        best, cand = _group_bounds(counts, clow, a, b, n, cdf, eps, best)
        if not cand.any():
            return best
        n_cand = int(counts[cand].sum())
        if n_cand < x.size:
            at = np.flatnonzero(cand.take(g))
            x, g = x.take(at), g.take(at)
        if n_cand <= _SORT_LIMIT or level == 7:
            break
        # split every candidate group into m2 uniform sub-buckets
        cidx = np.flatnonzero(cand)
        nc = cidx.size
        m2 = int(np.clip(math.ceil(8192 / nc), 2, 1024))
        comp = np.full(counts.size, -1, dtype=np.intp)
        comp[cidx] = np.arange(nc)
        pa, pb = a[cidx], b[cidx]
        width = pb - pa
        sc = np.divide(m2, width, out=np.zeros_like(width), where=width > 0)
        gc = comp[g]
        t = x - pa[gc]
        t *= sc[gc]
        np.clip(t, 0.0, m2 - 1.0, out=t)
        g = gc * m2 + t.astype(np.intp)
        counts_new = np.bincount(g, minlength=nc * m2)
        cn = counts_new.reshape(nc, m2)
        clow = (clow[cidx][:, None] + (np.cumsum(cn, axis=1) - cn)).ravel()
        frac = np.arange(m2 + 1) / m2
        a = (pa[:, None] + width[:, None] * frac[None, :-1]).ravel()
        b = (pa[:, None] + width[:, None] * frac[None, 1:]).ravel()
        counts = counts_new
        cand = counts > 0
    # exact evaluation over the remaining candidate points (whole groups, in group order)
    xs = np.sort(x)
    cid = np.flatnonzero(cand)
    cnt = counts[cid]
    start = np.cumsum(cnt) - cnt
    off = np.repeat(clow[cid] - start, cnt)
    lo_rank = np.searchsorted(xs, xs, side="left") + off
    hi_rank = np.searchsorted(xs, xs, side="right") + off
    f = cdf(xs)
    fl = cdf_left(xs) if cdf_left is not None else f
    d = max(float(np.max(np.abs(hi_rank / n - f))), float(np.max(np.abs(lo_rank / n - fl))))
    return max(best, d)


def ks_distance(sample, cdf: Callable, *, cdf_left: Callable | None = None) -> float:
    """Exact Kolmogorov-Smirnov distance ``sup_x |F_n(x) - F(x)|``.

    The supremum is taken over every sample point (ties handled: both the step's top and
    bottom are compared), without subsampling. Points are first assigned to fine buckets;
    only buckets whose bound could reach the current maximum are refined and finally
    sorted, so the cost stays close to linear in the sample size.

    Parameters
    ----------
    sample : array_like
        Sample values (NaN ignored).
    cdf : callable
        Vectorised model CDF ``F(x) = P(X <= x)``.
    cdf_left : callable, optional
        Left limit ``P(X < x)``, needed only where ``F`` jumps (point masses).

    Returns
    -------
    float
        KS distance in [0, 1]; NaN for an empty sample or an undefined model.

    Examples
    --------
    >>> from scipy.special import ndtr
    >>> ks_distance([0.0], ndtr)
    0.5
    """
    x = _finite_1d(sample)
    if x.size == 0:
        return math.nan
    return _binned_ks(_Binned(x), cdf, cdf_left)


def histogram_distances(values, cdf: Callable, bins: int | None = None) -> tuple[float, float]:
    """L1 and Jensen-Shannon distances between a sample histogram and a model.

    Both compare the probabilities of the :func:`histogram` bins plus the two outer
    intervals ``(-inf, e_0)`` and ``[e_n, inf)``: the sample's are counts / n, the model's
    are CDF differences ``F(e_k+1) - F(e_k)``, i.e. the model pdf integrated over each bin.

    Returns
    -------
    l1 : float
        ``sum_k |P_sample,k - P_model,k|`` in [0, 2].
    js : float
        Jensen-Shannon distance (square root of the divergence, base 2), in [0, 1].

    Examples
    --------
    >>> from scipy.special import ndtr
    >>> x = np.random.default_rng(1).normal(size=100_000)
    >>> l1, js = histogram_distances(x, ndtr)
    >>> l1 < 0.05 and js < 0.02
    True
    """
    x = _finite_1d(values)
    if x.size == 0:
        return math.nan, math.nan
    return _binned_distances(_Binned(x, bins=bins), cdf)
