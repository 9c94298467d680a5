"""Gaussian mixture densities: the height model f, the increment model g, their parts.

The height model of a frame is ``f(z) = sum_i w_i N(z; mu_i, sigma_i)`` over the regions
(weights = area fractions); the increment model at lag ``s`` is
``g(d; s) = sum_ij p_ij N(d; m_ij, s_ij)`` over the ordered pairs of regions, weighted by
the pair probabilities ``p_ij(s)``. Both are 1D Gaussian mixtures, evaluated by
:func:`mixture_pdf`, :func:`mixture_cdf` and :func:`mixture_logpdf` (nm in, 1/nm out).

Examples
--------
>>> float(mixture_pdf(0.0, [1.0], [0.0], [1.0]))  # 1 / sqrt(2 pi)
0.3989422804014327
>>> float(mixture_cdf(0.0, [0.5, 0.5], [-1.0, 1.0], [0.5, 0.5]))
0.5
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from ..errors import StatsError
from ._checks import _check_lag
from ._workspace import _Workspace
from .results import EMFit, FrameFit, LagStats, RegionParams

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _clean_components(weights, means, sigmas) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Drop zero-weight components; None when a remaining one is undefined (NaN)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    m = np.asarray(means, dtype=np.float64).ravel()
    s = np.asarray(sigmas, dtype=np.float64).ravel()
    if not (w.shape == m.shape == s.shape):
        raise StatsError("weights, means and sigmas must have the same length")
    if np.isnan(w).any():
        return None
    keep = w > 0
    w, m, s = w[keep], m[keep], s[keep]
    if w.size == 0 or not (np.isfinite(m).all() and np.isfinite(s).all()) or (s < 0).any():
        return None
    return w, m, s


def mixture_pdf(x, weights, means, sigmas) -> np.ndarray:
    """Density of a 1D Gaussian mixture ``sum_k w_k N(x; m_k, s_k)``.

    Parameters
    ----------
    x : array_like
        Points, nm.
    weights : array_like
        Component weights (zero-weight components are ignored, even with NaN parameters).
    means, sigmas : array_like
        Component means and standard deviations, nm. A component with ``sigma = 0`` is a
        point mass: its density is ``inf`` at its mean and 0 elsewhere.

    Returns
    -------
    numpy.ndarray
        Density, 1/nm, shape of ``x``; all NaN when a weighted component is undefined.

    Examples
    --------
    >>> float(mixture_pdf(0.0, [1.0], [0.0], [1.0]))  # 1 / sqrt(2 pi)
    0.3989422804014327
    """
    x = np.asarray(x, dtype=np.float64)
    comps = _clean_components(weights, means, sigmas)
    if comps is None:
        return np.full(x.shape, np.nan)
    out = np.zeros(x.shape)
    for w, m, s in zip(*comps):
        if s > 0:
            t = (x - m) / s
            out += (w / (s * math.sqrt(2.0 * math.pi))) * np.exp(-0.5 * t * t)
        else:
            out += np.where(x == m, np.inf, 0.0)
    return out


def mixture_cdf(x, weights, means, sigmas, *, left: bool = False) -> np.ndarray:
    """Cumulative distribution function of a 1D Gaussian mixture.

    Parameters
    ----------
    x : array_like
        Points, nm.
    weights, means, sigmas : array_like
        Components, as in :func:`mixture_pdf`.
    left : bool
        Return the left limit ``P(X < x)`` instead of ``P(X <= x)``; the two differ only at
        the mean of a ``sigma = 0`` component.

    Returns
    -------
    numpy.ndarray
        CDF values in [0, 1], shape of ``x``; all NaN when a weighted component is undefined.

    Examples
    --------
    >>> float(mixture_cdf(0.0, [0.5, 0.5], [-1.0, 1.0], [0.5, 0.5]))
    0.5
    """
    x = np.asarray(x, dtype=np.float64)
    comps = _clean_components(weights, means, sigmas)
    if comps is None:
        return np.full(x.shape, np.nan)
    w, m, s = comps
    out = np.zeros(x.shape)
    for wk, mk, sk in zip(w, m, s):
        if sk > 0:
            out += wk * ndtr((x - mk) / sk)
        else:
            out += wk * ((x > mk) if left else (x >= mk))
    total = float(w.sum())
    if total != 1.0:
        out /= total
    return out


def mixture_logpdf(x, weights, means, sigmas) -> np.ndarray:
    """Natural log of :func:`mixture_pdf`.

    Computed as the log of the summed densities; where they underflow (points tens of
    sigmas from every mean) the log-sum-exp form takes over, so the result stays finite.
    Components with ``sigma = 0`` give ``+inf`` at their mean and are ignored elsewhere.

    Examples
    --------
    >>> round(float(mixture_logpdf(0.0, [1.0], [0.0], [1.0])), 6)
    -0.918939
    >>> round(float(mixture_logpdf(100.0, [1.0], [0.0], [1.0])), 6)
    -5000.918939
    """
    x = np.asarray(x, dtype=np.float64)
    comps = _clean_components(weights, means, sigmas)
    if comps is None:
        return np.full(x.shape, np.nan)
    return _logpdf(x.ravel(), *comps).reshape(x.shape)


def _logpdf(x: np.ndarray, w, m, s, work: _Workspace | None = None) -> np.ndarray:
    """:func:`mixture_logpdf` of a flat array with clean components (scratch from work)."""
    work = work if work is not None else _Workspace()
    w = w / w.sum()
    smooth = s > 0
    dens = work.get("dens", x.size, np.float64)
    dens[...] = 0.0
    t = work.get("tmp", x.size, np.float64)
    for wk, mk, sk in zip(w[smooth], m[smooth], s[smooth]):
        np.subtract(x, mk, out=t)
        t *= 1.0 / sk
        t *= t
        t *= -0.5
        np.exp(t, out=t)
        t *= wk / (sk * math.sqrt(2.0 * math.pi))
        dens += t
    with np.errstate(divide="ignore"):
        out = np.log(dens, out=dens)
    under = np.flatnonzero(out < -690.0)  # the density underflowed (or nearly)
    if under.size and smooth.any():
        xu = x[under]
        lp = [
            math.log(wk) - math.log(sk) - _LOG_SQRT_2PI - 0.5 * ((xu - mk) / sk) ** 2
            for wk, mk, sk in zip(w[smooth], m[smooth], s[smooth])
        ]
        out[under] = np.logaddexp.reduce(np.stack(lp), axis=0)
    if not smooth.all():
        point = np.isin(x, m[~smooth])
        out = np.where(point, np.inf, out)
    return out


def _loglik(x: np.ndarray, w, m, s, work: _Workspace | None = None) -> float:
    """Total log-likelihood of a flat sample (NaN for an undefined mixture)."""
    comps = _clean_components(w, m, s)
    if comps is None:
        return math.nan
    return float(_logpdf(x, *comps, work=work).sum())


def _increment_components(regions: list[RegionParams], rho: dict[int, float], p: np.ndarray):
    """Weights, means and standard deviations of ``g(d; s)``, row-major over (i, j)."""
    k = len(regions)
    mu = np.array([r.mu for r in regions])
    sig = np.array([r.sigma for r in regions])
    rh = np.array([rho[r.label] for r in regions])
    means = mu[None, :] - mu[:, None]  # m_ij = mu_j - mu_i  (x in i, x + s in j)
    sds = np.sqrt(sig[:, None] ** 2 + sig[None, :] ** 2)
    with np.errstate(invalid="ignore"):
        diag = sig * np.sqrt(2.0 * np.maximum(1.0 - rh, 0.0))
    diag = np.where(sig == 0.0, 0.0, diag)  # a constant region has zero increments
    diag = np.where(np.isnan(rh) & (sig != 0.0), np.nan, diag)
    idx = np.arange(k)
    means[idx, idx] = 0.0
    sds[idx, idx] = diag
    return np.asarray(p, dtype=np.float64).ravel().copy(), means.ravel(), sds.ravel()


def _lag_of(fit: FrameFit, lag) -> LagStats:
    return lag if isinstance(lag, LagStats) else fit.lag(_check_lag(lag))


def height_pdf(z, fit: FrameFit | EMFit) -> np.ndarray:
    """Model density of heights ``f(z) = sum_i w_i N(z; mu_i, sigma_i)`` (1/nm).

    Parameters
    ----------
    z : array_like
        Values of ``Z'``, nm.
    fit : FrameFit or EMFit
        Segmentation-based fit or EM fit.

    Returns
    -------
    numpy.ndarray
        Density in 1/nm, shape of ``z``; NaN when a weighted region has NaN parameters.

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> rng = np.random.default_rng(0)
    >>> labels = np.where(rng.random((64, 64)) < 0.3, 1, 2)
    >>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.5, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1,))
    >>> grid = np.linspace(-15.0, 15.0, 3001)  # nm, 0.01 nm apart
    >>> round(float(height_pdf(grid, fit).sum() * 0.01), 6)  # a density: integrates to 1
    1.0
    >>> round(float(height_pdf(grid, fit.em).sum() * 0.01), 6)  # the EM mixture's
    1.0
    """
    if isinstance(fit, EMFit):
        return fit.pdf(z)
    return mixture_pdf(z, *fit.height_components())


def height_cdf(z, fit: FrameFit | EMFit) -> np.ndarray:
    """Model CDF of heights ``F(z) = sum_i w_i Phi((z - mu_i) / sigma_i)`` (see :func:`height_pdf`).

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> labels = np.repeat([[1, 2]], 32, axis=0).repeat(16, axis=1)  # half pit, half terrace
    >>> z = np.where(labels == 1, -5.0, 0.0) + np.random.default_rng(0).normal(0, 0.3, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1,))
    >>> round(float(height_cdf(0.0, fit)), 3)  # Z' = 0 lies between the two modes
    0.5
    """
    if isinstance(fit, EMFit):
        return fit.cdf(z)
    return mixture_cdf(z, *fit.height_components())


def increment_pdf(d, fit: FrameFit, lag: int | LagStats) -> np.ndarray:
    """Model density of increments ``g(d; s) = sum_ij p_ij N(d; m_ij, s_ij)`` (1/nm).

    Parameters
    ----------
    d : array_like
        Increments ``Z(x + s) - Z(x)``, nm.
    fit : FrameFit
        The frame's fit.
    lag : int or LagStats
        Lag in pixels (one of the fitted lags) or its :class:`LagStats`.

    Returns
    -------
    numpy.ndarray
        Density in 1/nm, shape of ``d``; NaN when a weighted mode has NaN parameters.

    Raises
    ------
    StatsError
        When ``lag`` was not fitted.

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> rng = np.random.default_rng(0)
    >>> labels = np.where(rng.random((64, 64)) < 0.3, 1, 2)
    >>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.5, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1, 2))
    >>> grid = np.linspace(-20.0, 20.0, 4001)  # nm, 0.01 nm apart
    >>> round(float(increment_pdf(grid, fit, 2).sum() * 0.01), 6)
    1.0
    """
    ls = _lag_of(fit, lag)
    return mixture_pdf(d, ls.weights, ls.means, ls.sigmas)


def increment_cdf(d, fit: FrameFit, lag: int | LagStats) -> np.ndarray:
    """Model CDF of increments at a lag (see :func:`increment_pdf`).

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> rng = np.random.default_rng(0)
    >>> labels = np.where(rng.random((64, 64)) < 0.3, 1, 2)
    >>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.5, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1, 2))
    >>> cdf = increment_cdf([-30.0, 30.0], fit, fit.lag(1))
    >>> cdf.round(6).tolist()
    [0.0, 1.0]
    """
    ls = _lag_of(fit, lag)
    return mixture_cdf(d, ls.weights, ls.means, ls.sigmas)


def _model_cdfs(w, m, s):
    """(cdf, cdf_left or None) of a mixture, or None when it is undefined."""
    comps = _clean_components(w, m, s)
    if comps is None:
        return None
    cw, cm, cs = comps

    def cdf(v):
        return mixture_cdf(v, cw, cm, cs)

    if (cs > 0).all():
        return cdf, None

    def cdf_left(v):
        return mixture_cdf(v, cw, cm, cs, left=True)

    return cdf, cdf_left
