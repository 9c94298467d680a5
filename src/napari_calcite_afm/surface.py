"""Per-frame surface measures over a time series: pits and retreat.

Plain numpy/scipy. Used by :mod:`napari_calcite_afm.pipeline` for the columns
``pit_count``, ``mean_pit_area_nm2`` and ``retreat_nm_per_min`` of the results table.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["CALCITE_STEP_NM", "pit_measures", "vertical_offset", "mean_retreat_nm"]

#: Height of one calcite {10-14} monolayer step, nm (docs/science.md): what the analysis
#: reads a step as (the synthetic generators keep their own setting).
CALCITE_STEP_NM = 0.31


def pit_measures(
    labels: np.ndarray, pixel_size_nm: float, pit_label: int = 1, min_area_px: int = 4
) -> tuple[int, float]:
    """Count the pits of one class and their mean area.

    Pits are the 8-connected components of ``labels == pit_label``; components smaller
    than ``min_area_px`` pixels (isolated misclassified pixels) are not counted.

    Parameters
    ----------
    labels : numpy.ndarray
        One frame of labels ``(rows, cols)``; 1 multilayer pit, 2 terrace, 3 monolayer pit.
    pixel_size_nm : float
        Pixel size in nm.
    pit_label : int
        The label value whose components are counted (1: multilayer pits).
    min_area_px : int
        Smallest component counted, in pixels.

    Returns
    -------
    count : int
        Number of pits.
    mean_area_nm2 : float
        Mean pit area in nm^2 (NaN when there is no pit).

    Examples
    --------
    >>> lab = np.full((20, 20), 2, np.uint8); lab[2:6, 2:6] = 1; lab[10:15, 10:15] = 1
    >>> pit_measures(lab, pixel_size_nm=10.0)
    (2, 2050.0)
    """
    mask = np.asarray(labels) == pit_label
    components, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return 0, float("nan")
    areas = np.bincount(components.ravel())[1:]
    areas = areas[areas >= min_area_px]
    if areas.size == 0:
        return 0, float("nan")
    return int(areas.size), float(areas.mean() * pixel_size_nm**2)


def vertical_offset(previous: np.ndarray, current: np.ndarray, bin_nm: float = 0.02) -> float:
    """Height offset between two registered frames, from the pixels that did not change.

    In five minutes most of a calcite surface does not change height: a pixel drops by
    a step (0.31 nm) only when a step sweeps over it. The mode of ``current - previous``
    is therefore the instrument's vertical offset between the two frames (levelling
    removes each frame's own mean and plane, so absolute heights are not comparable).

    Parameters
    ----------
    previous, current : numpy.ndarray
        Registered frames ``(rows, cols)`` in nm; NaN pixels are ignored.
    bin_nm : float
        Histogram bin width for the mode, in nm.

    Returns
    -------
    float
        The offset in nm (NaN when fewer than 100 pixels are valid in both frames).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = rng.normal(0, 0.02, (64, 64))
    >>> b = a + 2.5; b[:8] -= 0.31    # offset, and one layer lost on an eighth
    >>> round(vertical_offset(a, b), 2)
    2.5
    """
    d = np.asarray(current, np.float64) - np.asarray(previous, np.float64)
    d = d[np.isfinite(d)]
    if d.size < 100:
        return float("nan")
    return _histogram_mode(d, bin_nm)


def _histogram_mode(d: np.ndarray, bin_nm: float) -> float:
    """Densest value of the finite values ``d`` (nm): the peak of a ``bin_nm`` histogram
    over +-4 robust spreads of the median, lightly smoothed, refined by the median of
    the values within 3 bins of it."""
    med = float(np.median(d))
    spread = float(np.median(np.abs(d - med))) * 1.4826 + 2 * bin_nm
    half = min(max(4 * spread, 10 * bin_nm), 50.0)
    nbins = max(int(2 * half / bin_nm), 10)
    hist, edges = np.histogram(d, bins=nbins, range=(med - half, med + half))
    hist = ndimage.uniform_filter1d(hist.astype(float), 3)
    k = int(np.argmax(hist))
    mode = 0.5 * (edges[k] + edges[k + 1])
    near = d[np.abs(d - mode) <= 3 * bin_nm]
    return float(np.median(near)) if near.size else float(mode)


def mean_retreat_nm(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean surface retreat from ``previous`` to ``current``, in nm (positive = dissolved).

    The two frames are first put on a common vertical reference with
    :func:`vertical_offset` (the mode of their difference); the retreat is then the
    mean lowering ``previous - current`` over the pixels valid in both.

    Parameters
    ----------
    previous, current : numpy.ndarray
        Registered, levelled frames ``(rows, cols)`` in nm.

    Returns
    -------
    float
        Mean retreat in nm (NaN when the frames share too few valid pixels).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0, 0.05, (64, 64)); b = a + 3.0   # offset only
    >>> b[:16] -= 0.31                                   # a quarter lost one layer
    >>> round(mean_retreat_nm(a, b), 3)
    0.078
    """
    offset = vertical_offset(previous, current)
    if not np.isfinite(offset):
        return float("nan")
    d = np.asarray(previous, np.float64) - (np.asarray(current, np.float64) - offset)
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("nan")
