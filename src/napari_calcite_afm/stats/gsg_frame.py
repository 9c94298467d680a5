"""The multimodal GSG model of one frame (``fit_frame(..., increment_model="gsg")``).

After the Gaussian fit, :func:`_fit_frame_gsg` takes, per region, the values of ``Z'``
and, per lag, the same-region increments (pairs from both axes pooled, as everywhere),
estimates each region's GSG (:mod:`.gsg_estimate`), and builds the GSG mixtures with the
same weights and pair probabilities as the Gaussian ones:

    f_GSG(z) = sum_i w_i GSG(z; mu_i, alpha_i, sigma_i)
    g_GSG(d; s) = sum_i p_ii [(1 - q_i(s)) GSGinc(d; alpha_i, sigma_i, rho_i(s))
                              + q_i(s)/2 (N(d; h_i, tau_i) + N(d; -h_i, tau_i))]
                + sum_{i != j} p_ij GSGcross(d; mu_j - mu_i, alpha_i, sigma_i, alpha_j, sigma_j)

(``q_i(s)`` the fraction of same-region pairs that cross a step of height ``h_i``,
``tau_i^2`` the variance of the region's GSG increments; with steps off ``q = 0``). A
region whose GSG is undefined (too few pixels, zero variance, kurtosis below 3
everywhere) keeps its Gaussian mode, with a flag. The goodness of fit uses the same exact
KS, L1 and Jensen-Shannon distances as the Gaussian model, on a CDF tabulated on a grid
dense around every component mean (linear interpolation; error below 1e-4).

Examples
--------
>>> from napari_calcite_afm.stats import fit_frame
>>> rng = np.random.default_rng(3)
>>> labels = np.where(rng.random((96, 96)) < 0.3, 1, 2).astype(np.uint8)
>>> z = np.where(labels == 1, -4.0, 0.0) + rng.standard_t(5, labels.shape)
>>> fit = fit_frame(z, labels, lags=(1, 2), increment_model="gsg")
>>> [r.name for r in fit.gsg.regions], 0 <= fit.gsg.lag(1).ks_increment < 1
(['A', 'B'], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from ._workspace import _Workspace
from .goodness import _binned_distances, _binned_ks
from .gsg import _scale_mixture_cdf, gsg_cross_components, gsg_height_components
from .gsg_estimate import _estimate, _Sample, _summarise
from .gsg_results import GSG_METHODS, GSGFit, GSGLag, GSGParams
from .mixtures import _clean_components, _model_cdfs, mixture_pdf
from .results import FrameFit
from .sample import _Binned, _pair_slices

_TABLE_POINTS = 401  # points per component mean of a tabulated CDF (error < 1e-4)


def _tabulated_cdf(w, m, s, lo: float, hi: float) -> Callable | None:
    """A fast CDF of a Gaussian mixture: exact on a grid, linear in between.

    The grid runs ``m_u + s_u sinh(t)`` around each distinct mean ``m_u`` (``s_u`` its
    smallest standard deviation), over ``[lo, hi]`` and a margin. None for an undefined
    mixture or one with a point mass (use :func:`~.mixtures._model_cdfs` there).
    """
    comps = _clean_components(w, m, s)
    if comps is None or not (comps[2] > 0).all():
        return None
    cw, cm, cs = comps
    span = max(hi - lo, float(cs.max()))
    lo, hi = lo - span, hi + span
    points = [np.array([lo, hi])]
    for mu in np.unique(cm):
        s_min = float(cs[cm == mu].min())
        reach = max(hi - mu, mu - lo, s_min)
        t = np.linspace(-1.0, 1.0, _TABLE_POINTS) * math.asinh(reach / s_min)
        points.append(mu + s_min * np.sinh(t))
    grid = np.unique(np.clip(np.concatenate(points), lo, hi))
    total = float(cw.sum())
    values = np.zeros(grid.size)
    for mu in np.unique(cm):
        at = cm == mu
        part = float(cw[at].sum())  # _scale_mixture_cdf normalises its weights to 1
        cdf_mu = _scale_mixture_cdf(grid - mu, cw[at] / part, cs[at], sorted_x=True)
        values += (part / total) * cdf_mu
    np.clip(values, 0.0, 1.0, out=values)

    def cdf(x):
        return np.interp(x, grid, values, left=0.0, right=1.0)

    return cdf


# ----------------------------------------------------------------------------- samples
def _height_samples(
    fit: FrameFit, hsample: np.ndarray, code: np.ndarray, work: _Workspace
) -> list[_Sample]:
    """Per region: the values ``Z' - mu_i`` summarised (``mean`` = ``mu_i``).

    ``hsample`` holds ``Z'`` at the valid pixels, in C order.
    """
    k = len(fit.regions)
    cv = code.ravel() if hsample.size == code.size else code[code < k]
    out = []
    for i, r in enumerate(fit.regions):
        if r.n_pixels and math.isfinite(r.mu):
            values = hsample[cv == i]  # (boolean indexing: the fastest for these masks)
            values -= r.mu
            smp = _summarise(values, work=work)
        else:
            smp = _Sample(r.n_pixels, math.nan, math.nan)
        smp.mean = r.mu  # type: ignore[attr-defined]
        out.append(smp)
    return out


def _lag_samples(
    s: int, d: np.ndarray, code, k: int, axis: str, step: bool, work: _Workspace
) -> list[_Sample]:
    """Same-region increment samples of lag ``s``, one per class.

    ``d`` holds the increments of the valid pairs in the order of
    :func:`~.lags._increment_sample` (x pairs, then y pairs); the pair classes are
    computed in the same order.
    """
    all_valid = not bool((code == k).any())
    pcs = []
    for a, b in _pair_slices(code.shape, s, axis):
        ca, cb = code[a], code[b]
        pc = ca.astype(np.int16) * (k + 1)
        pc += cb
        pcs.append(pc.ravel() if all_valid else pc[(ca < k) & (cb < k)])
    pc = np.concatenate(pcs) if pcs else np.empty(0, dtype=np.int16)
    if pc.size != d.size:  # pragma: no cover - internal consistency
        raise RuntimeError(f"pair count mismatch at lag {s}: {pc.size} != {d.size}")
    return [_summarise(d[pc == i * (k + 2)], step, work) for i in range(k)]


# ----------------------------------------------------------------------------- mixtures
def _mode(fit: FrameFit, params: GSGParams, i: int) -> tuple[float, float, float]:
    """``(alpha, sigma, mu)`` of region ``i`` in the mixture: GSG, else its Gaussian mode."""
    r = fit.regions[i]
    if params.defined:
        return params.alpha, params.sigma, r.mu
    return 2.0, r.sigma, r.mu


def _height_mixture(fit: FrameFit, regions: list[GSGParams]):
    """Components of ``f_GSG`` (NaN components for an undefined weighted region)."""
    ws, ms, ss = [], [], []
    for i, (r, p) in enumerate(zip(fit.regions, regions)):
        if not r.weight > 0:
            continue
        alpha, sigma, mu = _mode(fit, p, i)
        if not (math.isfinite(sigma) and math.isfinite(mu)):
            w, m, s = np.ones(1), np.full(1, math.nan), np.full(1, math.nan)
        else:
            w, m, s = gsg_height_components(alpha, sigma, mu)
        ws.append(r.weight * w)
        ms.append(m)
        ss.append(s)
    if not ws:
        return np.ones(1), np.full(1, math.nan), np.full(1, math.nan)
    return np.concatenate(ws), np.concatenate(ms), np.concatenate(ss)


def _increment_mixture(fit: FrameFit, regions: list[GSGParams], lag_px: int):
    """Components of ``g_GSG(d; s)``: same-region GSG (with steps) and cross-region terms."""
    ls = fit.lag(lag_px)
    k = len(fit.regions)
    ws, ms, ss = [], [], []
    for i in range(k):
        for j in range(k):
            p_ij = float(ls.p[i, j])
            if not p_ij > 0:
                continue
            if i == j and regions[i].defined:
                w, m, s = regions[i].increment_components(lag_px)
            elif i == j:  # the Gaussian same-region component
                c = i * k + i
                w, m, s = np.ones(1), ls.means[c : c + 1], ls.sigmas[c : c + 1]
            else:
                ai, si, mi = _mode(fit, regions[i], i)
                aj, sj, mj = _mode(fit, regions[j], j)
                if not all(math.isfinite(v) for v in (si, mi, sj, mj)):
                    w, m, s = np.ones(1), np.full(1, math.nan), np.full(1, math.nan)
                else:
                    w, m, s = gsg_cross_components(ai, si, mi, aj, sj, mj, merge=0.3)
            ws.append(p_ij * w)
            ms.append(m)
            ss.append(s)
    if not ws:
        return np.ones(1), np.full(1, math.nan), np.full(1, math.nan)
    return np.concatenate(ws), np.concatenate(ms), np.concatenate(ss)


def _goodness(binned: _Binned | None, comps) -> tuple[float, float, float]:
    """KS, L1 and JS distances of a binned sample to a mixture (NaN when undefined)."""
    if binned is None:
        return math.nan, math.nan, math.nan
    cdf, cdf_left = _tabulated_cdf(*comps, binned.xmin, binned.xmax), None
    if cdf is None:  # undefined, or with a point mass (a constant region): the exact CDFs
        model = _model_cdfs(*comps)
        if model is None:
            return math.nan, math.nan, math.nan
        cdf, cdf_left = model
    l1, js = _binned_distances(binned, cdf)
    return _binned_ks(binned, cdf, cdf_left), l1, js


def _loglik(x: np.ndarray, comps) -> float:
    """Log-likelihood of a sample, the log-density tabulated and interpolated."""
    clean = _clean_components(*comps)
    if clean is None or not (clean[2] > 0).all() or x.size == 0:
        return math.nan
    lo, hi = float(x.min()), float(x.max())
    grid = np.linspace(lo, hi, 4097) if hi > lo else np.array([lo, lo + 1.0])
    logf = np.log(np.maximum(mixture_pdf(grid, *clean), 1e-300))
    return float(np.interp(x, grid, logf).sum())


# ----------------------------------------------------------------------------- frame
def _nan_gsg(fit: FrameFit, method: str, steps: bool, why: str) -> GSGFit:
    """The GSG part of a frame that cannot be fitted: NaN everywhere, flagged."""
    nan = np.full(1, math.nan)
    regions = [
        GSGParams(math.nan, math.nan, r.mu, rho={ls.lag_px: math.nan for ls in fit.lags},
                  step_fraction={ls.lag_px: 0.0 for ls in fit.lags}, method=method,
                  label=r.label, name=r.name)
        for r in fit.regions
    ]  # fmt: skip
    lags = [GSGLag(ls.lag_px, np.ones(1), nan, nan) for ls in fit.lags]
    return GSGFit(method, steps, regions, lags, np.ones(1), nan, nan, flags=[f"GSG: {why}"])


def _fit_frame_gsg(
    fit: FrameFit,
    code: np.ndarray,
    binned: dict,
    *,
    method: str = "ml",
    steps: bool = True,
    min_pixels: int = 10,
    run: Callable[[list], list] | None = None,
) -> GSGFit:
    """The multimodal GSG model of a frame whose Gaussian fit is ``fit``.

    ``code`` is the class per pixel (``k`` where invalid); ``binned`` holds the binned
    samples of the Gaussian fit: ``Z'`` at the valid pixels (key ``"heights"``) and the
    increments of each lag (key: the lag), whose values serve here too; ``run`` runs a
    list of tasks (callables of a scratch workspace) and returns their results in order.
    """
    if method not in GSG_METHODS:
        raise ValueError(f"method must be one of {GSG_METHODS}, got {method!r}")
    run = run or (lambda tasks: [t(_Workspace()) for t in tasks])
    k = len(fit.regions)
    lag_list = [ls.lag_px for ls in fit.lags]
    hbin = binned["heights"]

    def sample_task(s, ws):  # s None: the heights
        if s is None:
            return _height_samples(fit, hbin.x, code, ws)
        step = steps and s == min(lag_list)  # the step height comes from the smallest lag
        d = binned[s].x if s in binned else np.empty(0)
        return _lag_samples(s, d, code, k, fit.axis, step, ws)

    heights, *lag_out = run([partial(sample_task, s) for s in [None, *lag_list]])

    def region_task(i, _ws):
        lags = {s: out[i] for s, out in zip(lag_list, lag_out)}
        p = _estimate(heights[i], lags, method, steps=steps, min_pixels=min_pixels)
        p.label, p.name = fit.regions[i].label, fit.regions[i].name
        return p

    regions = run([partial(region_task, i) for i in range(k)])
    flags = [
        f"GSG region {p.name}: {f}" for p in regions if fit.regions[p.label - 1].weight > 0
        for f in p.flags
    ]  # fmt: skip
    for p in regions:
        if not p.defined and fit.regions[p.label - 1].weight > 0:
            flags.append(f"GSG region {p.name}: its mode stays Gaussian in the GSG mixture")
    h_comps = _height_mixture(fit, regions)

    def goodness_task(j, _ws):
        if j < 0:
            return (*_goodness(hbin, h_comps), _loglik(hbin.x, h_comps))
        comps = _increment_mixture(fit, regions, lag_list[j])
        return comps, _goodness(binned.get(lag_list[j]), comps)

    results = run([partial(goodness_task, j) for j in [-1, *range(len(lag_list))]])
    g_lags = []
    for s, (comps, (ks, l1, js)) in zip(lag_list, results[1:]):
        g_lags.append(GSGLag(s, *comps, ks_increment=ks, l1_increment=l1, js_increment=js))
    ks_h, l1_h, js_h, ll_h = results[0]
    return GSGFit(
        method, steps, regions, g_lags, *h_comps,
        ks_height=ks_h, l1_height=l1_h, js_height=js_h, loglik_height=ll_h, flags=flags,
    )  # fmt: skip
