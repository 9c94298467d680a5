"""Fit a GSG model to any 2-D field: heights, local dissolution rates, by region or whole.

:func:`fit_gsg_field` fits one GSG (``Y = mu + U^(1/2) G``, science notes) to the valid
values of a field (NaN and masked-out pixels ignored) and their increments at a few
lags; :func:`fit_gsg_regions` does it per label value. They are what the kinetics code
calls on the local dissolution-rate maps (Siena et al. 2021 treat those rates as a GSG
field), and they use the same estimators as the frame fit (:mod:`.gsg_estimate`).

Examples
--------
>>> from napari_calcite_afm.stats import simulate_gsg_field
>>> rates = simulate_gsg_field((128, 128), 1.5, 0.01, 4.0, mu=0.02, seed=7)  # nm/s
>>> p = fit_gsg_field(rates, lags=(1, 2))
>>> round(p.mu, 3), bool(abs(p.alpha - 1.5) < 0.3), bool(p.ks_height < 0.05)
(0.02, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..checks import holds_numbers
from ..errors import StatsError
from ._checks import _check_axis, _check_lags
from .goodness import ks_distance
from .gsg_estimate import _estimate, _field_samples
from .gsg_frame import _tabulated_cdf
from .gsg_results import GSG_METHODS, GSGParams
from .sample import _pair_slices

__all__ = ["fit_gsg_field", "fit_gsg_regions"]


def _check_field(values, what: str = "values") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise StatsError(f"{what} must be one 2-D field (rows, cols), got shape {arr.shape}")
    if not holds_numbers(arr):
        raise StatsError(f"{what} must be numbers, got dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64)


def _check_options(method: str, min_pixels) -> int:
    if method not in GSG_METHODS:
        raise StatsError(f"method must be one of {GSG_METHODS}, got {method!r}")
    if isinstance(min_pixels, bool) or int(min_pixels) != min_pixels or min_pixels < 1:
        raise StatsError(f"min_pixels must be a positive integer, got {min_pixels!r}")
    return int(min_pixels)


def _goodness(p: GSGParams, values: np.ndarray, valid: np.ndarray, axis: str) -> None:
    """Fill ``p.ks_height`` and ``p.ks_increment`` (same-region increments by lag)."""
    if not p.defined:
        return
    v = values[valid]
    p.ks_height = _ks(v, p.height_components())
    for s in p.rho:
        parts = [(values[b] - values[a])[valid[a] & valid[b]]
                 for a, b in _pair_slices(values.shape, s, axis)]  # fmt: skip
        d = np.concatenate(parts) if parts else np.empty(0)
        p.ks_increment[s] = _ks(d, p.increment_components(s))


def _ks(x: np.ndarray, comps) -> float:
    """Exact KS distance of a sample to a mixture (NaN when empty or undefined)."""
    if x.size == 0:
        return math.nan
    cdf = _tabulated_cdf(*comps, float(x.min()), float(x.max()))
    return ks_distance(x, cdf) if cdf is not None else math.nan


def _fit_one(values, valid, lags, axis, method, steps, min_pixels, goodness) -> GSGParams:
    h, samples = _field_samples(values, valid, lags, axis, step=steps)
    p = _estimate(h, samples, method, steps=steps, min_pixels=min_pixels)
    if goodness:
        _goodness(p, values, valid, axis)
    return p


def fit_gsg_field(
    values,
    mask=None,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    axis: str = "both",
    method: str = "ml",
    steps: bool = False,
    min_pixels: int = 10,
    goodness: bool = True,
) -> GSGParams:
    """Fit one generalized sub-Gaussian model to a 2-D field.

    Parameters
    ----------
    values : array_like
        ``(rows, cols)`` field (heights in nm, rates in nm/s...); NaN pixels are ignored.
    mask : array_like of bool, optional
        Pixels to use (default: every finite pixel).
    lags : int or sequence of int
        Lags ``s`` in pixels at which ``rho(s)`` is estimated (pairs along ``axis``).
    axis : {"both", "x", "y"}
        Direction of the pairs (``"both"`` pools x and y).
    method : {"ml", "moments"}
        Maximum likelihood (default; the more accurate, docs/statistics.md "GSG") or the
        method of moments.
    steps : bool
        Model step crossings (a second peak of the increments at a step height) as a
        third kind of pair (``"ml"`` only); off for fields without steps.
    min_pixels : int
        Fewer valid values (or pairs at a lag) give NaN parameters and a flag.
    goodness : bool
        Also compute the KS distances of the values and of the increments.

    Returns
    -------
    GSGParams
        ``alpha``, ``sigma`` (of ``G``, units of the values), ``mu``, ``rho`` by lag and
        the flags; NaN with a flag for degenerate input (too few values, zero variance,
        kurtosis below 3 everywhere), never an exception.

    Raises
    ------
    StatsError
        For a field that is not 2-D numbers, a mask of another shape, bad lags, axis,
        method or min_pixels.

    Examples
    --------
    >>> from napari_calcite_afm.stats import simulate_gsg_field
    >>> y = simulate_gsg_field((128, 128), 1.3, 2.0, 3.0, seed=1)
    >>> p = fit_gsg_field(y, lags=(1, 4))
    >>> bool(abs(p.alpha - 1.3) < 0.3), bool(abs(p.sigma / 2.0 - 1) < 0.2), sorted(p.rho)
    (True, True, [1, 4])
    >>> fit_gsg_field(np.ones((32, 32))).flags
    ['GSG undefined: zero variance']
    """
    z = _check_field(values)
    valid = np.isfinite(z)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != z.shape:
            raise StatsError(f"mask shape {m.shape} does not match the field shape {z.shape}")
        valid &= m.astype(bool)
    lag_list = _check_lags(lags)
    _check_axis(axis)
    min_pixels = _check_options(method, min_pixels)
    return _fit_one(z, valid, lag_list, axis, method, steps, min_pixels, goodness)


def fit_gsg_regions(
    values,
    labels,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    axis: str = "both",
    method: str = "ml",
    steps: bool = False,
    min_pixels: int = 10,
    goodness: bool = True,
) -> dict[int, GSGParams]:
    """Fit a GSG model to each region of a field (:func:`fit_gsg_field` per label).

    Parameters
    ----------
    values : array_like
        ``(rows, cols)`` field; NaN pixels are ignored.
    labels : array_like of int
        ``(rows, cols)`` region labels; 0 is ignored, every other value is a region
        (1 multilayer pit, 2 terrace, 3 monolayer pit in this package). Pairs count
        when both ends lie in the region.
    lags, axis, method, steps, min_pixels, goodness
        As in :func:`fit_gsg_field`.

    Returns
    -------
    dict of int to GSGParams
        One fit per label value present (``label`` set), in increasing label order.

    Examples
    --------
    >>> from napari_calcite_afm.stats import simulate_gsg_field
    >>> labels = np.repeat([[1, 2]], 64, axis=0).repeat(32, axis=1)
    >>> y = np.where(labels == 1, simulate_gsg_field((64, 64), 1.4, 1.0, 2.0, seed=2),
    ...              simulate_gsg_field((64, 64), 2.0, 0.5, 2.0, seed=3))
    >>> fits = fit_gsg_regions(y, labels, lags=(1,))
    >>> sorted(fits), fits[1].label
    ([1, 2], 1)
    """
    z = _check_field(values)
    lab = np.asarray(labels)
    if lab.shape != z.shape:
        raise StatsError(f"labels shape {lab.shape} does not match the field shape {z.shape}")
    if not np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool:
        raise StatsError(f"labels must be whole numbers, got dtype {lab.dtype}")
    lag_list = _check_lags(lags)
    _check_axis(axis)
    min_pixels = _check_options(method, min_pixels)
    finite = np.isfinite(z)
    out = {}
    for value in np.unique(lab[lab > 0]):
        p = _fit_one(z, finite & (lab == value), lag_list, axis, method, steps, min_pixels,
                     goodness)  # fmt: skip
        p.label = int(value)
        out[int(value)] = p
    return out
