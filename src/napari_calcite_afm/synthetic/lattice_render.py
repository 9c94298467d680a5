"""From the cellular lattice (:mod:`.lattice`) to pixels: whole-layer depths and labels.

Each pixel reads the lattice at its own position: the bilinear interpolation of the four
surrounding cells (helical offsets included) rounded to whole layers, so step edges come
out straight between cell centres rather than as blocks, and the flags of the nearest of
those cells that has the pixel's depth. The labels follow from depths and flags, on a
grid with a margin around the frame:

* label 1, multilayer pit: a pixel that a dislocation pit's loops dissolved at some time
  (:data:`~.lattice.VISITED`) and that lies in a closed depression: deeper than the
  level at which it connects to pixels no dislocation pit dissolved; a connected such
  set is a multilayer pit once it is two layers deep (its outermost loop is included,
  as in :mod:`.render`; a pit opened into the terrace below keeps only what lies deeper);
* label 3, monolayer pit: a pixel a monolayer pit dissolved (or a dislocation pit of
  one layer so far) that sits in a *closed* depression: it does not connect, through
  pixels at its depth or deeper, to a pixel that a step or a multilayer pit made (found
  by morphological reconstruction). Nested pits stay closed when the pit around them
  opens; an opened pit is terrace;
* label 2, terrace: the rest.

A pit cut by the edge of the grid counts as closed there, as in :mod:`.render`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import reconstruction

from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from .lattice import MADE_BY_MONO, MAKER, VISITED, _Lattice


def _sample(
    lat: _Lattice, size: int, pixel_size_nm: float, shift: tuple[float, float], margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-layer depths (int32) and flags (uint8) of a pixel grid ``(n, n)``.

    The grid has ``n = size + 2 margin`` pixels a side; pixel ``(r, c)`` is pixel
    ``(r - margin, c - margin)`` of a frame whose content is displaced by ``shift``
    (rows, cols) pixels, i.e. it shows reference position ``(r - margin - shift[0], ...)``.
    """
    n = size + 2 * margin
    centre = 0.5 * (size - 1)
    rows = (np.arange(n) - margin - float(shift[0]) - centre) * pixel_size_nm
    cols = (np.arange(n) - margin - float(shift[1]) - centre) * pixel_size_nm
    u, v = lat.to_lattice(cols[None, :], rows[:, None])
    ni, nj = lat.shape
    ki, kj = lat.offsets
    i0 = np.floor(u).astype(np.int64)
    j0 = np.floor(v).astype(np.int64)
    fi = u - i0
    fj = v - j0
    acc = np.zeros((n, n))
    corners = []
    for a in (0, 1):
        qi, ri = np.divmod(i0 + a, ni)
        wi = fi if a else 1.0 - fi
        for b in (0, 1):
            qj, rj = np.divmod(j0 + b, nj)
            w = wi * (fj if b else 1.0 - fj)
            val = lat.depth[ri, rj].astype(np.int64) + qi * ki + qj * kj
            acc += w * val
            corners.append((val, w, lat.flags[ri, rj]))
    depth = np.floor(acc + 0.5).astype(np.int64)
    # flags of the heaviest corner at the pixel's depth (any corner if none is)
    best = np.full((n, n), -1.0)
    flags = np.zeros((n, n), np.uint8)
    for val, w, fl in corners:
        score = w + (val == depth) * 2.0
        take = score > best
        best[take] = score[take]
        flags[take] = fl[take]
    return depth.astype(np.int32), flags


def _basin(depth: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Layers each pixel lies below the deepest level at which it connects (through pixels
    at least that deep) to an ``outside`` pixel: > 0 inside a closed depression."""
    mask = depth.astype(np.float64)
    if outside.all():
        return np.zeros(depth.shape)
    marker = np.where(outside, mask, float(mask.min()) - 1.0)
    return mask - reconstruction(marker, mask, method="dilation")


def _cellular_labels(depth: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Labels (uint8) of a grid from its depths (layers) and flags (module docstring)."""
    visited = (flags & VISITED) > 0
    labels = np.full(depth.shape, LABEL_TERRACE, dtype=np.uint8)
    multi = np.zeros(depth.shape, bool)
    young = np.zeros(depth.shape, bool)
    if visited.any():
        below = _basin(depth, ~visited)
        pit = visited & (below > 0.5)
        comp, n_comp = ndimage.label(pit)
        if n_comp:
            peak = np.asarray(ndimage.maximum(below, comp, np.arange(1, n_comp + 1)))
            keep = np.concatenate([[False], peak > 1.5])  # two layers or more
            multi = keep[comp]
            young = pit & ~multi
    cand = (((flags & MAKER) == MADE_BY_MONO) & ~visited) | young
    if cand.any():
        labels[cand & (_basin(depth, ~cand) > 0.5)] = LABEL_MONOLAYER
    labels[multi] = LABEL_MULTILAYER
    return labels


def _footprint_labels(labels: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``labels`` with every connected area that dislocation-pit loops dissolved
    (:data:`~.lattice.VISITED`) and that holds a multilayer-pit pixel labelled 1 whole:
    the pit's footprint (``CellularParams(pit_labels="footprint")``)."""
    comp, n = ndimage.label((flags & VISITED) > 0)
    if not n:
        return labels
    hit = np.unique(comp[labels == LABEL_MULTILAYER])
    out = labels.copy()
    out[np.isin(comp, hit[hit > 0])] = LABEL_MULTILAYER
    return out
