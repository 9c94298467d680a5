"""Rendering: clean heights, labels and hidden pit pixels of one frame at one time.

:func:`_render` evaluates a surface model (:mod:`.surface_model`) at time ``t`` on a frame
displaced by a drift ``shift`` (pixels), with :data:`_MARGIN` pixels around it so that
pits at the border are labelled right, then crops. Heights are whole steps
(``step_height_nm``) plus roughness; labels follow
:mod:`napari_calcite_afm.labels` (1 multilayer pit, 2 terrace, 3 monolayer pit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from .crystal import _gauge
from .fields import _sample_shifted
from .pits import _Arrival, _mono_depth, _pit_box
from .wide import _wall_levels

if TYPE_CHECKING:  # pragma: no cover
    from .surface_model import _Model

_MARGIN = 8  # pixels rendered around each frame so pits at the border are labelled right


def _render(
    model: _Model,
    t: float,
    shift: tuple[float, float],
    arrival: _Arrival,
    rough_t: np.ndarray | None,
    rough_p: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean heights (float32, nm), labels (uint8) and hidden pit pixels (bool) at ``t``.

    Hidden pixels: see :func:`~.generators.make_frame` (``return_hidden``).
    """
    m = _MARGIN
    n = model.size + 2 * m
    pad_eff = model.pad - m
    p = model.pixel_size_nm
    x0 = (-m - shift[1]) * p  # reference position (nm) of grid column 0
    y0 = (-m - shift[0]) * p
    xs = x0 + np.arange(n) * p
    ys = y0 + np.arange(n) * p

    wav = _sample_shifted(model.waviness_nm, pad_eff, shift, n)
    xi = (xs[None, :] * model.normal[0] + ys[:, None] * model.normal[1]) + wav
    xi += model.xi_offset_nm
    terrace = model.terrace_index(xi, t)  # float, integer valued
    edge = _sample_shifted(model.edge_noise_s, pad_eff, shift, n)

    # multilayer pits: number of removed layers
    n_multi = np.zeros((n, n), dtype=np.float64)
    mp = model.multi
    for k in range(mp.x.size):
        age = t - mp.t0[k]
        if age <= 0:
            continue
        vo = model.v_obtuse * mp.speed[k]
        va = model.v_acute * mp.speed[k]
        box = _pit_box(model, mp.x[k], mp.y[k], va * age, vo * age, x0, y0, n)
        if box is None:
            continue
        rs, cs = box
        dx = xs[cs][None, :] - mp.x[k]
        dy = ys[rs][:, None] - mp.y[k]
        g = _gauge(model, dx, dy, vo, va) + edge[rs, cs]
        loops = (age - g) / mp.tau[k]
        levels = (
            np.floor(loops) + 1.0 if model.walls is None else _wall_levels(model.walls, k, loops)
        )
        np.maximum(n_multi[rs, cs], levels, out=n_multi[rs, cs])
    frac = None
    if model.walls is not None and model.walls.smooth:  # smooth walls: part of a layer
        whole = np.ceil(n_multi)
        frac, n_multi = whole - n_multi, whole

    # monolayer pits: one layer, only on the terrace they nucleated on
    n_mono = _mono_depth(arrival, terrace, t, pad_eff, shift)
    mono = n_mono > 0

    depth = np.maximum(n_multi, n_mono)
    level = (-terrace - depth).astype(np.int64)
    in_multi = n_multi > 0
    labels = np.full((n, n), LABEL_TERRACE, dtype=np.uint8)
    labels[in_multi] = LABEL_MULTILAYER
    cand = mono & ~in_multi
    if cand.any():
        labels[cand] = _monolayer_labels(cand, level)[cand]

    heights = level.astype(np.float64) * model.step_height_nm
    if frac is not None:
        heights += np.where(n_multi > n_mono, frac, 0.0) * model.step_height_nm
    if model.rough_terrace_nm > 0 and rough_t is not None and rough_p is not None:
        rt = _sample_shifted(rough_t, pad_eff, shift, n)
        rp = _sample_shifted(rough_p, pad_eff, shift, n)
        heights += np.where(
            labels == LABEL_TERRACE, model.rough_terrace_nm * rt, model.rough_pit_nm * rp
        )
    crop = (slice(m, m + model.size), slice(m, m + model.size))
    # multilayer-pit pixels whose height the pit did not set: monolayer pits (or the
    # layers they consumed) dug at least as deep there
    hidden = in_multi & (n_mono >= n_multi)
    return heights[crop].astype(np.float32), labels[crop], hidden[crop]


def _monolayer_labels(cand: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Label monolayer-pit pixels: 3 where they form a closed depression, else 2.

    Pit pixels are grouped into connected sets at one level. A set is a monolayer pit
    (label 3) when every pixel around it is higher, except younger pits nested inside
    it (sets that touch nothing higher but it) that are closed themselves. A set that
    touches a non-pit pixel at its own level or lower (the terrace below the next step,
    a multilayer pit), or a lower set that is not nested in it, has opened: it is
    terrace (label 2).
    """
    comp = np.zeros(cand.shape, dtype=np.int64)
    n_comp = 0
    residue = level % 3
    for r in range(3):
        lab, n = ndimage.label(cand & (residue == r))
        comp[lab > 0] = lab[lab > 0] + n_comp
        n_comp += n
    opened = np.zeros(n_comp + 1, dtype=bool)
    walled = np.zeros(n_comp + 1, dtype=bool)  # touches a higher non-pit pixel
    keys = []
    pairs = (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    )
    for a, b in pairs:
        for s, o in ((a, b), (b, a)):
            ls, lo = level[s], level[o]
            cs, co = cand[s], cand[o]
            edge = cs & ~co
            hit = edge & (lo <= ls)
            if hit.any():
                opened[comp[s][hit]] = True
            hit = edge & (lo > ls)
            if hit.any():
                walled[comp[s][hit]] = True
            below = cs & co & (lo < ls)
            if below.any():
                keys.append(comp[s][below] * (n_comp + 1) + comp[o][below])
    if keys:
        key = np.unique(np.concatenate(keys))
        high, low = np.divmod(key, n_comp + 1)
        n_higher = np.bincount(low, minlength=n_comp + 1)
        nested = ~walled & (n_higher == 1)
        opened[high[~nested[low]]] = True
        for _ in range(n_comp):  # an opened nested pit opens the one around it
            spread = nested[low] & opened[low] & ~opened[high]
            if not spread.any():
                break
            opened[high[spread]] = True
    value = np.full(n_comp + 1, LABEL_MONOLAYER, dtype=np.uint8)
    value[opened] = LABEL_TERRACE
    return value[comp]
