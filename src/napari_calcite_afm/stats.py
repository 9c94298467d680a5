"""Multimodal Gaussian model of AFM heights and height increments.

This module implements the section "The multimodal Gaussian model" of the science notes
(``shared/docs/science.md``); ``docs/statistics.md`` gives the formulas, the meaning of every
output and the edge-case behaviour.

For one levelled frame ``Z`` (nm) and its segmentation (labels 1 = multilayer pit, region A;
2 = terrace, region B; 3 = monolayer etch pit, region M; 0 = unlabelled), :func:`fit_frame`
computes

- the zero-mean fluctuation ``Z' = Z - <Z>`` (mean over valid, labelled pixels);
- per region ``i``: the area fraction ``w_i`` (``c = w_A``), the mean ``mu_i`` and standard
  deviation ``sigma_i`` of ``Z'`` over the region;
- per lag ``s`` (pixels along ``x`` = columns, ``y`` = rows, or both pooled): the Pearson
  correlation ``rho_i(s)`` of ``Z'(x)`` and ``Z'(x + s)`` over the pairs with both ends in
  region ``i``, and the pair-type fractions ``p_ij(s)``;
- the model densities of heights ``f(z) = sum_i w_i N(z; mu_i, sigma_i)`` and of increments
  ``g(d; s) = sum_ij p_ij N(d; m_ij, s_ij)``;
- the goodness of fit of both (Kolmogorov-Smirnov, L1 and Jensen-Shannon distances);
- for comparison, a two-component Gaussian mixture fitted to ``Z'`` alone by EM.

Everything is vectorised numpy/scipy; a 512 x 512 frame with four lags takes a few tens of
milliseconds (``benchmarks/stats_speed.py``).

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.stats import fit_frame
>>> rng = np.random.default_rng(0)
>>> labels = np.full((64, 64), 2, dtype=np.uint8)
>>> labels[16:40, 16:40] = 1                       # a square "pit"
>>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.3, labels.shape)
>>> fit = fit_frame(z, labels, lags=(1, 2), pixel_size_nm=11.7)
>>> round(fit.c, 4)
0.1406
>>> rows = fit.to_rows(frame=0, time_s=0.0)
>>> [r["lag_nm"] for r in rows]
[11.7, 23.4]
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr

from ._util import available_cpus
from ._util import stop_requested as _stopped
from .errors import StatsError

__all__ = [
    "AXES",
    "REGION_NAMES",
    "EMFit",
    "FrameFit",
    "Histogram",
    "LagStats",
    "RegionParams",
    "StatsError",
    "em_gaussian_mixture",
    "fit_frame",
    "fit_stack",
    "fits_to_rows",
    "fluctuation",
    "height_cdf",
    "height_pdf",
    "histogram",
    "histogram_distances",
    "increment_cdf",
    "increment_pdf",
    "increments",
    "ks_distance",
    "mixture_cdf",
    "mixture_logpdf",
    "mixture_pdf",
    "pair_fractions",
    "row_columns",
]

#: Region name of each label value (1 multilayer pit, 2 terrace, 3 monolayer etch pit).
REGION_NAMES: dict[int, str] = {1: "A", 2: "B", 3: "M"}
#: Accepted values of ``axis``: ``"x"`` pairs along a row (columns), ``"y"`` along a
#: column (rows), ``"both"`` pools the pairs of the two directions.
AXES = ("x", "y", "both")

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_N_FINE = 65536  # fine buckets of a binned sample (histogram bins, exact KS)
_BLOCK = 16  # fine buckets per level-0 group (about 4 000 groups: KS bounds, binned EM)
_N_QUANTILE = 20_000  # subsample used only to place the histogram range and bin width
_SORT_LIMIT = 20_000  # the exact KS sorts at most about this many candidate points
_MIN_BINS, _MAX_BINS = 50, 200
_GEMM_CHUNK = 200_000  # multiply-adds per BLAS call in the pair sums (single-threaded)


# ============================================================================ results
@dataclass
class RegionParams:
    """Parameters of one mode (region) of the height model.

    Attributes
    ----------
    label : int
        Label value (1 = A multilayer pit, 2 = B terrace, 3 = M monolayer etch pit).
    name : str
        Region name, ``"A"``, ``"B"`` or ``"M"``.
    weight : float
        Area fraction of the region among the valid labelled pixels (``c`` for region A).
        Exact even when the region is too small for its other parameters.
    mu : float
        Mean of ``Z'`` over the region, nm. NaN when the region has fewer than
        ``min_pixels`` pixels.
    sigma : float
        Standard deviation (population, ``ddof=0``) of ``Z'`` over the region, nm; 0 for a
        constant region; NaN when the region has fewer than ``min_pixels`` pixels.
    n_pixels : int
        Number of valid pixels in the region.
    """

    label: int
    name: str
    weight: float
    mu: float
    sigma: float
    n_pixels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of the fields."""
        return {
            "label": self.label,
            "name": self.name,
            "weight": self.weight,
            "mu": self.mu,
            "sigma": self.sigma,
            "n_pixels": self.n_pixels,
        }


@dataclass
class Histogram:
    """A sample histogram normalised as a density over the whole sample.

    Attributes
    ----------
    density : numpy.ndarray
        ``(n_bins,)`` density in 1/nm: ``counts / (n * bin_width)``, so that it is directly
        comparable with a model pdf. Values outside ``edges`` are counted in ``n`` (and in
        ``outside``) but not in any bin, so ``sum(density * widths) = 1 - outside``.
    edges : numpy.ndarray
        ``(n_bins + 1,)`` bin edges in nm (uniform).
    n : int
        Sample size.
    outside : float
        Fraction of the sample outside ``[edges[0], edges[-1]]`` (the robust range trims
        far outliers; usually 0 or a few 1e-4).
    """

    density: np.ndarray
    edges: np.ndarray
    n: int
    outside: float

    @property
    def centers(self) -> np.ndarray:
        """Bin centres, nm."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def widths(self) -> np.ndarray:
        """Bin widths, nm."""
        return np.diff(self.edges)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (arrays as lists)."""
        return {
            "density": self.density.tolist(),
            "edges": self.edges.tolist(),
            "n": self.n,
            "outside": self.outside,
        }


@dataclass
class LagStats:
    """Increment statistics and model at one lag.

    Attributes
    ----------
    lag_px : int
        Lag in pixels.
    lag_nm : float
        Lag in nm (``lag_px * pixel_size_nm``).
    axis : str
        ``"x"``, ``"y"`` or ``"both"`` (pairs of the two directions pooled).
    rho : dict[int, float]
        Pearson correlation ``rho_i(s)`` of ``Z'(x)`` and ``Z'(x + s)`` over the pairs with
        both ends in region ``i``, keyed by label value (1, 2[, 3]). NaN when there are fewer
        than ``min_pixels`` such pairs, or the region is constant.
    p : numpy.ndarray
        ``(k, k)`` pair-type fractions: ``p[i, j]`` is the fraction of valid pairs
        ``(x, x + s)`` with ``x`` in class ``i`` and ``x + s`` in class ``j`` (classes in the
        order A, B[, M]); sums to 1 (all NaN when there is no valid pair).
    n_pairs : int
        Number of pairs with both ends valid and labelled.
    n_same_pairs : dict[int, int]
        Number of pairs with both ends in region ``i``, keyed by label value.
    weights, means, sigmas : numpy.ndarray
        ``(k * k,)`` components of the increment model ``g(d; s)``, row-major over
        ``(i, j)``: weight ``p_ij``, mean ``m_ij`` (0 on the diagonal, ``mu_j - mu_i``
        off it) and standard deviation ``s_ij`` (nm).
    ks_increment : float
        Kolmogorov-Smirnov distance between the increment sample and ``g``'s CDF (exact,
        over all ``n_pairs`` increments).
    l1_increment : float
        L1 distance between the histogram and the model probabilities of the same bins
        (plus the two outer intervals), in [0, 2].
    js_increment : float
        Jensen-Shannon distance (base 2, in [0, 1]) on the same bins.
    hist : Histogram or None
        The increment histogram (None when there is no pair or histograms were not asked).
    flags : list[str]
        Problems met at this lag, in words.
    """

    lag_px: int
    lag_nm: float
    axis: str
    rho: dict[int, float]
    p: np.ndarray
    n_pairs: int
    n_same_pairs: dict[int, int]
    weights: np.ndarray
    means: np.ndarray
    sigmas: np.ndarray
    ks_increment: float = math.nan
    l1_increment: float = math.nan
    js_increment: float = math.nan
    hist: Histogram | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self, include_histogram: bool = False) -> dict[str, Any]:
        """JSON-serialisable dictionary (arrays as lists; NaN kept as float NaN)."""
        out = {
            "lag_px": self.lag_px,
            "lag_nm": self.lag_nm,
            "axis": self.axis,
            "rho": {str(k): v for k, v in self.rho.items()},
            "p": self.p.tolist(),
            "n_pairs": self.n_pairs,
            "n_same_pairs": {str(k): v for k, v in self.n_same_pairs.items()},
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "sigmas": self.sigmas.tolist(),
            "ks_increment": self.ks_increment,
            "l1_increment": self.l1_increment,
            "js_increment": self.js_increment,
            "flags": list(self.flags),
        }
        if include_histogram and self.hist is not None:
            out["hist"] = self.hist.to_dict()
        return out


@dataclass
class EMFit:
    """A 1D Gaussian mixture fitted by expectation-maximisation.

    Attributes
    ----------
    weights, means, sigmas : numpy.ndarray
        ``(n_components,)`` mixture weights, means (nm) and standard deviations (nm), ordered
        by increasing mean (component 0 = "A", the lower, like pits). NaN when the fit was
        impossible (see ``flags``).
    loglik : float
        Log-likelihood of the whole sample under the fitted mixture (natural log, exact,
        density in 1/nm).
    n : int
        Sample size.
    n_iter : int
        EM iterations done.
    converged : bool
        Whether the mean log-likelihood changed by less than ``tol`` before ``max_iter``.
    ks_height, l1_height, js_height : float
        Goodness of fit of the mixture to the sample (as for :class:`FrameFit`).
    flags : list[str]
        Problems met, in words.
    """

    weights: np.ndarray
    means: np.ndarray
    sigmas: np.ndarray
    loglik: float
    n: int
    n_iter: int
    converged: bool
    ks_height: float = math.nan
    l1_height: float = math.nan
    js_height: float = math.nan
    flags: list[str] = field(default_factory=list)

    @property
    def c(self) -> float:
        """Weight of the lower-mean component (the EM analogue of ``c``)."""
        return float(self.weights[0])

    def pdf(self, z: np.ndarray) -> np.ndarray:
        """Mixture density at ``z`` (nm), 1/nm."""
        return mixture_pdf(z, self.weights, self.means, self.sigmas)

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """Mixture CDF at ``z`` (nm)."""
        return mixture_cdf(z, self.weights, self.means, self.sigmas)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return {
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "sigmas": self.sigmas.tolist(),
            "loglik": self.loglik,
            "n": self.n,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "ks_height": self.ks_height,
            "l1_height": self.l1_height,
            "js_height": self.js_height,
            "flags": list(self.flags),
        }


@dataclass
class FrameFit:
    """The multimodal Gaussian model of one frame: parameters, goodness of fit, EM.

    Attributes
    ----------
    n_classes : int
        2 (A, B; label 3 counted as B) or 3 (A, B, M).
    axis : str
        Direction of the lags: ``"x"``, ``"y"`` or ``"both"``.
    pixel_size_nm : float
        Pixel size, nm per pixel.
    mean_height_nm : float
        ``<Z>``, the mean height over the valid labelled pixels, nm.
    n_valid : int
        Number of valid (finite and labelled) pixels.
    regions : list[RegionParams]
        One per class, in the order A, B[, M].
    lags : list[LagStats]
        One per lag, in the order asked.
    ks_height, l1_height, js_height : float
        Goodness of fit of the height model ``f`` to the sample of ``Z'``: exact
        Kolmogorov-Smirnov distance, L1 distance (in [0, 2]) and Jensen-Shannon distance
        (base 2, in [0, 1]) on the histogram bins.
    loglik_height : float
        Log-likelihood of the ``Z'`` sample under ``f`` (natural log, density in 1/nm;
        comparable with ``em.loglik``). NaN when ``f`` is undefined or has a point mass
        (a constant region).
    height_hist : Histogram or None
        Histogram of ``Z'``.
    em : EMFit or None
        Two-component mixture fitted to ``Z'`` alone by EM (None if ``em=False``).
    flags : list[str]
        Frame-level problems, in words (lag-level ones are in each ``LagStats.flags``).
    """

    n_classes: int
    axis: str
    pixel_size_nm: float
    mean_height_nm: float
    n_valid: int
    regions: list[RegionParams]
    lags: list[LagStats]
    ks_height: float = math.nan
    l1_height: float = math.nan
    js_height: float = math.nan
    loglik_height: float = math.nan
    height_hist: Histogram | None = None
    em: EMFit | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def c(self) -> float:
        """Area fraction of region A (multilayer pits) among the valid labelled pixels."""
        return float(self.regions[0].weight)

    def region(self, key: int | str) -> RegionParams:
        """The region of label value ``key`` (1, 2, 3) or name (``"A"``, ``"B"``, ``"M"``)."""
        for r in self.regions:
            if key in (r.label, r.name):
                return r
        raise StatsError(f"no region {key!r} in a {self.n_classes}-class fit")

    def lag(self, lag_px: int) -> LagStats:
        """The :class:`LagStats` of lag ``lag_px`` (pixels)."""
        for ls in self.lags:
            if ls.lag_px == lag_px:
                return ls
        raise StatsError(f"lag {lag_px} px was not fitted (lags: {[s.lag_px for s in self.lags]})")

    def height_components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means (nm) and standard deviations (nm) of the height model ``f``."""
        return (
            np.array([r.weight for r in self.regions]),
            np.array([r.mu for r in self.regions]),
            np.array([r.sigma for r in self.regions]),
        )

    def to_rows(self, frame: int = 0, time_s: float = math.nan) -> list[dict[str, Any]]:
        """One table row per lag (one row with NaN lag columns when no lag was fitted).

        Parameters
        ----------
        frame : int
            Frame index written in the ``frame`` column.
        time_s : float
            Acquisition time of the frame, s.

        Returns
        -------
        list of dict
            Keys exactly :func:`row_columns` ``(n_classes)``, in that order. ``flags`` joins
            the frame's and the lag's flags with ``";"``.
        """
        k = self.n_classes
        names = [REGION_NAMES[i + 1] for i in range(k)]
        em = self.em
        em_w, em_m, em_s = (
            (em.weights, em.means, em.sigmas) if em is not None else ([math.nan] * 2,) * 3
        )
        lags: list[LagStats | None] = list(self.lags) or [None]
        rows = []
        for ls in lags:
            row: dict[str, Any] = {
                "frame": int(frame),
                "time_s": float(time_s),
                "lag_px": ls.lag_px if ls is not None else math.nan,
                "lag_nm": ls.lag_nm if ls is not None else math.nan,
                "c": self.c,
            }
            for i, name in enumerate(names[:2]):
                r = self.regions[i]
                row[f"mu_{name}"] = r.mu
                row[f"sigma_{name}"] = r.sigma
                row[f"rho_{name}"] = ls.rho[r.label] if ls is not None else math.nan
            row["ks_height"] = self.ks_height
            row["ks_increment"] = ls.ks_increment if ls is not None else math.nan
            if k == 3:
                r = self.regions[2]
                row["c_M"] = r.weight
                row["mu_M"] = r.mu
                row["sigma_M"] = r.sigma
                row["rho_M"] = ls.rho[r.label] if ls is not None else math.nan
            row["axis"] = self.axis
            row["mean_height_nm"] = self.mean_height_nm
            row["n_valid"] = self.n_valid
            row["n_pairs"] = ls.n_pairs if ls is not None else 0
            for i, a in enumerate(names):
                for j, b in enumerate(names):
                    row[f"p_{a}{b}"] = float(ls.p[i, j]) if ls is not None else math.nan
            row["l1_height"] = self.l1_height
            row["l1_increment"] = ls.l1_increment if ls is not None else math.nan
            row["js_height"] = self.js_height
            row["js_increment"] = ls.js_increment if ls is not None else math.nan
            row["loglik_height"] = self.loglik_height
            row["em_c"] = float(em_w[0])
            row["em_mu_A"] = float(em_m[0])
            row["em_sigma_A"] = float(em_s[0])
            row["em_mu_B"] = float(em_m[1])
            row["em_sigma_B"] = float(em_s[1])
            row["em_ks_height"] = em.ks_height if em is not None else math.nan
            row["em_l1_height"] = em.l1_height if em is not None else math.nan
            row["em_js_height"] = em.js_height if em is not None else math.nan
            row["em_loglik"] = em.loglik if em is not None else math.nan
            flags = list(self.flags) + (list(ls.flags) if ls is not None else [])
            if em is not None:
                flags += [f"EM: {f}" for f in em.flags]
            row["flags"] = ";".join(flags)
            rows.append(row)
        return rows

    def to_dict(self, include_histograms: bool = False) -> dict[str, Any]:
        """JSON-serialisable dictionary of the whole fit (NaN kept as float NaN)."""
        out = {
            "n_classes": self.n_classes,
            "axis": self.axis,
            "pixel_size_nm": self.pixel_size_nm,
            "mean_height_nm": self.mean_height_nm,
            "n_valid": self.n_valid,
            "c": self.c,
            "regions": [r.to_dict() for r in self.regions],
            "lags": [ls.to_dict(include_histograms) for ls in self.lags],
            "ks_height": self.ks_height,
            "l1_height": self.l1_height,
            "js_height": self.js_height,
            "loglik_height": self.loglik_height,
            "em": self.em.to_dict() if self.em is not None else None,
            "flags": list(self.flags),
        }
        if include_histograms and self.height_hist is not None:
            out["height_hist"] = self.height_hist.to_dict()
        return out


def row_columns(n_classes: int = 2) -> list[str]:
    """Column names of :meth:`FrameFit.to_rows`, in order.

    The first thirteen are the study's table: ``frame, time_s, lag_px, lag_nm, c, mu_A,
    sigma_A, rho_A, mu_B, sigma_B, rho_B, ks_height, ks_increment``; with three classes
    ``c_M, mu_M, sigma_M, rho_M`` follow; then the extras.

    Examples
    --------
    >>> row_columns()[:5]
    ['frame', 'time_s', 'lag_px', 'lag_nm', 'c']
    >>> "c_M" in row_columns(3), "c_M" in row_columns(2)
    (True, False)
    """
    _check_n_classes(n_classes)
    names = [REGION_NAMES[i + 1] for i in range(n_classes)]
    cols = ["frame", "time_s", "lag_px", "lag_nm", "c"]
    cols += ["mu_A", "sigma_A", "rho_A", "mu_B", "sigma_B", "rho_B"]
    cols += ["ks_height", "ks_increment"]
    if n_classes == 3:
        cols += ["c_M", "mu_M", "sigma_M", "rho_M"]
    cols += ["axis", "mean_height_nm", "n_valid", "n_pairs"]
    cols += [f"p_{a}{b}" for a in names for b in names]
    cols += ["l1_height", "l1_increment", "js_height", "js_increment", "loglik_height"]
    cols += ["em_c", "em_mu_A", "em_sigma_A", "em_mu_B", "em_sigma_B"]
    cols += ["em_ks_height", "em_l1_height", "em_js_height", "em_loglik", "flags"]
    return cols


# ============================================================================ mixtures
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


# ============================================================================ validation
def _check_n_classes(n_classes: int) -> int:
    if n_classes not in (2, 3) or isinstance(n_classes, bool):
        raise StatsError(f"n_classes must be 2 or 3, got {n_classes!r}")
    return int(n_classes)


def _check_axis(axis: str) -> str:
    if axis not in AXES:
        raise StatsError(f"axis must be one of {AXES}, got {axis!r}")
    return axis


def _check_lag(lag) -> int:
    try:
        value = float(lag)
    except (TypeError, ValueError):
        raise StatsError(f"a lag must be a positive whole number of pixels, got {lag!r}") from None
    if not math.isfinite(value) or value != int(value) or value < 1 or isinstance(lag, bool):
        raise StatsError(f"a lag must be a positive whole number of pixels, got {lag!r}")
    return int(value)


def _check_lags(lags) -> list[int]:
    if np.ndim(lags) == 0:
        lags = [lags]
    out: list[int] = []
    for lag in lags:
        s = _check_lag(lag)
        if s not in out:
            out.append(s)
    return out


def _as_frame(z, name: str = "z") -> np.ndarray:
    arr = np.asarray(z)
    if arr.ndim != 2:
        raise StatsError(
            f"{name} must be one frame (rows, cols), got an array of shape {arr.shape}"
            + ("; use fit_stack for a stack" if arr.ndim == 3 else "")
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise StatsError(f"{name} must hold heights in nm (numbers), got dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64)


def _class_codes(labels, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    """Class index per pixel (0 = A, 1 = B, 2 = M) and ``n_classes`` for unlabelled."""
    lab = np.asarray(labels)
    if lab.shape != tuple(shape):
        raise StatsError(
            f"labels shape {lab.shape} does not match the height frame shape {tuple(shape)}"
        )
    if lab.dtype == bool:
        raise StatsError(
            "labels must be integer class labels (0 unlabelled, 1 A, 2 B, 3 M), got a "
            "boolean mask; for a pit mask use np.where(mask, 1, 2)"
        )
    if np.issubdtype(lab.dtype, np.floating):
        if not np.isfinite(lab).all() or (lab != np.round(lab)).any():
            raise StatsError("labels must be whole numbers 0-3 (got non-integer values)")
    elif not np.issubdtype(lab.dtype, np.integer):
        raise StatsError(f"labels must be integers 0-3, got dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > 3):
        raise StatsError(
            f"labels must be 0 (unlabelled), 1 (A), 2 (B) or 3 (M); found values from "
            f"{lab.min()} to {lab.max()}"
        )
    k = n_classes
    lut = np.array([k, 0, 1, 1 if k == 2 else 2], dtype=np.uint8)
    return lut[lab.astype(np.intp, copy=False)]


# ============================================================================ sample stats
def fluctuation(z, labels=None) -> np.ndarray:
    """Zero-mean fluctuation ``Z' = Z - <Z>``.

    Parameters
    ----------
    z : array_like
        One frame ``(rows, cols)`` of heights, nm; NaN marks missing pixels.
    labels : array_like, optional
        Labels of the frame (0 unlabelled). When given, the mean runs over the finite
        *labelled* pixels (as in :func:`fit_frame`) and unlabelled pixels come back NaN.

    Returns
    -------
    numpy.ndarray
        ``float64`` frame of ``Z'`` in nm, NaN where ``z`` is NaN (or unlabelled).

    Examples
    --------
    >>> fluctuation(np.array([[1.0, 2.0], [3.0, np.nan]])).tolist()
    [[-1.0, 0.0], [1.0, nan]]
    """
    z = _as_frame(z)
    valid = np.isfinite(z)
    if labels is not None:
        valid &= _class_codes(labels, z.shape, 2) < 2
    if not valid.any():
        return np.full(z.shape, np.nan)
    z -= z[valid].mean()
    z[~valid] = np.nan
    return z


def _pair_slices(shape: tuple[int, int], lag: int, axis: str):
    """(first-end, second-end) slices of the pairs ``(x, x + s)`` along each direction."""
    rows, cols = shape
    out = []
    if axis in ("x", "both") and lag < cols:
        out.append(((slice(None), slice(None, cols - lag)), (slice(None), slice(lag, None))))
    if axis in ("y", "both") and lag < rows:
        out.append(((slice(None, rows - lag), slice(None)), (slice(lag, None), slice(None))))
    return out


def increments(z, lag: int, axis: str = "x", labels=None) -> np.ndarray:
    """Height increments ``dZ(x; s) = Z(x + s) - Z(x)`` at a lag, as a flat sample.

    Parameters
    ----------
    z : array_like
        One frame ``(rows, cols)``, nm.
    lag : int
        Lag ``s`` in pixels (>= 1).
    axis : {"x", "y", "both"}
        ``"x"``: pairs along a row, ``(r, c)`` and ``(r, c + s)``; ``"y"``: along a column,
        ``(r, c)`` and ``(r + s, c)``; ``"both"``: the x pairs followed by the y pairs.
    labels : array_like, optional
        When given, only pairs with both ends labelled (non-zero) are kept.

    Returns
    -------
    numpy.ndarray
        1D ``float64`` increments in nm over the pairs with both ends finite (and labelled);
        empty when the lag is not shorter than the frame.

    Examples
    --------
    >>> increments(np.array([[0.0, 1.0, 3.0]]), 1).tolist()
    [1.0, 2.0]
    """
    z = _as_frame(z)
    s = _check_lag(lag)
    _check_axis(axis)
    if labels is not None:
        z[_class_codes(labels, z.shape, 2) >= 2] = np.nan
    parts = [(z[b] - z[a]).ravel() for a, b in _pair_slices(z.shape, s, axis)]
    d = np.concatenate(parts) if parts else np.empty(0)
    return d[np.isfinite(d)]


def pair_fractions(labels, lag: int, axis: str = "x", n_classes: int = 2, valid=None):
    """Pair-type fractions ``p_ij(s)`` of a segmentation, by direct counting.

    Parameters
    ----------
    labels : array_like
        ``(rows, cols)`` labels (0 unlabelled, 1 A, 2 B, 3 M).
    lag : int
        Lag in pixels.
    axis : {"x", "y", "both"}
        Direction(s) of the pairs.
    n_classes : {2, 3}
        With 2, label 3 counts as B.
    valid : array_like of bool, optional
        Extra mask of usable pixels (e.g. ``np.isfinite(z)``).

    Returns
    -------
    p : numpy.ndarray
        ``(k, k)`` fractions of pairs ``(x, x + s)`` with ``x`` in class ``i`` and ``x + s``
        in class ``j`` (order A, B[, M]); they sum to 1; NaN when there is no valid pair.
    n_pairs : int
        Number of pairs with both ends usable and labelled.

    Examples
    --------
    >>> lab = np.array([[1, 1, 2, 2]])
    >>> p, n = pair_fractions(lab, 1)
    >>> p.tolist(), n
    ([[0.3333333333333333, 0.3333333333333333], [0.0, 0.3333333333333333]], 3)
    """
    k = _check_n_classes(n_classes)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise StatsError(f"labels must be one frame (rows, cols), got shape {lab.shape}")
    code = _class_codes(lab, lab.shape, k).astype(np.intp)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != lab.shape:
            raise StatsError(f"valid shape {v.shape} does not match labels shape {lab.shape}")
        code[~v] = k
    s = _check_lag(lag)
    counts = np.zeros((k + 1) * (k + 1), dtype=np.int64)
    for a, b in _pair_slices(lab.shape, s, _check_axis(axis)):
        pc = code[a] * (k + 1) + code[b]
        counts += np.bincount(pc.ravel(), minlength=(k + 1) ** 2)
    n_ij = counts.reshape(k + 1, k + 1)[:k, :k]
    n = int(n_ij.sum())
    p = n_ij / n if n else np.full((k, k), np.nan)
    return p, n


# ============================================================================ binned sample
def _robust_edges(x: np.ndarray, xmin: float, xmax: float, bins) -> np.ndarray:
    """Uniform bin edges: robust range and Freedman-Diaconis width, 50-200 bins."""
    n = x.size
    if xmax <= xmin:  # constant sample: 1 nm wide window around the value
        nb = _MIN_BINS if bins is None else int(bins)
        return xmin + np.linspace(-0.5, 0.5, nb + 1)
    sub = x[:: n // _N_QUANTILE] if n >= 2 * _N_QUANTILE else x  # every k-th value
    q0, q1, q3, q4 = np.quantile(sub, [0.001, 0.25, 0.75, 0.999])
    span = q4 - q0
    lo = max(xmin, q0 - 0.1 * span)
    hi = min(xmax, q4 + 0.1 * span)
    if not hi > lo:
        lo, hi = xmin, xmax
    if hi >= xmax:  # keep the maximum inside the last bin
        hi = xmax + 1e-9 * (hi - lo)
    if bins is None:
        iqr = q3 - q1
        if iqr > 0:
            width = 2.0 * iqr / n ** (1.0 / 3.0)
            nb = int(np.clip(math.ceil((hi - lo) / width), _MIN_BINS, _MAX_BINS))
        else:
            nb = _MAX_BINS
    else:
        nb = int(bins)
        if nb < 1:
            raise StatsError(f"bins must be >= 1, got {bins!r}")
    return np.linspace(lo, hi, nb + 1)


class _Workspace:
    """Scratch arrays reused across the samples of one frame (fewer page faults)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._spares: list[_Workspace] = []

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None or a.size < n or a.dtype != dtype:
            a = np.empty(n, dtype=dtype)
            self._arrays[name] = a
        return a[:n]

    def spares(self, n: int) -> list[_Workspace]:
        """This workspace and ``n - 1`` others kept with it (one per thread)."""
        while len(self._spares) < n - 1:
            self._spares.append(_Workspace())
        return [self, *self._spares[: n - 1]]


_LOCAL = threading.local()


def _thread_workspace() -> _Workspace:
    """This thread's scratch workspace, kept between calls.

    Fresh arrays of a few MB per sample cost page faults on every call (about a tenth of
    a frame's fit); one workspace per thread keeps calls from different threads apart.
    """
    work = getattr(_LOCAL, "work", None)
    if work is None:
        work = _LOCAL.work = _Workspace()
    return work


class _Binned:
    """A 1D finite sample assigned to fine uniform buckets, grouped in coarse blocks.

    Bucket 0 holds the values below the histogram range, bucket ``nf + 1`` those above it,
    buckets ``1..nf`` split the range uniformly (``m`` per histogram bin, about 65 000 in
    all). Level-0 groups are blocks of ``_BLOCK`` fine buckets (about 4 000 groups), plus
    the two outer buckets. Assignment is monotone in x, and bucket ``j`` holds the points
    of its nominal interval ``[a[j], b[j])`` up to rounding (``eps``).

    One pass over the sample serves the histogram (sums of ``m`` buckets), the exact
    Kolmogorov-Smirnov distance (bounds per group, refined on the counts only where the
    maximum can lie) and the binned EM (sufficient statistics per level-0 group).
    """

    def __init__(self, x: np.ndarray, *, bins=None, work: _Workspace | None = None):
        work = work if work is not None else _Workspace()
        self.work = work
        self.x = x
        self.n = x.size
        self.xmin = xmin = float(x.min())
        self.xmax = xmax = float(x.max())
        edges = _robust_edges(x, xmin, xmax, bins)
        nb = edges.size - 1
        lo, hi = float(edges[0]), float(edges[-1])
        m = _BLOCK * max(1, math.ceil(_N_FINE / (nb * _BLOCK)))
        nf = nb * m
        scale = nf / (hi - lo)
        t = np.multiply(x, scale, out=work.get("t", x.size, np.float64))
        t += 1.0 - lo * scale
        np.clip(t, 0.0, nf + 1.0, out=t)
        self.idx = work.get("idx", x.size, np.int32)
        np.copyto(self.idx, t, casting="unsafe")  # truncation = floor, t >= 0
        self.counts = np.bincount(self.idx, minlength=nf + 2)
        self.cum = np.concatenate(([0], np.cumsum(self.counts)))
        fe = lo + np.arange(nf + 1) / scale
        fe[-1] = hi
        self.a = np.concatenate(([min(xmin, lo)], fe))
        self.b = np.concatenate((fe, [max(xmax, hi)]))
        self.eps = 1e-12 * (abs(xmin) + abs(xmax) + (xmax - xmin) + abs(lo) + abs(hi)) + 1e-300
        self.nf = nf
        self.edges = fe[::m].copy()
        self.edges[-1] = hi
        self.hist_counts = self.counts[1:-1].reshape(nb, m).sum(axis=1)
        inner = np.arange(1, nf + 1, _BLOCK)
        self.g0_start = np.concatenate(([0], inner, [nf + 1]))
        self.g0_end = np.concatenate(([1], inner + _BLOCK, [nf + 2]))

    def histogram(self) -> Histogram:
        widths = np.diff(self.edges)
        density = self.hist_counts / (self.n * widths)
        outside = (self.counts[0] + self.counts[-1]) / self.n
        return Histogram(density=density, edges=self.edges, n=self.n, outside=float(outside))

    def distances(self, cdf: Callable) -> tuple[float, float]:
        """L1 and Jensen-Shannon distances between the bin probabilities and the model's."""
        fe = cdf(self.edges)
        if not np.isfinite(fe).all():
            return math.nan, math.nan
        pm = np.diff(np.concatenate(([0.0], fe, [1.0])))
        np.maximum(pm, 0.0, out=pm)
        ps = np.concatenate(([self.counts[0]], self.hist_counts, [self.counts[-1]])) / self.n
        return _l1_js(ps, pm)

    def group_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, sums of x and sums of x^2 per level-0 group.

        In-range fine buckets (about 1.5e-5 of the range wide) contribute their centre and
        the uniform within-bucket variance ``h^2 / 12``; the two outer buckets use the
        exact values of their points.
        """
        nf, block = self.nf, _BLOCK
        c = self.counts.astype(np.float64)
        inner = c[1:-1]
        centre = 0.5 * (self.a[1:-1] + self.b[1:-1])
        h2 = (self.b[1] - self.a[1]) ** 2 / 12.0
        s1 = inner * centre
        s2 = s1 * centre
        s2 += inner * h2
        cnt = np.concatenate(([c[0]], inner.reshape(-1, block).sum(axis=1), [c[-1]]))
        sx = np.concatenate(([0.0], s1.reshape(-1, block).sum(axis=1), [0.0]))
        sxx = np.concatenate(([0.0], s2.reshape(-1, block).sum(axis=1), [0.0]))
        for j, g in ((0, 0), (nf + 1, -1)):
            if self.counts[j]:
                xo = self.x[self.idx == j]
                sx[g] = xo.sum()
                sxx[g] = float((xo * xo).sum())
        return cnt, sx, sxx

    def ks(self, cdf: Callable, cdf_left: Callable | None = None) -> float:
        """Exact KS distance: coarse groups, then their fine buckets, then the points."""
        n, eps, cum = self.n, self.eps, self.cum
        if not np.isfinite(cdf(np.array([self.a[0], self.b[-1]]))).all():
            return math.nan
        st, en = self.g0_start, self.g0_end
        best = 0.0
        for level in range(2):
            cnt = cum[en] - cum[st]
            clow = cum[st]
            best, cand = _group_bounds(cnt, clow, self.a[st], self.b[en - 1], n, cdf, eps, best)
            if not cand.any():
                return best
            st, en = st[cand], en[cand]
            if level == 0:  # expand the candidate groups into their fine buckets
                sizes = en - st
                first = np.cumsum(sizes) - sizes
                st = np.repeat(st - first, sizes) + np.arange(int(sizes.sum()))
                en = st + 1
        # gather the points of the candidate fine buckets (a few runs of buckets, usually)
        idx = self.idx
        breaks = np.flatnonzero(np.diff(st) != 1)
        if breaks.size < 4:
            firsts = st[np.concatenate(([0], breaks + 1))]
            lasts = st[np.concatenate((breaks, [st.size - 1]))]
            sel = None
            for f0, l0 in zip(firsts, lasts):  # f0 <= idx <= l0 as one unsigned compare
                run = (idx - np.int32(f0)).view(np.uint32) <= np.uint32(l0 - f0)
                sel = run if sel is None else (sel | run)
        else:
            sel = np.zeros(self.nf + 2, dtype=bool)
            sel[st] = True
            sel = sel[idx]
        comp = np.full(self.nf + 2, -1, dtype=np.intp)
        comp[st] = np.arange(st.size)
        at = np.flatnonzero(sel)  # (much faster than boolean indexing for sparse masks)
        return _ks_groups(
            self.x.take(at),
            comp.take(idx.take(at)),
            self.counts[st],
            cum[st],
            self.a[st],
            self.b[st],
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
    l1 = float(np.abs(ps - pm).sum())
    mid = 0.5 * (ps + pm)
    js = 0.0
    for p in (ps, pm):
        nz = p > 0
        js += 0.5 * float(np.sum(p[nz] * np.log2(p[nz] / mid[nz])))
    return l1, math.sqrt(max(js, 0.0))


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


def _finite_1d(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        x = x[np.isfinite(x)]
    return x


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
    return _Binned(x).ks(cdf, cdf_left)


def histogram(values, bins: int | None = None) -> Histogram:
    """Density histogram with robust shared edges.

    The range runs from the 0.1 % to the 99.9 % quantile, widened by 10 % of that span on
    each side and clipped to the data range (far outliers fall outside and are reported in
    ``outside``); the bin width follows Freedman-Diaconis (``2 IQR n^(-1/3)``), capped to
    50-200 bins. Quantiles come from every k-th value (about 20 000 of them) when the
    sample is larger (they only place the edges; the counts use every value).

    Parameters
    ----------
    values : array_like
        Sample, nm (NaN ignored).
    bins : int, optional
        Number of bins instead of Freedman-Diaconis.

    Returns
    -------
    Histogram
        ``density`` in 1/nm normalised by the whole sample size.

    Examples
    --------
    >>> h = histogram(np.random.default_rng(0).normal(size=10_000))
    >>> 50 <= h.density.size <= 200, abs(float(np.sum(h.density * h.widths)) - 1) < 1e-3
    (True, True)
    """
    x = _finite_1d(values)
    if x.size == 0:
        raise StatsError("histogram of an empty sample (no finite value)")
    return _Binned(x, bins=bins).histogram()


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
    return _Binned(x, bins=bins).distances(cdf)


# ============================================================================ EM
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
    nan = np.full(k, np.nan)
    return EMFit(nan, nan.copy(), nan.copy(), math.nan, n, 0, False, flags=[flag])


def _em_on_binned(binned: _Binned, k: int, max_iter: int, tol: float, min_sigma_frac: float):
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

    ks = binned.ks(cdf)
    l1, js = binned.distances(cdf)
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


# ============================================================================ model densities
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
    """
    if isinstance(fit, EMFit):
        return fit.pdf(z)
    return mixture_pdf(z, *fit.height_components())


def height_cdf(z, fit: FrameFit | EMFit) -> np.ndarray:
    """Model CDF of heights (see :func:`height_pdf`)."""
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
    """
    ls = _lag_of(fit, lag)
    return mixture_pdf(d, ls.weights, ls.means, ls.sigmas)


def increment_cdf(d, fit: FrameFit, lag: int | LagStats) -> np.ndarray:
    """Model CDF of increments (see :func:`increment_pdf`)."""
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


# ============================================================================ the fit
def fit_frame(
    z,
    labels,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    axis: str = "both",
    pixel_size_nm: float = 1.0,
    n_classes: int = 2,
    min_pixels: int = 10,
    em: bool = True,
    histograms: bool = True,
    workers: int | None = None,
    _workspace: _Workspace | None = None,
) -> FrameFit:
    """Fit the multimodal Gaussian model to one frame and its segmentation.

    Parameters
    ----------
    z : array_like
        ``(rows, cols)`` levelled heights, nm. NaN pixels are ignored.
    labels : array_like
        ``(rows, cols)`` integer labels: 0 unlabelled (ignored), 1 multilayer pit (A),
        2 terrace (B), 3 monolayer etch pit (M).
    lags : int or sequence of int
        Lags ``s`` in pixels (>= 1; duplicates dropped, order kept).
    axis : {"both", "x", "y"}
        Direction of the pairs: ``"x"`` along rows (columns index, fast scan axis),
        ``"y"`` along columns (rows index), ``"both"`` pools the pairs of both.
    pixel_size_nm : float
        Pixel size, nm per pixel (for ``lag_nm``).
    n_classes : {2, 3}
        2: label 3 counts as B (terrace including monolayer pits); 3: three modes A, B, M.
    min_pixels : int
        A region with fewer pixels (or a lag with fewer same-region pairs) gets NaN
        parameters (or NaN ``rho``) and a flag.
    em : bool
        Also fit a two-component mixture to ``Z'`` by EM (:attr:`FrameFit.em`).
    histograms : bool
        Keep the sample histograms in the result (the distances are computed anyway).
    workers : int or None
        Threads that share the height goodness of fit (with the EM fit) and the lags.
        None: one per available CPU core, at most one per task; 1: everything in the
        calling thread (what a caller that already runs frames in parallel wants). The
        results do not depend on it.

    Returns
    -------
    FrameFit
        Parameters, goodness of fit and flags; see :meth:`FrameFit.to_rows` for a table.

    Raises
    ------
    StatsError
        (a :class:`~napari_calcite_afm.io.CalciteAFMError`) for a frame that is not 2D,
        a labels shape mismatch, label values outside 0-3, bad lags, axis, n_classes,
        pixel size or min_pixels.

    Notes
    -----
    Valid pixels are the finite, labelled ones; ``<Z>`` and every statistic use only
    them, so ``c mu_A + (1 - c) mu_B = 0`` and ``Var Z' = c sigma_A^2 + (1 - c)
    sigma_B^2 + c (1 - c)(mu_A - mu_B)^2`` hold to rounding. A pair counts when both
    ends are valid. Pair sums are contiguous dot products over a column-padded copy of the
    frame; the KS distances are exact over every value (no subsampling). ``_workspace`` is
    private: :func:`fit_stack` passes one so that the frames share their scratch arrays.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> labels = np.where(rng.random((128, 128)) < 0.3, 1, 2).astype(np.uint8)
    >>> z = np.where(labels == 1, -4.0, 0.0) + rng.normal(0, 0.5, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1, 4))
    >>> abs(fit.c * fit.regions[0].mu + (1 - fit.c) * fit.regions[1].mu) < 1e-12
    True
    >>> float(np.round(fit.lag(1).p.sum(), 12))
    1.0
    """
    k = _check_n_classes(n_classes)
    _check_axis(axis)
    lag_list = _check_lags(lags)
    try:
        px = float(pixel_size_nm)
    except (TypeError, ValueError):
        raise StatsError(
            f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}"
        ) from None
    if not (math.isfinite(px) and px > 0):
        raise StatsError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    if int(min_pixels) != min_pixels or min_pixels < 1:
        raise StatsError(f"min_pixels must be a positive integer, got {min_pixels!r}")
    min_pixels = int(min_pixels)
    zf = _as_frame(z)
    code = _class_codes(labels, zf.shape, k)
    finite = np.isfinite(zf)
    all_finite = bool(finite.all())
    if not all_finite:
        code[~finite] = k
    valid = code < k
    n_valid = int(np.count_nonzero(valid))
    all_valid = n_valid == zf.size
    flags: list[str] = []
    labels_k = list(range(1, k + 1))
    names = [REGION_NAMES[lab] for lab in labels_k]

    if n_valid == 0:
        flags.append("no valid labelled pixels")
        regions = [
            RegionParams(lab, nm, math.nan, math.nan, math.nan, 0)
            for lab, nm in zip(labels_k, names)
        ]
        nan_lags = [
            _nan_lag(s, s * px, axis, k, labels_k, ["no valid labelled pixels"]) for s in lag_list
        ]
        em_fit = _em_nan(0, 2, "empty sample") if em else None
        return FrameFit(k, axis, px, math.nan, 0, regions, nan_lags, em=em_fit, flags=flags)

    # ---- heights: Z', per-region moments
    zvalid = zf if all_valid else zf[valid]
    constant_frame = bool(zvalid.min() == zvalid.max())
    # a constant frame gets Z' = 0 exactly (its mean could differ from the value by rounding)
    mean = float(zvalid.flat[0]) if constant_frame else float(zvalid.mean())
    del zvalid
    zp = zf
    zp -= mean
    if all_valid:
        zp0 = zp
    else:
        zp[~valid] = np.nan
        zp0 = np.where(valid, zp, 0.0)
    cflat = code.ravel()
    # per-class rows of the pair-sum stack: indicator m_i, region-centred u_i = (Z' - mu_i) m_i
    # and u_i^2; their sums give the region moments, their lagged products the pair sums
    rows, cols = zf.shape
    use_x = axis in ("x", "both")
    use_y = axis in ("y", "both")
    pad = max([s for s in lag_list if s < cols], default=0) if use_x else 0
    width = cols + pad
    work = _workspace if _workspace is not None else _thread_workspace()
    stack = work.get("stack", 3 * k * rows * width, np.float64).reshape(3 * k, rows, width)
    stack[:, :, cols:] = 0.0  # padding: no pixel there
    counts = np.zeros(k, dtype=np.int64)
    mu = np.full(k, np.nan)
    sigma = np.full(k, np.nan)
    for i in range(k):
        mi = stack[i, :, :cols]
        ui = stack[k + i, :, :cols]
        qi = stack[2 * k + i, :, :cols]
        np.equal(code, i, out=mi, casting="unsafe")
        counts[i] = round(float(mi.sum()))
        if counts[i] == 0:
            ui[...] = 0.0
            qi[...] = 0.0
            continue
        np.multiply(zp0, mi, out=ui)
        mu[i] = float(ui.sum()) / counts[i]
        np.subtract(zp0, mu[i], out=ui)
        ui *= mi
        np.multiply(ui, ui, out=qi)
        sigma[i] = math.sqrt(float(qi.sum()) / counts[i])
    weights = counts / n_valid
    hsample = zp.ravel() if all_valid else zp[valid]
    if constant_frame:
        flags.append("constant frame (all valid heights equal): sigma 0, rho undefined")
    regions: list[RegionParams] = []
    for i, (lab, nm) in enumerate(zip(labels_k, names)):
        n_i = int(counts[i])
        m_i, s_i = float(mu[i]), float(sigma[i])
        if n_i == 0:
            flags.append(f"region {nm} empty")
            m_i = s_i = math.nan
        elif n_i < min_pixels:
            flags.append(f"region {nm}: {n_i} pixels < min_pixels ({min_pixels}), parameters NaN")
            m_i = s_i = math.nan
        elif constant_frame or s_i <= 1e-9 * (abs(m_i) + abs(mean)):
            if not constant_frame:
                flags.append(f"region {nm} constant (sigma 0), rho undefined")
            # the region's own value, so that the point mass sits exactly on the data
            m_i = float(zp0.flat[int(np.argmax(cflat == i))])
            s_i = 0.0
        regions.append(RegionParams(lab, nm, float(weights[i]), m_i, s_i, n_i))

    # ---- height model: goodness of fit (one task), then one task per lag
    fit = FrameFit(k, axis, px, mean, n_valid, regions, [], flags=flags)
    w_h, m_h, s_h = fit.height_components()
    model = _model_cdfs(w_h, m_h, s_h)
    if model is None:
        flags.append("height model undefined (a weighted region has NaN parameters)")

    def heights(ws: _Workspace) -> None:
        hbin = _Binned(hsample, work=ws)
        if model is not None:
            fit.ks_height = hbin.ks(*model)
            fit.l1_height, fit.js_height = hbin.distances(model[0])
            if model[1] is None:  # no point mass (a constant region has an infinite density)
                fit.loglik_height = _loglik(hsample, w_h, m_h, s_h, ws)
        if histograms:
            fit.height_hist = hbin.histogram()
        if em:
            fit.em = _em_on_binned(hbin, 2, 500, 1e-9, 1e-3)

    flat = stack.reshape(3 * k, rows * width)
    znan = zp  # NaN at invalid pixels

    def one_lag(s: int) -> Callable[[_Workspace], LagStats]:
        def task(ws: _Workspace) -> LagStats:
            return _fit_lag(
                s, px, axis, znan, flat, width, use_x, use_y,
                regions, min_pixels, all_valid, histograms, ws,
            )  # fmt: skip

        return task

    tasks: list[Callable[[_Workspace], Any]] = [heights] + [one_lag(s) for s in lag_list]
    results = _run_tasks(tasks, workers, work)
    fit.lags.extend(results[1:])
    return fit


def _run_tasks(tasks: list[Callable[[_Workspace], Any]], workers: int | None, work: _Workspace):
    """Results of ``task(workspace)`` for each task, in order, on up to ``workers`` threads.

    Each running task holds its own scratch workspace (``work`` and its spares), since the
    binned samples keep views into their workspace's arrays.
    """
    if workers is None:
        workers = available_cpus()
    if int(workers) != workers or workers < 1:
        raise StatsError(f"workers must be a positive integer or None, got {workers!r}")
    n = min(int(workers), len(tasks))
    if n <= 1:
        return [t(work) for t in tasks]
    free: queue.SimpleQueue[_Workspace] = queue.SimpleQueue()
    for ws in work.spares(n):
        free.put(ws)

    def run(task):
        ws = free.get()
        try:
            return task(ws)
        finally:
            free.put(ws)

    with ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(run, tasks))


def _lagged_gram(flat: np.ndarray, offset: int) -> np.ndarray:
    """``flat[:, :-offset] @ flat[:, offset:].T`` in column chunks.

    Chunks keep each BLAS call small enough to run on one thread (OpenBLAS threads a GEMM
    only above about 2.6e5 multiply-adds): a threaded call per lag costs more than it
    saves on a loaded machine, and can stall for whole seconds when the cores are busy.
    """
    rows, n = flat.shape
    n -= offset
    step = max(1024, _GEMM_CHUNK // (rows * rows))
    g = np.zeros((rows, rows))
    for start in range(0, n, step):
        stop = min(n, start + step)
        g += flat[:, start:stop] @ flat[:, start + offset : stop + offset].T
    return g


def _nan_lag(s, lag_nm, axis, k, labels_k, flags) -> LagStats:
    nan = np.full(k * k, np.nan)
    return LagStats(
        lag_px=s,
        lag_nm=lag_nm,
        axis=axis,
        rho={lab: math.nan for lab in labels_k},
        p=np.full((k, k), np.nan),
        n_pairs=0,
        n_same_pairs={lab: 0 for lab in labels_k},
        weights=nan,
        means=nan.copy(),
        sigmas=nan.copy(),
        flags=list(flags),
    )


def _fit_lag(
    s,
    px,
    axis,
    znan,
    flat,
    width,
    use_x,
    use_y,
    regions,
    min_pixels,
    all_valid,
    histograms,
    work,
) -> LagStats:
    k = len(regions)
    rows, cols = znan.shape
    labels_k = [r.label for r in regions]
    flags: list[str] = []
    offsets = []
    if use_x:
        if s < cols:
            offsets.append(s)
        else:
            flags.append(f"lag {s} px not shorter than the frame width ({cols} px): no x pairs")
    if use_y:
        if s < rows:
            offsets.append(s * width)
        else:
            flags.append(f"lag {s} px not shorter than the frame height ({rows} px): no y pairs")
    # pair sums: G[a, b] = sum_x row_a(x) row_b(x + s), rows m_i, u_i, u_i^2
    g = np.zeros((3 * k, 3 * k))
    for o in offsets:
        g += _lagged_gram(flat, o)
    n_ij = np.rint(g[:k, :k]).astype(np.int64)
    n_pairs = int(n_ij.sum())
    if n_pairs == 0:
        flags.append(f"lag {s} px: no valid pairs")
        return _nan_lag(s, s * px, axis, k, labels_k, flags)
    p = n_ij / n_pairs
    rho: dict[int, float] = {}
    n_same: dict[int, int] = {}
    for i, r in enumerate(regions):
        n = float(n_ij[i, i])
        n_same[r.label] = int(n_ij[i, i])
        value = math.nan
        if math.isnan(r.sigma):
            pass  # region parameters already NaN and flagged
        elif r.sigma == 0.0:
            if n > 0:
                flags.append(f"lag {s} px: rho_{r.name} undefined (region {r.name} constant)")
        elif n < min_pixels:
            flags.append(
                f"lag {s} px: rho_{r.name} undefined ({int(n)} same-region pairs < "
                f"min_pixels ({min_pixels}))"
            )
        else:
            sa, sb = g[k + i, i], g[i, k + i]
            saa, sbb, sab = g[2 * k + i, i], g[i, 2 * k + i], g[k + i, k + i]
            va = saa - sa * sa / n
            vb = sbb - sb * sb / n
            if va <= 1e-14 * saa or vb <= 1e-14 * sbb or va <= 0 or vb <= 0:
                flags.append(f"lag {s} px: rho_{r.name} undefined (constant pair ends)")
            else:
                value = float(np.clip((sab - sa * sb / n) / math.sqrt(va * vb), -1.0, 1.0))
        rho[r.label] = value
    w_g, m_g, s_g = _increment_components(regions, rho, p)
    ls = LagStats(s, s * px, axis, rho, p, n_pairs, n_same, w_g, m_g, s_g, flags=flags)

    # increments sample (pairs with both ends valid)
    parts = []
    for a, b in _pair_slices((rows, cols), s, axis):
        parts.append((znan[b], znan[a]))
    total = sum(pa.size for pa, _ in parts)
    buf = work.get("d", total, np.float64)
    pos = 0
    for hi_end, lo_end in parts:
        out = buf[pos : pos + hi_end.size].reshape(hi_end.shape)
        np.subtract(hi_end, lo_end, out=out)
        pos += hi_end.size
    d = buf if all_valid else buf[np.isfinite(buf)]
    if d.size != n_pairs:  # pragma: no cover - internal consistency
        raise RuntimeError(f"pair count mismatch at lag {s}: {d.size} != {n_pairs}")
    dbin = _Binned(d, work=work)
    model = _model_cdfs(w_g, m_g, s_g)
    if model is None:
        flags.append(f"lag {s} px: increment model undefined (a weighted mode has NaN parameters)")
    else:
        ls.ks_increment = dbin.ks(*model)
        ls.l1_increment, ls.js_increment = dbin.distances(model[0])
    if histograms:
        ls.hist = dbin.histogram()
    return ls


# ============================================================================ stacks


def fit_stack(
    stack,
    labels,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
    **kwargs,
) -> list[FrameFit]:
    """Fit every frame of a stack (:func:`fit_frame` per frame).

    Parameters
    ----------
    stack : array_like
        ``(frames, rows, cols)`` heights, nm (a single 2D frame is accepted).
    labels : array_like
        Labels of the same shape.
    lags : int or sequence of int
        Lags in pixels.
    progress : callable, optional
        Called after each frame with ``{"stage": "stats", "frame": i, "done": i + 1,
        "total": n_frames}``.
    stop : callable or threading.Event, optional
        Checked before each frame; when set, the fits done so far are returned.
    **kwargs
        Passed to :func:`fit_frame` (``axis``, ``pixel_size_nm``, ``n_classes``...).

    Returns
    -------
    list of FrameFit
        One per frame fitted.
    """
    z = np.asarray(stack)
    lab = np.asarray(labels)
    if z.ndim == 2:
        z, lab = z[None], lab[None] if lab.ndim == 2 else lab
    if z.ndim != 3:
        raise StatsError(f"stack must be (frames, rows, cols), got shape {z.shape}")
    if lab.shape != z.shape:
        raise StatsError(f"labels shape {lab.shape} does not match the stack shape {z.shape}")
    fits = []
    work = _Workspace()  # scratch arrays shared by the frames
    for i in range(z.shape[0]):
        if _stopped(stop):
            break
        fits.append(fit_frame(z[i], lab[i], lags, _workspace=work, **kwargs))
        if progress is not None:
            progress({"stage": "stats", "frame": i, "done": i + 1, "total": z.shape[0]})
    return fits


def fits_to_rows(
    fits: Iterable[FrameFit], times_s: Sequence[float] | None = None
) -> list[dict[str, Any]]:
    """Table rows of several frames (:meth:`FrameFit.to_rows` with frame index and time).

    Parameters
    ----------
    fits : iterable of FrameFit
        Frame fits, in frame order (frame index = position).
    times_s : sequence of float, optional
        Acquisition time of each frame, s (NaN when omitted).
    """
    rows: list[dict[str, Any]] = []
    for i, fit in enumerate(fits):
        t = float(times_s[i]) if times_s is not None else math.nan
        rows.extend(fit.to_rows(frame=i, time_s=t))
    return rows
