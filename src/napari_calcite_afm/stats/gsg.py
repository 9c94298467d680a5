"""Generalized sub-Gaussian (GSG) densities of heights and increments, and GSG fields.

The GSG field of the science notes (section "Generalized sub-Gaussian (GSG) modes";
Riva et al. 2015, lognormal subordinator):

    Y(x) = mu + U(x)^(1/2) G(x),     U(x) = exp((2 - alpha) V(x)),

with ``G`` a stationary Gaussian field (mean 0, standard deviation ``sigma`` in nm,
correlation ``rho(s)``) and ``V`` standard normal, independent at every point and of
``G``; ``alpha`` in (0, 2], ``alpha = 2`` is the Gaussian field. Given the subordinator
every quantity is Gaussian, so each density here is a Gaussian *scale mixture*, returned
as mixture components ``(weights, means, sigmas)`` that
:func:`~napari_calcite_afm.stats.mixture_pdf` / :func:`~napari_calcite_afm.stats.mixture_cdf`
evaluate (and that add up into the multimodal GSG model with the region weights and pair
probabilities, exactly as the Gaussian mixture):

- heights: ``Y - mu | V ~ N(0, sigma^2 e^(a V))``, ``a = 2 - alpha``: a 1-D integral over
  ``V``, Gauss-Hermite (:data:`N_HERMITE_HEIGHT` nodes);
- increments ``dY(s) = Y(x + s) - Y(x)`` within one field: ``N(0, sigma^2 W)`` with
  ``W = U1 + U2 - 2 rho (U1 U2)^(1/2)``. In the rotated variables ``S = (V1 + V2)/sqrt 2``,
  ``D = (V1 - V2)/sqrt 2`` (independent standard normals), ``W = e^(c S) 2 (cosh(c D) -
  rho)`` with ``c = a / sqrt 2``: Gauss-Hermite over ``S``, and over ``|D|`` a quantile
  rule (the midpoints of :data:`N_QUANTILE_D` probability slices, finer at both ends)
  because ``W`` has a near-singularity at ``D = 0`` when ``rho -> 1`` that tensor
  Gauss-Hermite in ``(V1, V2)`` misses (its CDF error reaches 0.02-0.06 at ``rho =
  0.999``; this rule stays below 1e-4);
- increments between two independent fields (pairs that straddle two regions):
  ``N(mu2 - mu1, sigma1^2 U1 + sigma2^2 U2)``, tensor Gauss-Hermite.

Atoms whose variances lie within a factor ``exp(0.1)`` are merged (weights summed,
variance averaged: the second moment is kept), so a density is a few tens of components.

Examples
--------
>>> w, m, s = gsg_height_components(2.0, 0.5)  # alpha = 2: one Gaussian
>>> w.tolist(), s.tolist()
([1.0], [0.5])
>>> round(float(gsg_cdf(0.0, 1.4, 1.0)), 12)
0.5
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import erf, ndtri

from ..errors import StatsError

__all__ = [
    "N_HERMITE_HEIGHT",
    "N_QUANTILE_D",
    "gsg_cdf",
    "gsg_correlation",
    "gsg_cross_components",
    "gsg_height_components",
    "gsg_increment_cdf",
    "gsg_increment_components",
    "gsg_increment_pdf",
    "gsg_moments",
    "gsg_pdf",
    "simulate_gsg_field",
    "subordinator_moment",
]

#: Gauss-Hermite nodes of the heights' integral over V.
N_HERMITE_HEIGHT = 32
#: Gauss-Hermite nodes over S = (V1 + V2) / sqrt 2 (increments) and per variable (cross pairs).
N_HERMITE_S = 16
#: Probability slices of |D| = |V1 - V2| / sqrt 2 (increments within one field).
N_QUANTILE_D = 96
#: Atoms closer than this in log-variance are merged into one component.
MERGE_LOG_VARIANCE = 0.1

_SQRT2 = math.sqrt(2.0)


def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of ``E[f(V)]``, ``V ~ N(0, 1)``."""
    x, w = hermegauss(n)
    return x, w / w.sum()


_H_HEIGHT = _hermite(N_HERMITE_HEIGHT)
_H_S = _hermite(N_HERMITE_S)


def _d_quantiles(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``|D|`` at the middle of ``m`` probability slices (finer at both ends), weights."""
    t = np.linspace(0.0, 1.0, m + 1)
    edges = 0.5 * (1.0 - np.cos(np.pi * t))  # probabilities of |D|, clustered at 0 and 1
    mid = 0.5 * (edges[1:] + edges[:-1])
    return ndtri(0.5 + 0.5 * mid), np.diff(edges)


_D_NODES = _d_quantiles(N_QUANTILE_D)


def _check_alpha(alpha) -> float:
    a = float(alpha)
    if not (0.0 < a <= 2.0):
        raise StatsError(f"alpha must lie in (0, 2], got {alpha!r}")
    return a


def _check_sigma(sigma) -> float:
    s = float(sigma)
    if not (math.isfinite(s) and s >= 0.0):
        raise StatsError(f"sigma must be a finite number >= 0 (nm), got {sigma!r}")
    return s


def _check_rho(rho) -> float:
    r = float(rho)
    if not (-1.0 <= r <= 1.0):
        raise StatsError(f"rho must lie in [-1, 1], got {rho!r}")
    return r


def _merge(weights: np.ndarray, log_var: np.ndarray, width: float = MERGE_LOG_VARIANCE):
    """Merge atoms of a zero-mean scale mixture into bins of ``log_var`` (width ``width``).

    Returns ``(weights, variances)``; each bin keeps its total weight and its mean
    variance (so the mixture's second moment is unchanged).
    """
    keep = weights > 1e-15
    weights, log_var = weights[keep], log_var[keep]
    b = np.floor(log_var / width)
    b -= b.min()
    idx = b.astype(np.intp)
    sw = np.bincount(idx, weights)
    sv = np.bincount(idx, weights * np.exp(log_var - log_var.max()))
    nz = sw > 0
    return sw[nz], sv[nz] / sw[nz] * math.exp(log_var.max())


def subordinator_moment(k: float, alpha: float) -> float:
    """``E[U^k]`` of the lognormal subordinator: ``exp(k^2 (2 - alpha)^2 / 2)``.

    Examples
    --------
    >>> subordinator_moment(1.0, 2.0), round(subordinator_moment(2.0, 1.0), 6)
    (1.0, 7.389056)
    """
    a = 2.0 - _check_alpha(alpha)
    return math.exp(0.5 * (k * a) ** 2)


def gsg_moments(alpha: float, sigma: float, rho: float | None = None) -> dict[str, float]:
    """Closed-form moments of a GSG field (science notes) and of its increments.

    Parameters
    ----------
    alpha : float
        Shape, in (0, 2].
    sigma : float
        Standard deviation of ``G``, nm.
    rho : float, optional
        Correlation ``rho(s)`` of ``G`` at a lag ``s`` (adds the increment moments).

    Returns
    -------
    dict
        ``variance`` (nm^2, ``sigma^2 E[U]``), ``kurtosis`` (``3 exp((2 - alpha)^2)``),
        and with ``rho``: ``correlation`` of ``Y`` at that lag (``E[U^(1/2)]^2 rho /
        E[U]``), ``increment_variance`` (``2 sigma^2 (E[U] - E[U^(1/2)]^2 rho)``) and
        ``increment_kurtosis`` (``3 E[W^2] / E[W]^2``).

    Examples
    --------
    >>> m = gsg_moments(1.5, 2.0, rho=0.5)
    >>> round(m["kurtosis"], 6), round(m["variance"], 6)  # 3 e^0.25, 4 e^0.125
    (3.852076, 4.532594)
    >>> gsg_moments(2.0, 1.0, rho=0.5)["increment_kurtosis"]  # Gaussian
    3.0
    """
    a = 2.0 - _check_alpha(alpha)
    s2 = _check_sigma(sigma) ** 2
    e = {k: math.exp(0.5 * (k * a) ** 2) for k in (0.5, 1.0, 1.5, 2.0)}
    out = {"variance": s2 * e[1.0], "kurtosis": 3.0 * math.exp(a * a)}
    if rho is not None:
        r = _check_rho(rho)
        ew = 2.0 * e[1.0] - 2.0 * r * e[0.5] ** 2
        ew2 = 2.0 * e[2.0] + 2.0 * e[1.0] ** 2 + 4.0 * r * r * e[1.0] ** 2
        ew2 -= 8.0 * r * e[1.5] * e[0.5]
        out["correlation"] = e[0.5] ** 2 * r / e[1.0]
        out["increment_variance"] = s2 * ew
        out["increment_kurtosis"] = 3.0 * ew2 / ew**2 if ew > 0 else math.nan
    return out


def gsg_height_components(
    alpha: float, sigma: float, mu: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian components of the GSG density of heights ``Y = mu + U^(1/2) G``.

    Parameters
    ----------
    alpha : float
        Shape, in (0, 2].
    sigma : float
        Standard deviation of ``G``, nm.
    mu : float
        Mean of ``Y``, nm.

    Returns
    -------
    weights, means, sigmas : numpy.ndarray
        Components (means all ``mu``; standard deviations in nm) for
        :func:`~napari_calcite_afm.stats.mixture_pdf`.

    Examples
    --------
    >>> w, m, s = gsg_height_components(1.2, 1.0)
    >>> round(float(w.sum()), 12), round(float((w * s**2).sum()), 6)  # variance E[U]
    (1.0, 1.377128)
    """
    a = 2.0 - _check_alpha(alpha)
    sig = _check_sigma(sigma)
    if a == 0.0 or sig == 0.0:
        return np.ones(1), np.full(1, float(mu)), np.full(1, sig)
    x, w = _H_HEIGHT
    wm, var = _merge(w, a * x)
    return wm, np.full(wm.size, float(mu)), sig * np.sqrt(var)


def _increment_atoms(a: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and ``log W`` of the atoms of ``W = e^(c S) 2 (cosh(c D) - rho)``."""
    xs, ws = _H_S
    dn, dw = _D_NODES
    c = a / _SQRT2
    with np.errstate(divide="ignore"):
        t = np.log(2.0 * (np.cosh(c * dn) - rho))
    log_w = (c * xs)[:, None] + t[None, :]
    return (ws[:, None] * dw[None, :]).ravel(), log_w.ravel()


def gsg_increment_components(
    alpha: float, sigma: float, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian components of the density of GSG increments ``dY(s)`` (one field).

    Parameters
    ----------
    alpha : float
        Shape, in (0, 2].
    sigma : float
        Standard deviation of ``G``, nm.
    rho : float
        Correlation of ``G`` at the lag, in [-1, 1].

    Returns
    -------
    weights, means, sigmas : numpy.ndarray
        Zero-mean components, standard deviations in nm. With ``alpha = 2`` the one
        component ``N(0, sigma sqrt(2 (1 - rho)))`` of the Gaussian model; with
        ``rho = 1`` and ``alpha = 2`` a point mass at 0 (``sigma = 0``).

    Examples
    --------
    >>> w, m, s = gsg_increment_components(2.0, 1.0, 0.5)
    >>> s.tolist()
    [1.0]
    >>> w, m, s = gsg_increment_components(1.5, 1.0, 0.5)
    >>> v = gsg_moments(1.5, 1.0, rho=0.5)["increment_variance"]
    >>> bool(abs(float((w * s**2).sum()) / v - 1) < 1e-3)
    True
    """
    a = 2.0 - _check_alpha(alpha)
    sig = _check_sigma(sigma)
    r = _check_rho(rho)
    if a == 0.0 or sig == 0.0 or (r == 1.0 and a == 0.0):
        sd = sig * math.sqrt(max(2.0 * (1.0 - r), 0.0))
        return np.ones(1), np.zeros(1), np.full(1, sd)
    w, log_w = _increment_atoms(a, r)
    finite = np.isfinite(log_w)  # W = 0 only at rho = 1 and D = 0 (a measure-zero atom)
    wm, var = _merge(w[finite], log_w[finite])
    wm = wm / wm.sum()
    return wm, np.zeros(wm.size), sig * np.sqrt(var)


def gsg_cross_components(
    alpha1: float,
    sigma1: float,
    mu1: float,
    alpha2: float,
    sigma2: float,
    mu2: float,
    *,
    merge: float = MERGE_LOG_VARIANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components of ``Y2 - Y1`` for two independent GSG variables (cross-region pairs).

    ``Y1`` is the first end of the pair (``x``), ``Y2`` the second (``x + s``); the mean
    is ``mu2 - mu1`` and, given the subordinators, the variance
    ``sigma1^2 U1 + sigma2^2 U2``.

    Examples
    --------
    >>> w, m, s = gsg_cross_components(2.0, 3.0, -5.0, 2.0, 4.0, 1.0)
    >>> m.tolist(), s.tolist()
    ([6.0], [5.0])
    """
    a1 = 2.0 - _check_alpha(alpha1)
    a2 = 2.0 - _check_alpha(alpha2)
    s1, s2 = _check_sigma(sigma1), _check_sigma(sigma2)
    mean = float(mu2) - float(mu1)
    if (a1 == 0.0 or s1 == 0.0) and (a2 == 0.0 or s2 == 0.0):
        return np.ones(1), np.full(1, mean), np.full(1, math.hypot(s1, s2))
    x, w = _H_S
    v1 = s1 * s1 * np.exp(a1 * x)
    v2 = s2 * s2 * np.exp(a2 * x)
    var = (v1[:, None] + v2[None, :]).ravel()
    ww = (w[:, None] * w[None, :]).ravel()
    with np.errstate(divide="ignore"):
        wm, vm = _merge(ww, np.log(var), merge)
    return wm, np.full(wm.size, mean), np.sqrt(vm)


def _scale_mixture_cdf(x, weights, sigmas, sorted_x: bool = False) -> np.ndarray:
    """CDF of a zero-mean Gaussian scale mixture at ``x`` (erf form: faster than ndtr).

    With ``sorted_x`` (``x`` 1-D, ascending), each component's ``erf`` is evaluated only
    where it differs from +-1 (``|x| < 6.5 sqrt(2) sigma``; beyond, ``erf`` is +-1 exactly,
    so the values are the same).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape)
    for wk, sk in zip(weights, sigmas):
        if sk > 0 and sorted_x:
            c = 1.0 / (sk * _SQRT2)
            i0, i1 = np.searchsorted(x, [-6.5 / c, 6.5 / c])
            out[:i0] -= wk
            out[i1:] += wk
            out[i0:i1] += wk * erf(x[i0:i1] * c)
        elif sk > 0:
            out += wk * erf(x * (1.0 / (sk * _SQRT2)))
        else:
            out += wk * np.sign(x)
    return 0.5 * (1.0 + out)


def gsg_pdf(y, alpha: float, sigma: float, mu: float = 0.0) -> np.ndarray:
    """GSG density of heights ``Y = mu + U^(1/2) G`` (1/nm).

    Parameters
    ----------
    y : array_like
        Heights, nm.
    alpha : float
        Shape, in (0, 2]; 2 gives ``N(mu, sigma)`` exactly.
    sigma : float
        Standard deviation of ``G``, nm (> 0).
    mu : float
        Mean, nm.

    Returns
    -------
    numpy.ndarray
        Density in 1/nm, shape of ``y``.

    Examples
    --------
    >>> y = np.linspace(-60.0, 60.0, 120_001)
    >>> round(float(gsg_pdf(y, 1.2, 1.0).sum() * 0.001), 6)  # integrates to 1
    1.0
    >>> float(gsg_pdf(0.0, 2.0, 1.0)) == float(1 / np.sqrt(2 * np.pi))
    True
    """
    from .mixtures import mixture_pdf

    return mixture_pdf(y, *gsg_height_components(alpha, sigma, mu))


def gsg_cdf(y, alpha: float, sigma: float, mu: float = 0.0) -> np.ndarray:
    """GSG cumulative distribution function of heights (see :func:`gsg_pdf`).

    Examples
    --------
    >>> round(float(gsg_cdf(1.0, 2.0, 1.0)), 6)  # the standard normal's
    0.841345
    """
    w, _m, s = gsg_height_components(alpha, sigma, mu)
    return _scale_mixture_cdf(np.asarray(y, dtype=np.float64) - float(mu), w, s)


def gsg_increment_pdf(d, alpha: float, sigma: float, rho: float) -> np.ndarray:
    """Density of GSG increments ``dY(s)`` at a lag where ``G`` has correlation ``rho``.

    Parameters
    ----------
    d : array_like
        Increments, nm.
    alpha, sigma, rho : float
        Shape (0, 2], standard deviation of ``G`` (nm), correlation of ``G`` at the lag.

    Returns
    -------
    numpy.ndarray
        Density in 1/nm, shape of ``d``.

    Examples
    --------
    >>> d = np.linspace(-40.0, 40.0, 80_001)
    >>> round(float(gsg_increment_pdf(d, 1.3, 1.0, 0.8).sum() * 0.001), 4)
    1.0
    """
    from .mixtures import mixture_pdf

    return mixture_pdf(d, *gsg_increment_components(alpha, sigma, rho))


def gsg_increment_cdf(d, alpha: float, sigma: float, rho: float) -> np.ndarray:
    """CDF of GSG increments (see :func:`gsg_increment_pdf`).

    Examples
    --------
    >>> gsg_increment_cdf([0.0], 1.3, 1.0, 0.8).round(12).tolist()
    [0.5]
    """
    w, _, s = gsg_increment_components(alpha, sigma, rho)
    return _scale_mixture_cdf(d, w, s)


def gsg_correlation(s, corr_length: float, covariance: str = "exponential") -> np.ndarray:
    """Correlation ``rho(s)`` of ``G`` in :func:`simulate_gsg_field` at distances ``s`` (px).

    ``"exponential"``: ``exp(-s / corr_length)``; ``"gaussian"``: ``exp(-(s /
    corr_length)^2)``.

    Examples
    --------
    >>> gsg_correlation([0, 5], 5.0).round(6).tolist()
    [1.0, 0.367879]
    """
    s = np.abs(np.asarray(s, dtype=np.float64))
    ell = float(corr_length)
    if not (math.isfinite(ell) and ell > 0):
        raise StatsError(f"corr_length must be a positive number of pixels, got {corr_length!r}")
    if covariance == "exponential":
        return np.exp(-s / ell)
    if covariance == "gaussian":
        return np.exp(-((s / ell) ** 2))
    raise StatsError(f"covariance must be 'exponential' or 'gaussian', got {covariance!r}")


def simulate_gsg_field(
    shape: tuple[int, int],
    alpha: float,
    sigma: float,
    corr_length: float,
    *,
    mu: float = 0.0,
    covariance: str = "exponential",
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """A GSG field ``mu + U^(1/2) G`` on a grid (for tests and benchmarks).

    ``G`` is an exactly stationary Gaussian field with the isotropic correlation
    :func:`gsg_correlation` (circulant embedding on a grid twice as large, so no
    periodicity is seen); ``V`` is independent standard normal at every pixel.

    Parameters
    ----------
    shape : (int, int)
        Rows and columns, pixels.
    alpha : float
        Shape, in (0, 2].
    sigma : float
        Standard deviation of ``G``, nm.
    corr_length : float
        Correlation length of ``G``, pixels.
    mu : float
        Mean, nm.
    covariance : {"exponential", "gaussian"}
        Correlation model of ``G``.
    seed : int, Generator or None
        Random seed.

    Returns
    -------
    numpy.ndarray
        ``float64`` field, nm.

    Examples
    --------
    >>> y = simulate_gsg_field((256, 256), 1.5, 1.0, 4.0, seed=0)
    >>> y.shape, bool(abs(y.var() / gsg_moments(1.5, 1.0)["variance"] - 1) < 0.2)
    ((256, 256), True)
    """
    a = 2.0 - _check_alpha(alpha)
    sig = _check_sigma(sigma)
    rows, cols = (int(v) for v in shape)
    if rows < 1 or cols < 1:
        raise StatsError(f"shape must be two positive sizes, got {shape!r}")
    rng = np.random.default_rng(seed)
    n0, n1 = 2 * rows, 2 * cols
    i = np.minimum(np.arange(n0), n0 - np.arange(n0))[:, None]
    j = np.minimum(np.arange(n1), n1 - np.arange(n1))[None, :]
    cov = gsg_correlation(np.hypot(i, j), corr_length, covariance)
    lam = np.maximum(np.fft.fft2(cov).real, 0.0) / (n0 * n1)
    noise = rng.normal(size=(n0, n1)) + 1j * rng.normal(size=(n0, n1))
    g = np.fft.fft2(np.sqrt(lam) * noise).real[:rows, :cols]
    v = rng.normal(size=(rows, cols))
    return float(mu) + sig * np.exp(0.5 * a * v) * g
