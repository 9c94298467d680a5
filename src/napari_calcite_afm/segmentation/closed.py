"""Pits are closed depressions: labels that a network gave to open ground go to terrace.

A multilayer pit (label 1) and a monolayer etch pit (label 3) are, by definition, closed
depressions: the terrace around them stands higher on every side (a monolayer pit by one
0.31 nm step, a multilayer pit by more). A network trained on one generator's frames
also calls pit things that are not: the foot of a step on a vicinal staircase (higher on
one side, lower on the other), a broad hollow of stepped terrace. Those fail a simple
test that holds on any surface, whoever made it: look at the ring of pixels just outside
the labelled region, and ask whether most of it stands clearly above the region.

:func:`remove_open_pits` relabels as terrace (2) every connected region of a pit class
whose ring (``ring_px`` pixels wide, outside the region, recorded pixels only, and for
monolayer pits not counting multilayer-pit pixels) is higher than the region's median
height by half a step on less than ``min_fraction`` (60 %) of its pixels. The
networks' probabilities are not changed: the labels are.

Measured on development frames of three generators (docs/segmentation.md, "Closed
depressions"): it removes most of the three-class model's false pits on stepped terrace
of other generators and keeps almost all true ones.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from ..errors import CalciteAFMError
from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from ..surface import CALCITE_STEP_NM

__all__ = ["CLOSED_DEPTH_STEPS", "STEP_NM", "remove_open_pits", "ring_fractions"]

#: Height of one calcite {10-14} step, nm.
STEP_NM = CALCITE_STEP_NM
#: How far (in steps) the ring must stand above a region of each pit class.
CLOSED_DEPTH_STEPS: dict[int, float] = {LABEL_MULTILAYER: 0.5, LABEL_MONOLAYER: 0.5}


def ring_fractions(
    mask: np.ndarray,
    heights: np.ndarray,
    depth_nm: float,
    ring_px: int = 3,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each connected region of ``mask``: the fraction of its ring above its median.

    Parameters
    ----------
    mask : numpy.ndarray
        bool ``(rows, cols)``: the pixels of one class.
    heights : numpy.ndarray
        Levelled heights, nm, same shape; NaN = not recorded.
    depth_nm : float
        A ring pixel counts as above when it is higher than the region's median height
        by more than this, nm.
    ring_px : int
        Width of the ring, pixels (each ring pixel belongs to the nearest region).
    exclude : numpy.ndarray, optional
        bool, same shape: pixels that are not part of any ring.

    Returns
    -------
    regions : numpy.ndarray
        int32 region ids ``(rows, cols)`` (0 outside ``mask``), from
        :func:`scipy.ndimage.label` (4-connected).
    fractions : numpy.ndarray
        float ``(n_regions,)``: the fraction of ring pixels above; 1 for a region with no
        ring pixel (it fills the recorded frame: nothing says it is open).

    Examples
    --------
    A closed pit, and a terrace of a staircase (one step down from the left, one step
    up from the right): only the pit's ring stands above it all round.

    >>> z = np.zeros((20, 24))
    >>> z[5:9, 1:5] = -0.31                      # a closed monolayer pit
    >>> z[:, 12:16], z[:, 16:] = -0.31, -0.62    # a staircase descending to the right
    >>> mask = np.zeros(z.shape, bool)
    >>> mask[5:9, 1:5] = mask[:, 12:16] = True
    >>> regions, frac = ring_fractions(mask, z, depth_nm=0.155)
    >>> [round(float(f), 2) for f in frac]  # region 1 is the staircase (row-major order)
    [0.5, 1.0]
    """
    mask = np.asarray(mask, bool)
    regions, n = ndimage.label(mask)
    if n == 0:
        return regions.astype(np.int32), np.zeros(0)
    z = np.asarray(heights, np.float64)
    finite = np.isfinite(z)
    # each ring pixel goes to a region within ring_px (the highest id where two reach)
    disk = np.hypot(*np.mgrid[-ring_px : ring_px + 1, -ring_px : ring_px + 1]) <= ring_px
    owner = ndimage.grey_dilation(regions, footprint=disk, mode="constant", cval=0)
    ring = (owner > 0) & ~mask & finite
    if exclude is not None:
        ring &= ~np.asarray(exclude, bool)
    inside = _region_medians(regions, z, finite, n)
    who = owner[ring]
    above = z[ring] > inside[who] + depth_nm
    n_ring = np.bincount(who, minlength=n + 1)[1:]
    n_above = np.bincount(who, weights=above, minlength=n + 1)[1:]
    frac = np.ones(n)
    has = (n_ring > 0) & np.isfinite(inside[1:])
    frac[has] = n_above[has] / n_ring[has]
    return regions.astype(np.int32), frac


def _region_medians(regions: np.ndarray, z: np.ndarray, finite: np.ndarray, n: int):
    """The (lower) median height of each region's recorded pixels, ``(n + 1,)``; index
    0 and regions with no recorded pixel get +inf."""
    flat = np.flatnonzero((regions > 0) & finite)
    r, v = regions.ravel()[flat], z.ravel()[flat]
    order = np.lexsort((v, r))
    r, v = r[order], v[order]
    count = np.bincount(r, minlength=n + 1)
    start = np.cumsum(count) - count
    out = np.full(n + 1, np.inf)
    has = count > 0
    has[0] = False
    out[has] = v[start[has] + (count[has] - 1) // 2]
    return out


def remove_open_pits(
    labels: np.ndarray,
    heights: np.ndarray,
    *,
    step_nm: float = STEP_NM,
    ring_px: int = 3,
    min_fraction: float = 0.6,
    depth_steps: Mapping[int, float] | None = None,
) -> np.ndarray:
    """Labels with every pit region that is not a closed depression set to terrace.

    Parameters
    ----------
    labels : numpy.ndarray
        uint8 ``(rows, cols)``: 0 not recorded, 1 multilayer pit, 2 terrace, 3 monolayer
        pit.
    heights : numpy.ndarray
        The frame's levelled heights, nm, same shape (the model's levelling).
    step_nm : float
        Height of one step, nm (calcite: 0.31).
    ring_px : int
        Width of the ring around each region, pixels.
    min_fraction : float
        A region is kept when at least this fraction of its ring stands above it.
    depth_steps : mapping, optional
        Label to the height (in steps) by which a ring pixel must stand above the
        region's median; default :data:`CLOSED_DEPTH_STEPS` (half a step for both pit
        classes: whether a depression is one layer deep or several is the network's
        call; a full step for multilayer pits also removed young pits whose terraced
        walls hold most of their area). Labels not in it are left alone.

    Returns
    -------
    numpy.ndarray
        A new uint8 array.

    Examples
    --------
    >>> z = np.zeros((20, 24))
    >>> z[5:9, 4:8] = -0.31
    >>> z[:, 12:16], z[:, 16:] = -0.31, -0.62
    >>> labels = np.full(z.shape, 2, np.uint8)
    >>> labels[5:9, 4:8] = labels[:, 12:16] = 3  # a network called both monolayer pit
    >>> out = remove_open_pits(labels, z)
    >>> int(out[6, 6]), int(out[6, 13])   # the closed pit stays, the open terrace goes
    (3, 2)
    """
    labels = np.asarray(labels)
    z = np.asarray(heights)
    if labels.shape != z.shape:
        raise CalciteAFMError(f"labels {labels.shape} and heights {z.shape} differ in shape")
    out = labels.astype(np.uint8, copy=True)
    steps = CLOSED_DEPTH_STEPS if depth_steps is None else depth_steps
    # monolayer pits first, with multilayer pits left out of their rings: a monolayer pit
    # on the rim of a multilayer pit is not open because the deep pit is beside it
    for cls in sorted(steps, reverse=True):
        mask = out == cls
        if not mask.any():
            continue
        exclude = (out == LABEL_MULTILAYER) if cls != LABEL_MULTILAYER else None
        regions, frac = ring_fractions(mask, z, steps[cls] * step_nm, ring_px, exclude)
        open_ids = np.flatnonzero(frac < min_fraction) + 1
        if open_ids.size:
            out[np.isin(regions, open_ids)] = LABEL_TERRACE
    return out
