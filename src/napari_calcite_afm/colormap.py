"""The green-magenta high-contrast colormap and robust display limits.

Plain numpy (and matplotlib on request): the napari layer turns these colours into a
``napari.utils.Colormap``. Low heights (pits) are green, high ones (terraces) magenta,
with a light middle so that monolayer steps (0.31 nm) stay visible. Green and magenta
remain distinguishable for the common forms of colour blindness.
"""

from __future__ import annotations

import warnings

import numpy as np

from .labels import LABEL_COLORS, LABEL_NAMES  # re-exported for old imports

__all__ = [
    "GREEN_MAGENTA_CONTROL_POINTS",
    "COLORMAP_NAME",
    "green_magenta",
    "matplotlib_green_magenta",
    "outlier_rows",
    "robust_contrast_limits",
    "LABEL_NAMES",
    "LABEL_COLORS",
]

COLORMAP_NAME = "calcite green-magenta"

#: RGB control points from the lowest to the highest height.
GREEN_MAGENTA_CONTROL_POINTS: np.ndarray = np.array(
    [
        [0.00, 0.16, 0.05],
        [0.05, 0.55, 0.15],
        [0.55, 0.90, 0.45],
        [0.97, 0.97, 0.97],
        [0.95, 0.50, 0.90],
        [0.70, 0.05, 0.65],
        [0.25, 0.00, 0.25],
    ]
)


def green_magenta(n: int = 256) -> np.ndarray:
    """Return the green-magenta colormap as an ``(n, 4)`` RGBA array.

    Parameters
    ----------
    n : int
        Number of colours (at least 2).

    Returns
    -------
    numpy.ndarray
        Float array of shape ``(n, 4)`` with values in [0, 1]; alpha is 1.

    Examples
    --------
    >>> lut = green_magenta(5)
    >>> lut.shape
    (5, 4)
    """
    if n < 2:
        raise ValueError(f"a colormap needs at least 2 colours, got {n}")
    pts = GREEN_MAGENTA_CONTROL_POINTS
    x = np.linspace(0.0, 1.0, len(pts))
    t = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.interp(t, x, pts[:, k]) for k in range(3)], axis=1)
    return np.concatenate([rgb, np.ones((n, 1))], axis=1)


def matplotlib_green_magenta():
    """Return the colormap as a :class:`matplotlib.colors.ListedColormap`.

    Returns
    -------
    matplotlib.colors.ListedColormap
        256 colours of :func:`green_magenta`, named :data:`COLORMAP_NAME`.

    Examples
    --------
    >>> cmap = matplotlib_green_magenta()
    >>> cmap.name, cmap.N
    ('calcite green-magenta', 256)
    """
    from matplotlib.colors import ListedColormap

    return ListedColormap(green_magenta(256), name=COLORMAP_NAME)


def outlier_rows(rows: np.ndarray, window: int = 15, factor: float = 10.0) -> np.ndarray:
    """Scan lines whose median height stands far out from their neighbours.

    A scan line (row) is an outlier when its median differs from the running median of
    the row medians (``window`` rows) by more than ``factor`` robust standard
    deviations of those differences, and by more than twice the interquartile range of
    all heights: the settling lines at the start of a scan (often 100 nm off) or a
    line where the tip lost contact. Pits and steps, which span many rows, are not.

    Parameters
    ----------
    rows : numpy.ndarray
        ``(n_rows, cols)`` heights (nm); the rows of several frames may be stacked.
    window : int
        Rows of the running median (odd; shortened for short images).
    factor : float
        Threshold in robust standard deviations (1.4826 x MAD) of the row differences.

    Returns
    -------
    numpy.ndarray
        Boolean ``(n_rows,)``, True for an outlier row.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(0.0, 1.0, (64, 64))
    >>> z[:2] -= 140.0                      # two settling lines, 140 nm low
    >>> np.flatnonzero(outlier_rows(z)).tolist()
    [0, 1]
    """
    from scipy.ndimage import median_filter

    rows = np.asarray(rows, dtype=np.float64)
    n = rows.shape[0]
    if rows.ndim != 2 or n < 5:
        return np.zeros(n, dtype=bool)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        medians = np.nanmedian(rows, axis=1)
        finite = rows[np.isfinite(rows)]
    if finite.size == 0:
        return np.zeros(n, dtype=bool)
    medians = np.where(np.isfinite(medians), medians, np.median(medians[np.isfinite(medians)]))
    size = min(int(window), n if n % 2 else n - 1)
    diff = medians - median_filter(medians, size=size, mode="reflect")
    spread = 1.4826 * np.median(np.abs(diff - np.median(diff)))
    q25, q75 = np.percentile(finite, [25, 75])
    return np.abs(diff) > max(factor * spread, 2.0 * (q75 - q25))


def robust_contrast_limits(
    data: np.ndarray, low: float = 0.5, high: float = 99.5, max_samples: int = 1_000_000
) -> tuple[float, float]:
    """Display limits from percentiles of the finite values, robust to scars and spikes.

    Whole scan lines that stand far out from their neighbours (see
    :func:`outlier_rows`: the settling lines at the top of a scan, a line where the
    tip lost contact) are left out before the percentiles are taken, so that a few
    lines 140 nm off do not squeeze the surface into one colour.

    Parameters
    ----------
    data : numpy.ndarray
        Heights (nm), any shape (the last axis is the scan line); NaN and inf are
        ignored.
    low, high : float
        Percentiles (0-100) used as the lower and upper limit.
    max_samples : int
        At most about this many values (whole, evenly spaced rows) are used, so big
        stacks stay fast.

    Returns
    -------
    tuple of float
        ``(lower, upper)`` in the units of ``data``; ``(0, 1)`` when no value is finite
        and a small symmetric interval when the data are constant.

    Examples
    --------
    >>> z = np.zeros((64, 64)); z[0, 0] = 1e6   # one spike
    >>> robust_contrast_limits(z)[1] < 1
    True
    >>> z = np.random.default_rng(1).normal(0.0, 2.0, (128, 128))
    >>> z[:3] -= 140.0                          # three settling lines (2.3 % of the pixels)
    >>> lo, hi = robust_contrast_limits(z)
    >>> -10 < lo < -4 and 4 < hi < 10
    True
    """
    arr = np.asarray(data)
    if arr.ndim >= 2 and arr.size:
        rows = arr.reshape(-1, arr.shape[-1])
        rows = rows[:: max(1, rows.size // max_samples)]
        sample = rows[~outlier_rows(rows)].ravel()
    else:
        flat = arr.ravel()
        sample = flat[:: max(1, flat.size // max_samples)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        return float(lo) - 0.5, float(lo) + 0.5
    return float(lo), float(hi)
