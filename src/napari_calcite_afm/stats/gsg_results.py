"""Results of the GSG fits: one field or region (:class:`GSGParams`), one frame (:class:`GSGFit`).

Plain dataclasses with ``to_dict()`` (JSON-safe, NaN kept as float NaN). A
:class:`GSGParams` also evaluates its own densities (heights and increments at a fitted
lag, step crossings included); a :class:`GSGFit` holds the multimodal GSG model of a
frame as mixture components, like the Gaussian :class:`~.results.LagStats`.

Examples
--------
>>> p = GSGParams(alpha=2.0, sigma=1.0, mu=0.0, rho={1: 0.5})
>>> round(float(p.increment_cdf(0.0, 1)), 12), p.defined
(0.5, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import StatsError
from .gsg import gsg_height_components, gsg_increment_components
from .results import _find_lag

#: The estimators: ``"ml"`` (maximum likelihood, the default) and ``"moments"``.
GSG_METHODS = ("ml", "moments")


@dataclass
class GSGParams:
    """GSG parameters of one field or one region, fitted by :func:`fit_gsg_field` & co.

    Attributes
    ----------
    alpha : float
        Shape in (0, 2] (2: Gaussian). NaN when the fit was impossible (``flags``).
    sigma : float
        Standard deviation of the Gaussian field ``G``, in the units of the values (nm
        for heights, nm/s for rates).
    mu : float
        Mean of the values (the region's ``mu`` in a frame fit).
    rho : dict[int, float]
        Correlation ``rho(s)`` of ``G`` by lag in pixels.
    step_fraction : dict[int, float]
        By lag: the fraction ``q(s)`` of same-region pairs that cross a step (increments
        ``+-h`` plus the roughness increment); 0 without steps.
    step_height : float
        ``h``, in the units of the values; NaN without steps.
    n : int
        Values used.
    n_pairs : dict[int, int]
        Same-region pairs by lag.
    method : str
        ``"ml"`` or ``"moments"``.
    kurtosis : float
        Sample kurtosis of the values (3 for a Gaussian).
    loglik : float
        Composite binned log-likelihood at the estimate (``"ml"``; NaN otherwise).
    ks_height : float
        KS distance between the values and the fitted GSG (:func:`fit_gsg_field` only).
    ks_increment : dict[int, float]
        KS distance of the same-region increments by lag (:func:`fit_gsg_field` only).
    label, name : int, str
        Region label and name in a frame fit (0 and ``""`` for a whole field).
    flags : list of str
        Problems met, in words.
    """

    alpha: float
    sigma: float
    mu: float
    rho: dict[int, float] = field(default_factory=dict)
    step_fraction: dict[int, float] = field(default_factory=dict)
    step_height: float = math.nan
    n: int = 0
    n_pairs: dict[int, int] = field(default_factory=dict)
    method: str = "ml"
    kurtosis: float = math.nan
    loglik: float = math.nan
    ks_height: float = math.nan
    ks_increment: dict[int, float] = field(default_factory=dict)
    label: int = 0
    name: str = ""
    flags: list[str] = field(default_factory=list)

    @property
    def defined(self) -> bool:
        """Whether ``alpha`` and ``sigma`` are numbers (the fit succeeded)."""
        return math.isfinite(self.alpha) and math.isfinite(self.sigma)

    def height_components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture components of the density of the values (NaN when undefined)."""
        if not self.defined:
            return np.ones(1), np.full(1, math.nan), np.full(1, math.nan)
        return gsg_height_components(self.alpha, self.sigma, self.mu)

    def increment_components(self, lag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Components of the same-region increment density at a fitted lag (with steps)."""
        if lag not in self.rho:
            raise StatsError(f"lag {lag} px was not fitted (lags: {sorted(self.rho)})")
        r = self.rho[lag]
        if not self.defined or not math.isfinite(r):
            return np.ones(1), np.zeros(1), np.full(1, math.nan)
        w, m, s = gsg_increment_components(self.alpha, self.sigma, r)
        return _with_steps(w, m, s, self.step_fraction.get(lag, 0.0), self.step_height)

    def pdf(self, y) -> np.ndarray:
        """Density of the values at ``y`` (1 / units)."""
        from .mixtures import mixture_pdf

        return mixture_pdf(y, *self.height_components())

    def cdf(self, y) -> np.ndarray:
        """CDF of the values at ``y``."""
        from .mixtures import mixture_cdf

        return mixture_cdf(y, *self.height_components())

    def increment_pdf(self, d, lag: int) -> np.ndarray:
        """Density of same-region increments at lag ``lag`` (pixels)."""
        from .mixtures import mixture_pdf

        return mixture_pdf(d, *self.increment_components(lag))

    def increment_cdf(self, d, lag: int) -> np.ndarray:
        """CDF of same-region increments at lag ``lag`` (pixels)."""
        from .mixtures import mixture_cdf

        return mixture_cdf(d, *self.increment_components(lag))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (lags as string keys)."""
        return {
            "label": self.label,
            "name": self.name,
            "alpha": self.alpha,
            "sigma": self.sigma,
            "mu": self.mu,
            "rho": {str(k): v for k, v in self.rho.items()},
            "step_fraction": {str(k): v for k, v in self.step_fraction.items()},
            "step_height": self.step_height,
            "n": self.n,
            "n_pairs": {str(k): v for k, v in self.n_pairs.items()},
            "method": self.method,
            "kurtosis": self.kurtosis,
            "loglik": self.loglik,
            "ks_height": self.ks_height,
            "ks_increment": {str(k): v for k, v in self.ks_increment.items()},
            "flags": list(self.flags),
        }


def _with_steps(w, m, s, q: float, h: float):
    """Components ``(1 - q) g + q/2 N(+-h, tau)``, ``tau^2`` the variance of ``g``."""
    if not (q > 0.0 and math.isfinite(h)):
        return w, m, s
    tau = math.sqrt(float(np.sum(w * s * s)))
    return (
        np.concatenate(((1.0 - q) * w, [0.5 * q, 0.5 * q])),
        np.concatenate((m, [h, -h])),
        np.concatenate((s, [tau, tau])),
    )


@dataclass
class GSGLag:
    """The multimodal GSG increment model of a frame at one lag, and its goodness of fit.

    Attributes
    ----------
    lag_px : int
        Lag, pixels.
    weights, means, sigmas : numpy.ndarray
        Gaussian components of ``g_GSG(d; s)`` (nm): pair probabilities times the
        same-region GSG increment densities (with step crossings) and the cross-region
        densities.
    ks_increment, l1_increment, js_increment : float
        Goodness of fit to all the increments at this lag (as for the Gaussian model;
        the histogram is the Gaussian :class:`~.results.LagStats`'s).
    flags : list of str
        Problems met at this lag.
    """

    lag_px: int
    weights: np.ndarray
    means: np.ndarray
    sigmas: np.ndarray
    ks_increment: float = math.nan
    l1_increment: float = math.nan
    js_increment: float = math.nan
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (the components are left out: rebuild them)."""
        return {
            "lag_px": self.lag_px,
            "n_components": int(self.weights.size),
            "ks_increment": self.ks_increment,
            "l1_increment": self.l1_increment,
            "js_increment": self.js_increment,
            "flags": list(self.flags),
        }


@dataclass
class GSGFit:
    """The multimodal GSG model of one frame (``FrameFit.gsg``).

    Attributes
    ----------
    method : str
        ``"ml"`` or ``"moments"``.
    steps : bool
        Whether step crossings were a third kind of pair.
    regions : list of GSGParams
        One per class (A, B[, M]); a region whose GSG fit is undefined keeps its Gaussian
        mode in the mixture (``flags`` says so).
    lags : list of GSGLag
        One per lag.
    height_weights, height_means, height_sigmas : numpy.ndarray
        Components of the height model ``f_GSG``.
    ks_height, l1_height, js_height, loglik_height : float
        Goodness of fit of ``f_GSG`` to ``Z'``.
    flags : list of str
        Frame-level problems of the GSG fit.
    """

    method: str
    steps: bool
    regions: list[GSGParams]
    lags: list[GSGLag]
    height_weights: np.ndarray
    height_means: np.ndarray
    height_sigmas: np.ndarray
    ks_height: float = math.nan
    l1_height: float = math.nan
    js_height: float = math.nan
    loglik_height: float = math.nan
    flags: list[str] = field(default_factory=list)

    def lag(self, lag_px: int) -> GSGLag:
        """The :class:`GSGLag` of lag ``lag_px`` (pixels)."""
        return _find_lag(self.lags, lag_px)

    def height_components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means (nm) and standard deviations (nm) of ``f_GSG``."""
        return self.height_weights, self.height_means, self.height_sigmas

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return {
            "method": self.method,
            "steps": self.steps,
            "regions": [r.to_dict() for r in self.regions],
            "lags": [ls.to_dict() for ls in self.lags],
            "ks_height": self.ks_height,
            "l1_height": self.l1_height,
            "js_height": self.js_height,
            "loglik_height": self.loglik_height,
            "flags": list(self.flags),
        }


def better_model(ks_gaussian: float, ks_gsg: float) -> str:
    """``"gsg"`` or ``"gaussian"``: the smaller KS distance (``""`` when both are NaN).

    A tie goes to the Gaussian (the simpler model); a NaN loses to a number.

    Examples
    --------
    >>> better_model(0.19, 0.03), better_model(0.05, float("nan")), better_model(0.1, 0.1)
    ('gsg', 'gaussian', 'gaussian')
    """
    g_ok, s_ok = math.isfinite(ks_gaussian), math.isfinite(ks_gsg)
    if not (g_ok or s_ok):
        return ""
    if s_ok and (not g_ok or ks_gsg < ks_gaussian):
        return "gsg"
    return "gaussian"


def gsg_columns(n_classes: int = 2) -> list[str]:
    """The table columns of the GSG model, in order (``row_columns(k, "gsg")`` adds them).

    Per region ``X``: ``gsg_alpha_X``, ``gsg_sigma_X`` (nm) and ``gsg_rho_X`` (the
    correlation of ``G`` at the row's lag) first, for A, B (and M); then
    ``ks_height_gsg``, ``ks_increment_gsg`` and ``better_increment_model`` (``"gsg"`` or
    ``"gaussian"``: the smaller increment KS at this lag); then the step crossings
    (``gsg_step_fraction_X`` at this lag, ``gsg_step_height_X`` in nm), the other
    distances and ``gsg_method``.

    Examples
    --------
    >>> gsg_columns()[:6]
    ['gsg_alpha_A', 'gsg_sigma_A', 'gsg_rho_A', 'gsg_alpha_B', 'gsg_sigma_B', 'gsg_rho_B']
    >>> "gsg_alpha_M" in gsg_columns(3)
    True
    """
    names = ["A", "B", "M"][:n_classes]
    cols = [f"gsg_{p}_{x}" for x in names for p in ("alpha", "sigma", "rho")]
    cols += ["ks_height_gsg", "ks_increment_gsg", "better_increment_model"]
    cols += [f"gsg_step_{p}_{x}" for x in names for p in ("fraction", "height")]
    cols += ["l1_height_gsg", "l1_increment_gsg", "js_height_gsg", "js_increment_gsg"]
    cols += ["loglik_height_gsg", "gsg_method"]
    return cols


def gsg_row(gsg: GSGFit, names: list[str], lag, ks_gaussian: float) -> dict[str, Any]:
    """The GSG columns of one table row (``lag`` a :class:`~.results.LagStats` or None)."""
    s = lag.lag_px if lag is not None else None
    row: dict[str, Any] = {}
    for x, p in zip(names, gsg.regions):
        row[f"gsg_alpha_{x}"] = p.alpha
        row[f"gsg_sigma_{x}"] = p.sigma
        row[f"gsg_rho_{x}"] = p.rho.get(s, math.nan) if s is not None else math.nan
    g = gsg.lag(s) if s is not None else None
    ks = g.ks_increment if g is not None else math.nan
    row["ks_height_gsg"] = gsg.ks_height
    row["ks_increment_gsg"] = ks
    row["better_increment_model"] = better_model(ks_gaussian, ks)
    for x, p in zip(names, gsg.regions):
        row[f"gsg_step_fraction_{x}"] = p.step_fraction.get(s, math.nan) if g else math.nan
        row[f"gsg_step_height_{x}"] = p.step_height
    row["l1_height_gsg"] = gsg.l1_height
    row["l1_increment_gsg"] = g.l1_increment if g is not None else math.nan
    row["js_height_gsg"] = gsg.js_height
    row["js_increment_gsg"] = g.js_increment if g is not None else math.nan
    row["loglik_height_gsg"] = gsg.loglik_height
    row["gsg_method"] = gsg.method
    return row
