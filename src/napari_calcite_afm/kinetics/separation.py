"""Touching multilayer pits kept apart: a watershed of the heights from their sources.

Multilayer (dislocation) pits grow until their footprints touch; the labels then show
one connected region, but the heights still show two funnels, each around its own fixed
deepest point (its source). :func:`separate_touching` divides such a region by a
watershed of the (lightly smoothed) heights seeded at the sources of the pits of the
frame before that it overlaps (the bottom of each track's first frame, which does not
move), so that each keeps its own track; its area is then its own basin, the pixels
where it is the deepest pit.

A pit whose basin is smaller than ``min_keep`` of its area in the frame before, whose
source is no longer the bottom of a funnel (a deeper pit's slope has reached it), or
whose seed falls outside the region or on a larger pit's seed has been *absorbed*: its track
ends with fate ``"merged"`` and the track of the pit that took its seed continues,
listing it among its parents (when a single pit keeps a basin, it takes the whole
region). A minimum at least ``new_basin_nm`` deep whose basin holds no known source is a
new pit (nucleated against or inside another): its basin becomes a pit of its own. In
the first frame, where no source is known yet, this divides pits that already touch.
Monolayer pits, one step deep, coalesce into one flat pit: they are merged, not
separated (the default ``separate_classes`` is multilayer only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology
from skimage.segmentation import watershed

from .pits import FramePits, PitSettings, measure_components

__all__ = ["separate_touching"]

_BOTTOM_PX = 2  # no pixel this close to a source that is lower...
_BOTTOM_TOL_NM = 0.05  # ...by more than this (nm) may belong to another pit
_COARSE = 2  # new basins of regions over _COARSE_ABOVE_PX pixels: sought on a 2x coarser grid
_COARSE_ABOVE_PX = 40_000


def _seed(prev: FramePits, i: int, src, jmask: np.ndarray, box, smooth: np.ndarray, p: float):
    """Seed pixel (row, col in the box) of earlier pit ``i`` inside the region, or None.

    Its source ``src`` (``(y_nm, x_nm)``, the fixed deepest point of its track) when that
    lies in the region, else the lowest pixel of its old footprint inside the region.
    """
    r0, c0 = box[0].start, box[1].start
    by, bx = src
    if np.isfinite(by) and np.isfinite(bx):
        r, c = round(by / p) - r0, round(bx / p) - c0
        if 0 <= r < jmask.shape[0] and 0 <= c < jmask.shape[1] and jmask[r, c]:
            return r, c
    old = (prev.components[box] == i + 1) & jmask
    if not old.any():
        return None
    vals = np.where(old, smooth, np.inf)
    r, c = np.unravel_index(int(np.argmin(vals)), vals.shape)
    return int(r), int(c)


def _new_basins(smooth: np.ndarray, jmask: np.ndarray, seeds, h: float) -> list[np.ndarray]:
    """Minima of the region at least ``h`` nm deep whose basin holds no known seed.

    Returns one boolean mask (the minimum's pixels) per new basin. Large regions are
    searched on a grid coarser by :data:`_COARSE` (the h-minima transform dominates the
    cost of tracking; a new pit's basin spans many pixels).
    """
    f = _COARSE if jmask.size > _COARSE_ABOVE_PX else 1
    if f > 1:
        rows, cols = (-(-n // f) * f for n in jmask.shape)
        pad = ((0, rows - jmask.shape[0]), (0, cols - jmask.shape[1]))
        top = float(smooth[jmask].max())
        img = np.pad(np.where(jmask, smooth, top), pad, constant_values=top)
        img = img.reshape(rows // f, f, cols // f, f).mean(axis=(1, 3))
        mask = np.pad(jmask, pad).reshape(rows // f, f, cols // f, f).any(axis=(1, 3))
    else:
        img = np.where(jmask, smooth, smooth[jmask].max())
        mask = jmask
    minima = morphology.h_minima(img, h).astype(bool) & mask
    lab_min, n = ndimage.label(minima, np.ones((3, 3), bool))
    if n == 0:
        return []
    basins = watershed(img, lab_min, mask=mask)
    known = {int(basins[r // f, c // f]) for r, c in seeds}
    out = []
    for k in range(1, n + 1):
        if k in known:
            continue
        m = lab_min == k
        if f > 1:
            m = np.repeat(np.repeat(m, f, axis=0), f, axis=1)[: jmask.shape[0], : jmask.shape[1]]
        m &= jmask
        if m.any():
            out.append(m)
    return out


def _is_bottom(smooth: np.ndarray, parts: np.ndarray, k: int, seed: tuple[int, int]) -> bool:
    """Whether source ``seed`` (of part ``k``) is still the bottom of a funnel of its own.

    A source that a deeper pit has reached lies on that pit's slope: the watershed gives
    the lower pixels next to it (within :data:`_BOTTOM_PX`, lower by more than
    :data:`_BOTTOM_TOL_NM`) to the other pit. Around a source that is still a bottom
    (give or take the noise of its estimate), the lower pixels are its own.
    """
    r, c = seed
    win = (
        slice(max(r - _BOTTOM_PX, 0), r + _BOTTOM_PX + 1),
        slice(max(c - _BOTTOM_PX, 0), c + _BOTTOM_PX + 1),
    )
    lower = smooth[win] < smooth[r, c] - _BOTTOM_TOL_NM
    other = (parts[win] > 0) & (parts[win] != k)
    return not bool((lower & other).any())


def _parts(smooth: np.ndarray, jmask: np.ndarray, markers: list[np.ndarray]) -> np.ndarray:
    """Watershed of ``smooth`` inside ``jmask`` from ``markers``: labels 1..len(markers)."""
    lab = np.zeros(jmask.shape, np.int32)
    for k, m in enumerate(markers, start=1):
        lab[m] = k
    return watershed(smooth, lab, mask=jmask)


def _region(z: np.ndarray, cur: FramePits, j: int):
    """Box around pit ``j``, its mask there, and the lightly smoothed heights."""
    sl = ndimage.find_objects((cur.components == j + 1).astype(np.int8))[0]
    box = tuple(slice(max(a.start - 1, 0), min(a.stop + 1, n)) for a, n in zip(sl, z.shape))
    jmask = cur.components[box] == j + 1
    zb = z[box]
    fill = np.nanmax(zb) if np.isfinite(zb).any() else 0.0
    smooth = ndimage.gaussian_filter(np.where(np.isfinite(zb), zb, fill), 1.0)
    return box, jmask, smooth


def _split_one(z, cur: FramePits, j: int, parents: list[int], prev, sources, s, p):
    """Divide pit ``j`` among its parents and new basins: ``(box, parts, kept, absorbed)``,
    or None when nothing changes.

    ``parts`` labels the box 1..len(kept); ``kept[k - 1]`` is the parent of part ``k``
    (None for a new basin); ``absorbed`` maps each other parent to the kept parent that
    took its seed (None when a new basin did, or no part holds it).
    """
    box, jmask, smooth = _region(z, cur, j)
    seeds: dict[int, tuple[int, int]] = {}
    for i in sorted(parents, key=lambda i: -prev.rows[i]["n_px"]):
        sd = _seed(prev, i, sources[i], jmask, box, smooth, p)
        if sd is not None and sd not in seeds.values():
            seeds[i] = sd
    markers: list[tuple[int | None, np.ndarray]] = []
    for i, (r, c) in seeds.items():
        m = np.zeros(jmask.shape, bool)
        m[r, c] = True
        markers.append((i, m))
    if s.new_basin_nm > 0:
        markers += [(None, m) for m in _new_basins(smooth, jmask, seeds.values(), s.new_basin_nm)]
    parts = None
    while len(markers) >= 2:  # drop the markers left without a basin of their own
        parts = _parts(smooth, jmask, [m for _, m in markers])
        sizes = np.bincount(parts.ravel(), minlength=len(markers) + 1)[1:]
        need = [
            s.min_area_px if i is None else max(s.min_area_px, s.min_keep * prev.rows[i]["n_px"])
            for i, _ in markers
        ]
        good = [
            size >= n and (i is None or _is_bottom(smooth, parts, k, seeds[i]))
            for k, ((i, _), size, n) in enumerate(zip(markers, sizes, need), start=1)
        ]
        if all(good):
            break
        markers = [mk for mk, g in zip(markers, good) if g]
        parts = None
    kept = [i for i, _ in markers]
    if not kept or (len(kept) == 1 and len(parents) <= 1):
        return None  # one basin and at most one pit before: nothing to divide
    if parts is None:  # one basin left: the whole region is its own
        parts = jmask.astype(np.int32)
    absorbed = {}
    for i in parents:
        if i not in kept:
            k = int(parts[seeds[i]]) if i in seeds else 0
            absorbed[i] = kept[k - 1] if k > 0 else None
    return box, parts, kept, absorbed


def separate_touching(
    z: np.ndarray,
    lab: np.ndarray,
    prev: FramePits | None,
    cur: FramePits,
    groups: dict[int, list[int]],
    pixel_size_nm: float,
    settings: PitSettings,
    sources: dict[int, tuple[float, float]] | None = None,
) -> tuple[FramePits, dict[int, int], dict[int, int | None]]:
    """Divide the pits of frame ``t`` among the pits of frame ``t - 1`` and new basins.

    Parameters
    ----------
    z, lab : numpy.ndarray
        Heights (nm) and labels of frame ``t``.
    prev : FramePits or None
        The pits of frame ``t - 1`` (None for the first frame).
    cur : FramePits
        The pits of frame ``t``.
    groups : dict
        Pit ``j`` of ``cur`` (of a class in ``settings.separate_classes``) -> the pits of
        ``prev`` it overlaps (any number, none included).
    pixel_size_nm : float
        Pixel size, nm.
    settings : PitSettings
        ``min_keep``, ``new_basin_nm``, ``min_area_px`` and the measuring settings.
    sources : dict, optional
        Pit of ``prev`` -> ``(y_nm, x_nm)`` of its track's source (the bottom of its
        first frame, which does not move); default: each pit's own bottom.

    Returns
    -------
    cur : FramePits
        The pits of frame ``t``, the divided ones replaced by their parts (the first part
        keeps the pit's id, the others take new ids after the last one).
    forced : dict
        Pit of ``prev`` -> the part of ``cur`` that continues it.
    absorbed : dict
        Pit of ``prev`` that lost its basin -> the pit of ``prev`` whose part took it
        (None when none did).

    Examples
    --------
    >>> from napari_calcite_afm.kinetics import find_pits
    >>> yy, xx = np.mgrid[0:30, 0:50]
    >>> z = np.minimum(np.hypot(yy - 15, xx - 15), np.hypot(yy - 15, xx - 34)) * 0.5 - 8
    >>> lab = np.where(z < 0, 1, 2).astype(np.uint8)
    >>> before = np.where(np.abs(xx - 24.5) < 3, 2, lab).astype(np.uint8)
    >>> prev, cur = find_pits(z, before, 10.0), find_pits(z, lab, 10.0)
    >>> prev.n, cur.n
    (2, 1)
    >>> new, forced, absorbed = separate_touching(z, lab, prev, cur, {0: [0, 1]}, 10.0,
    ...                                           PitSettings())
    >>> new.n, forced, absorbed
    (2, {0: 0, 1: 1}, {})
    >>> separate_touching(z, lab, None, cur, {0: []}, 10.0, PitSettings())[0].n
    2
    """
    comps = cur.components.copy()
    classes = [r["class"] for r in cur.rows]
    forced: dict[int, int] = {}
    absorbed: dict[int, int | None] = {}
    changed = False
    p = float(pixel_size_nm)
    if prev is not None and sources is None:
        sources = {i: (r["bottom_y_nm"], r["bottom_x_nm"]) for i, r in enumerate(prev.rows)}
    for j, parents in sorted(groups.items()):
        parents = parents if prev is not None else []
        got = _split_one(z, cur, j, parents, prev, sources, settings, p)
        if got is None:
            continue
        changed = True
        box, parts, kept, lost = got
        for k, i in enumerate(kept, start=1):
            if k == 1:
                new_id = j + 1
            else:
                classes.append(classes[j])
                new_id = len(classes)
            comps[box][parts == k] = new_id
            if i is not None:
                forced[i] = new_id - 1
        absorbed.update(lost)
    if not changed:
        return cur, {}, {}
    return measure_components(z, lab, comps, classes, p, settings), forced, absorbed
