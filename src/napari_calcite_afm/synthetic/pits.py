"""Etch pits: nucleation, growth and the layers monolayer pits remove.

Two kinds of rhombic pits dissolve the surface:

* multilayer (dislocation) pits: concentric step loops, one new loop every ``tau``
  seconds at the source; their depth at a point is a closed form of its
  :func:`~.crystal._gauge` (rendered frame by frame in :mod:`.render`);
* monolayer pits, one step deep, nucleating at random places and times; a pit dissolves
  only the layer exposed where it nucleated (the step-flow terrace or the floor of an
  older pit: pits in pits). :func:`_mono_arrival` rasterises, once per window of frames,
  when each layer is reached at each canvas pixel, and :func:`_mono_depth` reads how many
  layers are gone at a time ``t`` on a (drifted) frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .crystal import _gauge_outer
from .fields import _loguniform, _smooth_noise

if TYPE_CHECKING:  # pragma: no cover
    from .surface_model import _Model

_REFERENCE_FRAME_S = 300.0  # monolayer nucleation densities are counted per 300 s
_NESTING = 4  # layers a stack of monolayer pits (a pit in a pit...) may reach below step flow
_NEVER = np.float32(1e12)


@dataclass
class _Pits:
    """Pit sources: positions in nm (reference frame), times in s."""

    x: np.ndarray
    y: np.ndarray
    t0: np.ndarray
    speed: np.ndarray  # velocity factor of each pit
    tau: np.ndarray  # multilayer: seconds between successive loops (inf for monolayer)
    terrace: np.ndarray  # monolayer: layer the pit dissolves (NaN until assigned)


@dataclass
class _Arrival:
    """When monolayer pits remove each layer at each canvas pixel, for a time window.

    ``time[k + 1, i, j]`` is the earliest time (s) a monolayer pit dissolving layer
    ``iref[i, j] + k`` reaches canvas pixel ``(i, j)`` (``_NEVER`` if none does);
    ``time[0]`` and ``time[-1]`` are sentinels that read as never. ``iref`` is the index
    of the top layer left by step flow at each pixel at the start of the window (it only
    grows with time). Layer ``L`` is removed at a pixel once step flow has passed it or
    once a pit of layer ``L`` has reached it and layer ``L - 1`` is already removed there.
    """

    time: np.ndarray  # (K + 2, H, W) float32
    iref: np.ndarray  # (H, W) int64


# --------------------------------------------------------------------------------------
# drawing the pits
# --------------------------------------------------------------------------------------


def _draw_edge_noise(
    rng: np.random.Generator, n_canvas: int, pixel_size_nm: float, v_acute: float, wide=None
) -> np.ndarray:
    """Pit-edge waviness shared by all pits: a padded canvas of seconds added to the gauge
    (``wide``: the wide variety's amplitude and correlation length)."""
    if wide is not None:
        amp, length = wide.edge["amplitude_nm"], wide.edge["length_nm"]
        return (amp / v_acute) * _smooth_noise(rng, (n_canvas, n_canvas), length / pixel_size_nm)
    edge_amp_nm = float(rng.uniform(1.0, 3.5))
    return (edge_amp_nm / v_acute) * _smooth_noise(
        rng, (n_canvas, n_canvas), float(rng.uniform(20.0, 50.0)) / pixel_size_nm
    )


def _draw_multilayer(
    rng: np.random.Generator,
    n_multilayer: int | None,
    *,
    extent_nm: float,
    duration_s: float,
    drawn: dict[str, Any],
    wide=None,
) -> _Pits:
    """Draw the multilayer (dislocation) pits: sources, start times, loop intervals.

    ``n_multilayer`` None draws 1-4 per 36 µm² (at least one); the pits are recorded in
    ``drawn["multilayer_pits"]``. ``wide`` (the wide variety's draws) sets the ranges of
    ages, loop intervals and speeds.
    """
    area_um2 = (extent_nm / 1000.0) ** 2
    if n_multilayer is None:
        mean = rng.uniform(1.0, 4.0) * area_um2 / 36.0
        n_multilayer = max(1, int(rng.poisson(mean)))
    n_multilayer = int(n_multilayer)
    mx = rng.uniform(0.1, 0.9, n_multilayer) * extent_nm
    my = rng.uniform(0.1, 0.9, n_multilayer) * extent_nm
    # most are there before the movie starts, some appear during it
    # (the standard numbers are literals, so that the standard draws stay bit for bit)
    age_max, early_share, tau_lo, tau_hi, spread = 4000.0, 0.8, 25.0, 300.0, None
    if wide is not None:
        w = wide.multilayer
        age_max, early_share = w["max_age_s"], 1.0 - w["late_fraction"]
        tau_lo, tau_hi, spread = w["tau_lo_s"], w["tau_hi_s"], w["speed_spread"]
    early = rng.uniform(-age_max, -min(500.0, 0.5 * age_max), n_multilayer)
    late = rng.uniform(0.0, 0.4 * max(duration_s, 1.0), n_multilayer)
    mt0 = np.where(rng.random(n_multilayer) < early_share, early, late)
    mtau = np.exp(rng.uniform(math.log(tau_lo), math.log(tau_hi), n_multilayer))
    if spread is None:
        mspeed = rng.uniform(0.8, 1.25, n_multilayer)
    else:
        mspeed = rng.uniform(1.0 - spread, 1.0 + spread, n_multilayer)
    drawn["multilayer_pits"] = [
        {
            "x_nm": float(a),
            "y_nm": float(b),
            "t0_s": float(c),
            "loop_interval_s": float(d),
            "speed_factor": float(e),
        }
        for a, b, c, d, e in zip(mx, my, mt0, mtau, mspeed)
    ]
    return _Pits(mx, my, mt0, mspeed, mtau, np.zeros(n_multilayer))


def _draw_monolayer(
    rng: np.random.Generator,
    monolayer_density_per_um2: float | None,
    *,
    extent_nm: float,
    pad_nm: float,
    duration_s: float,
    spacing_nm: float,
    v_step: float,
    v_obtuse: float,
    v_acute: float,
    drawn: dict[str, Any],
    wide=None,
) -> tuple[_Pits, float]:
    """Draw the monolayer pits nucleating before and during the movie.

    Pits nucleate uniformly over the frame and a margin around it (``pad_nm`` + 60 nm),
    from long enough before frame 0 for the surface to look settled. Returns the pits
    (layers not yet assigned) and the age, s, at which they stop growing.
    """
    if monolayer_density_per_um2 is None:
        monolayer_density_per_um2 = _loguniform(rng, 0.5, 5.0)
    pre_s = float(min(2500.0, 1.2 * spacing_nm / v_step))
    t_lo, t_hi = -pre_s, float(duration_s)
    margin_nm = pad_nm + 60.0
    span_nm = extent_nm + 2 * margin_nm
    rate = float(monolayer_density_per_um2) / _REFERENCE_FRAME_S  # per um2 per s
    expected = rate * (span_nm / 1000.0) ** 2 * (t_hi - t_lo)
    n_mono = int(rng.poisson(expected))
    ux = rng.uniform(-margin_nm, extent_nm + margin_nm, n_mono)
    uy = rng.uniform(-margin_nm, extent_nm + margin_nm, n_mono)
    ut0 = np.sort(rng.uniform(t_lo, t_hi, n_mono))
    if wide is None:
        uspeed = rng.uniform(0.85, 1.15, n_mono)
    else:
        spread = wide.mono_speed_spread
        uspeed = rng.uniform(1.0 - spread, 1.0 + spread, n_mono)
    # pits stop growing (bounding the cost) well after their layer is typically consumed
    consume_s = (rate / 1e6 * v_obtuse * v_acute) ** (-1.0 / 3.0) if rate > 0 else 1e9
    max_age = float(np.clip(1.5 * consume_s, 1500.0, 4000.0))
    drawn["monolayer_density_per_um2"] = float(monolayer_density_per_um2)
    drawn["n_monolayer_nucleated"] = n_mono
    pits = _Pits(ux, uy, ut0, uspeed, np.full(n_mono, np.inf), np.full(n_mono, np.nan))
    return pits, max_age


def _pit_box(model: _Model, sx: float, sy: float, ext_lo: float, ext_hi: float, x0, y0, n):
    """Pixel slices of an ``n x n`` grid (column 0 at ``x0``, row 0 at ``y0``, nm) covering
    a pit whose sides lie ``ext_lo`` (acute) and ``ext_hi`` (obtuse) nm from its source,
    or ``None`` when the pit is outside the grid."""
    p = model.pixel_size_nm
    dx0, dx1, dy0, dy1 = model.corners_extent(ext_lo, ext_hi)
    c0 = max(math.floor((sx + dx0 - x0) / p) - 2, 0)
    c1 = min(math.ceil((sx + dx1 - x0) / p) + 3, n)
    r0 = max(math.floor((sy + dy0 - y0) / p) - 2, 0)
    r1 = min(math.ceil((sy + dy1 - y0) / p) + 3, n)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


# --------------------------------------------------------------------------------------
# monolayer pits on the canvas
# --------------------------------------------------------------------------------------


def _mono_boxes(
    model: _Model,
    sel: np.ndarray,
    t_hi: float,
    t_ref: float,
    xi: np.ndarray,
    iref: np.ndarray,
    edge: np.ndarray,
) -> list[list]:
    """Per-pit values of the pits ``sel`` for :func:`_mono_arrival`, as Python lists.

    Each pit's canvas bounding box at its (capped) age at ``t_hi``, vectorised: columns
    ``c0, c1``, rows ``r0, r1``, whether it meets the canvas, the lowest downhill
    coordinate over the box, the range of step-flow layers over it at ``t_ref``, its
    velocities, and its source pixel (row, column, reference layer, step-flow layer at
    nucleation, edge noise there).
    """
    p = model.pixel_size_nm
    h = model.canvas_size
    pad = model.pad
    nx, ny = model.normal
    lam = model.spacing_nm
    v = model.step_velocity_nm_s
    up = model.mono
    wav_max = float(np.abs(model.waviness_nm).max()) + 1.0
    age = np.minimum(t_hi - up.t0[sel], model.mono_max_age_s)
    vo = model.v_obtuse * up.speed[sel]
    va = model.v_acute * up.speed[sel]
    asp = model.aspect
    cx = [
        a * model.m1[0] + b * model.m2[0]
        for a in (-va * age, vo * age)
        for b in (-va * age * asp, vo * age * asp)
    ]
    cy = [
        a * model.m1[1] + b * model.m2[1]
        for a in (-va * age, vo * age)
        for b in (-va * age * asp, vo * age * asp)
    ]
    ix0 = pad + (up.x[sel] + np.min(cx, axis=0)) / p
    ix1 = pad + (up.x[sel] + np.max(cx, axis=0)) / p
    iy0 = pad + (up.y[sel] + np.min(cy, axis=0)) / p
    iy1 = pad + (up.y[sel] + np.max(cy, axis=0)) / p
    c0 = np.clip(np.floor(ix0).astype(np.int64) - 1, 0, h)
    c1 = np.clip(np.ceil(ix1).astype(np.int64) + 2, 0, h)
    r0 = np.clip(np.floor(iy0).astype(np.int64) - 1, 0, h)
    r1 = np.clip(np.ceil(iy1).astype(np.int64) + 2, 0, h)
    inside = (c0 < c1) & (r0 < r1)
    # range of the downhill coordinate over each box (waviness included)
    xb = [(c0 - pad) * p, (c1 - 1 - pad) * p]
    yb = [(r0 - pad) * p, (r1 - 1 - pad) * p]
    xi_corners = [a * nx + b * ny for a in xb for b in yb]
    xi_lo = np.min(xi_corners, axis=0) + model.xi_offset_nm - wav_max
    xi_hi = np.max(xi_corners, axis=0) + model.xi_offset_nm + wav_max
    ref_lo = np.floor((xi_lo + v * t_ref) / lam) - 1
    ref_hi = np.floor((xi_hi + v * t_ref) / lam) - 1
    # the source pixel of each pit (where its layer is read at nucleation)
    src_r = np.clip(np.round(up.y[sel] / p).astype(np.int64) + pad, 0, h - 1)
    src_c = np.clip(np.round(up.x[sel] / p).astype(np.int64) + pad, 0, h - 1)
    src_ref = iref[src_r, src_c]
    src_i0 = model.terrace_index(xi[src_r, src_c], up.t0[sel]).astype(np.int64)
    src_edge = edge[src_r, src_c]
    # plain Python scalars: much faster in the loop than numpy scalars
    arrays = (c0, c1, r0, r1, inside, xi_lo, ref_lo, ref_hi, vo, va)
    return [a.tolist() for a in (*arrays, src_r, src_c, src_ref, src_i0, src_edge)]


def _mono_arrival(model: _Model, t_lo: float, t_hi: float) -> _Arrival:
    """Rasterise every monolayer pit relevant to ``[t_lo, t_hi]`` once, on the canvas.

    Pits are taken in order of nucleation; a pit dissolves the layer exposed at its source
    when it nucleates (the step-flow terrace, or the floor of earlier pits there). Layers
    are assigned once and stored in the model, so consecutive windows agree.
    """
    p = model.pixel_size_nm
    h = model.canvas_size
    pad = model.pad
    pos = (np.arange(h) - pad) * p
    posf = pos.astype(np.float32)
    nx, ny = model.normal
    xi = pos[None, :] * nx + pos[:, None] * ny
    xi = xi + model.waviness_nm + model.xi_offset_nm
    lam = model.spacing_nm
    v = model.step_velocity_nm_s
    up = model.mono
    # layers are counted from the step-flow terrace at the start of the window, or at the
    # nucleation of the earliest pit whose layer is still to be found
    todo = np.isnan(up.terrace) & (up.t0 < t_hi)
    t_ref = min(t_lo, float(up.t0[todo].min())) if todo.any() else t_lo
    # (one layer above the step-flow terrace too, so that bilinear reads next to a step
    # see the pits of the terrace above it)
    iref = model.terrace_index(xi, t_ref).astype(np.int64) - 1
    iend = model.terrace_index(xi, t_hi).astype(np.int64)
    n_layers = int((iend - iref).max()) + 1 + _NESTING
    # the pits' wavy-edge time offset (common to all pits) is added after the loop
    arrival = np.full((n_layers + 2, h, h), _NEVER, dtype=np.float32)
    edge = model.edge_noise_s.astype(np.float32)
    max_age = model.mono_max_age_s

    sel = np.nonzero(up.t0 < t_hi)[0]  # sorted by nucleation time
    per_pit = _mono_boxes(model, sel, t_hi, t_ref, xi, iref, edge)
    t0s, layers = up.t0[sel].tolist(), up.terrace[sel].tolist()
    xs, ys = up.x[sel].astype(np.float32), up.y[sel].astype(np.float32)
    v_t_lo = v * t_lo
    for j, (
        c0j,
        c1j,
        r0j,
        r1j,
        inj,
        xlj,
        rlj,
        rhj,
        voj,
        vaj,
        rr,
        cc,
        sref,
        si0,
        sedge,
    ) in enumerate(zip(*per_pit)):
        t0 = t0s[j]
        i_n = layers[j]
        if i_n != i_n:  # NaN: not assigned yet
            # the layer exposed at the source at nucleation: step-flow terrace + pit floors
            layer = si0 - sref
            while 0 <= layer < n_layers and arrival[layer + 1, rr, cc] + sedge <= t0:
                layer += 1
            i_n = float(layer + sref)
            layers[j] = i_n
        if not inj:
            continue
        # skip a pit whose layer step flow has already removed all over its box
        if xlj + v_t_lo >= (i_n + 1) * lam:
            continue
        lo = int(i_n - rhj)
        hi = int(i_n - rlj)
        if hi < 0 or lo >= n_layers:
            continue
        rs = slice(r0j, r1j)
        cs = slice(c0j, c1j)
        g = _gauge_outer(model, posf[rs] - ys[j], posf[cs] - xs[j], voj, vaj)
        if t_hi - t0 > max_age:  # the pit stopped growing
            g[g > max_age] = _NEVER
        g += np.float32(t0)
        if lo == hi:
            sub = arrival[lo + 1, rs, cs]
            np.minimum(sub, g, out=sub)
            continue
        layer = int(i_n) - iref[rs, cs]
        for kk in range(max(lo, 0), min(hi, n_layers - 1) + 1):
            sub = arrival[kk + 1, rs, cs]
            np.minimum(sub, np.where(layer == kk, g, _NEVER), out=sub)
    up.terrace[sel] = layers
    arrival[1:-1] += edge  # common to all pits: added once (wavy pit edges)
    return _Arrival(arrival, iref)


def _mono_depth(
    arr: _Arrival, terrace: np.ndarray, t: float, pad_eff: int, shift: tuple[float, float]
) -> np.ndarray:
    """Layers removed by monolayer pits below the step-flow terrace, on a shifted grid.

    Arrival times are interpolated bilinearly between the four canvas neighbours, each
    read on the pixel's own layer (a neighbour where that layer is out of the window
    reads as never reached).
    """
    n = terrace.shape[0]
    n_slots, h, w_canvas = arr.time.shape
    hw = h * w_canvas
    flat = arr.time.reshape(-1)
    br = pad_eff - shift[0]
    bc = pad_eff - shift[1]
    i0 = math.floor(br)
    j0 = math.floor(bc)
    wr = br - i0
    wc = bc - j0
    if wr == 0 and wc == 0:
        corners = [((0, 0), 1.0)]
    else:
        corners = [
            ((0, 0), (1 - wr) * (1 - wc)),
            ((0, 1), (1 - wr) * wc),
            ((1, 0), wr * (1 - wc)),
            ((1, 1), wr * wc),
        ]
    idx_t = np.int32 if n_slots * hw < 2**31 else np.int64
    tl = terrace.astype(idx_t)
    iref = arr.iref.astype(idx_t, copy=False)
    base = (i0 + np.arange(n, dtype=idx_t))[:, None] * idx_t(w_canvas) + (
        j0 + np.arange(n, dtype=idx_t)
    )[None, :]
    base = base.reshape(-1)
    slots, pix, wts = [], [], []
    for (di, dj), wgt in corners:
        rs = slice(i0 + di, i0 + di + n)
        cs = slice(j0 + dj, j0 + dj + n)
        slot = tl - iref[rs, cs]
        slot += 1  # slot 0 and n_slots - 1 are sentinels
        np.clip(slot, 0, n_slots - 1, out=slot)
        slots.append(slot.reshape(-1))
        pix.append(base + idx_t(di * w_canvas + dj) if (di or dj) else base)
        wts.append(np.float32(wgt))
    # first layer on the full grid
    reach = np.zeros(n * n, dtype=np.float32)
    for slot, pc, wgt in zip(slots, pix, wts):
        val = slot * idx_t(hw)
        val += pc
        val = flat.take(val)
        if wgt != 1:
            val *= wgt
        reach += val
    active = np.flatnonzero(reach <= t)
    depth = np.zeros(n * n, dtype=np.int64)
    depth[active] = 1
    # deeper layers (pits in pits) on the few pixels still going
    for d in range(1, n_slots - 2):
        if active.size == 0:
            break
        reach = np.zeros(active.size, dtype=np.float32)
        for slot, pc, wgt in zip(slots, pix, wts):
            s = slot[active]
            s = np.where(s == 0, 0, np.minimum(s + d, n_slots - 1))
            reach += wgt * flat.take(s * idx_t(hw) + pc[active])
        active = active[reach <= t]
        depth[active] += 1
    return depth.reshape(n, n)
