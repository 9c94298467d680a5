"""The green-magenta high-contrast colormap and robust display limits.

Plain numpy (and matplotlib on request): the napari layer turns these colours into a
``napari.utils.Colormap``. Low heights (pits) are green, high ones (terraces) magenta,
with a light middle so that monolayer steps (0.31 nm) stay visible. Green and magenta
remain distinguishable for the common forms of colour blindness.
"""

from __future__ import annotations

import numpy as np

from .labels import LABEL_COLORS, LABEL_NAMES  # re-exported for old imports

__all__ = [
    "GREEN_MAGENTA_CONTROL_POINTS",
    "COLORMAP_NAME",
    "green_magenta",
    "matplotlib_green_magenta",
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


def robust_contrast_limits(
    data: np.ndarray, low: float = 0.5, high: float = 99.5, max_samples: int = 1_000_000
) -> tuple[float, float]:
    """Display limits from percentiles of the finite values, robust to scars and spikes.

    Parameters
    ----------
    data : numpy.ndarray
        Heights (nm), any shape; NaN and inf are ignored.
    low, high : float
        Percentiles (0-100) used as the lower and upper limit.
    max_samples : int
        At most this many evenly strided values are used, so big stacks stay fast.

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
    """
    flat = np.asarray(data).ravel()
    step = max(1, flat.size // max_samples)
    sample = flat[::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        return float(lo) - 0.5, float(lo) + 0.5
    return float(lo), float(hi)
