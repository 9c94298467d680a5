"""Results of the statistics: region parameters, lag statistics, histograms, fits.

Plain dataclasses, filled by :func:`~napari_calcite_afm.stats.fit_frame` and
:func:`~napari_calcite_afm.stats.em_gaussian_mixture`; each has ``to_dict()`` (JSON-safe,
NaN kept as float NaN), and :meth:`FrameFit.to_rows` / :func:`fits_to_rows` give the
table whose columns :func:`row_columns` lists. Heights and lengths are in nm, lags in
pixels.

Examples
--------
>>> r = RegionParams(label=1, name="A", weight=0.25, mu=-3.0, sigma=0.5, n_pixels=100)
>>> r.to_dict()["mu"]
-3.0
>>> row_columns()[:5]
['frame', 'time_s', 'lag_px', 'lag_nm', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StatsError
from ._checks import _check_n_classes

if TYPE_CHECKING:  # pragma: no cover - only for the annotations
    from .gsg_results import GSGFit

#: Region name of each label value (1 multilayer pit, 2 terrace, 3 monolayer etch pit).
REGION_NAMES: dict[int, str] = {1: "A", 2: "B", 3: "M"}


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
        from .mixtures import mixture_pdf  # (mixtures imports this module)

        return mixture_pdf(z, self.weights, self.means, self.sigmas)

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """Mixture CDF at ``z`` (nm)."""
        from .mixtures import mixture_cdf  # (mixtures imports this module)

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
    gsg : GSGFit or None
        The multimodal GSG model (``fit_frame(..., increment_model="gsg")``), else None.
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
    gsg: GSGFit | None = None

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
        return _find_lag(self.lags, lag_px)

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
            Keys exactly :func:`row_columns` ``(n_classes, increment_model)``, in that
            order (``increment_model="gsg"`` when the fit has a GSG part). ``flags``
            joins the frame's and the lag's flags with ``";"``.
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
            if self.gsg is not None:
                from .gsg_results import gsg_row

                row.update(gsg_row(self.gsg, names, ls, row["ks_increment"]))
                flags += list(self.gsg.flags)
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
        if self.gsg is not None:
            out["gsg"] = self.gsg.to_dict()
        if include_histograms and self.height_hist is not None:
            out["height_hist"] = self.height_hist.to_dict()
        return out


def _find_lag(lags: list, lag_px: int):
    """The item of ``lags`` (objects with ``lag_px``) fitted at ``lag_px``, pixels."""
    for ls in lags:
        if ls.lag_px == lag_px:
            return ls
    raise StatsError(f"lag {lag_px} px was not fitted (lags: {[s.lag_px for s in lags]})")


def row_columns(n_classes: int = 2, increment_model: str = "gaussian") -> list[str]:
    """Column names of :meth:`FrameFit.to_rows`, in order.

    The first thirteen are the study's table: ``frame, time_s, lag_px, lag_nm, c, mu_A,
    sigma_A, rho_A, mu_B, sigma_B, rho_B, ks_height, ks_increment``; with three classes
    ``c_M, mu_M, sigma_M, rho_M`` follow; then the extras. With ``increment_model="gsg"``
    the GSG columns (:func:`~.gsg_results.gsg_columns`) come before ``flags``, the last.

    Examples
    --------
    >>> row_columns()[:5]
    ['frame', 'time_s', 'lag_px', 'lag_nm', 'c']
    >>> "c_M" in row_columns(3), "c_M" in row_columns(2)
    (True, False)
    >>> [c for c in row_columns(2, "gsg") if c.startswith("gsg_alpha")]
    ['gsg_alpha_A', 'gsg_alpha_B']
    """
    _check_n_classes(n_classes)
    if increment_model not in ("gaussian", "gsg"):
        raise StatsError(f"increment_model must be 'gaussian' or 'gsg', got {increment_model!r}")
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
    cols += ["em_ks_height", "em_l1_height", "em_js_height", "em_loglik"]
    if increment_model == "gsg":
        from .gsg_results import gsg_columns

        cols += gsg_columns(n_classes)
    return [*cols, "flags"]


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

    Returns
    -------
    list of dict
        One row per frame and lag, keys :func:`row_columns`.

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> rng = np.random.default_rng(0)
    >>> labels = np.where(rng.random((32, 32)) < 0.3, 1, 2)
    >>> fits = [fit_frame(rng.normal(size=(32, 32)), labels, (1, 2)) for _ in range(2)]
    >>> rows = fits_to_rows(fits, times_s=[0.0, 300.0])
    >>> [(r["frame"], r["time_s"], r["lag_px"]) for r in rows]
    [(0, 0.0, 1), (0, 0.0, 2), (1, 300.0, 1), (1, 300.0, 2)]
    """
    rows: list[dict[str, Any]] = []
    for i, fit in enumerate(fits):
        t = float(times_s[i]) if times_s is not None else math.nan
        rows.extend(fit.to_rows(frame=i, time_s=t))
    return rows
