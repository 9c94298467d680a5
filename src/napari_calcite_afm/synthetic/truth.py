"""Ground truth of a synthetic movie's multilayer pits, for scoring pit tracking.

:func:`pit_truth` rebuilds the surface model of a :class:`~.generators.SyntheticSeries`
from its recorded settings (``series.params``: the same seed gives the same draws; the
generator is not changed and nothing new is drawn) and reads off, for every multilayer
(dislocation) pit: its source (the fixed point it grows from, on frame 0's pixel grid),
its nucleation time, its obtuse and acute step velocities, its deepening rate, and, per
frame, its footprint (the pixels of label 1 it makes) and area. The crystal orientation
gives the directions of the obtuse and acute sides.

The model of a pit (:mod:`.crystal`, :mod:`.pits`): a pit of age ``a`` is the rhombus
``gauge(offset) + edge_noise <= a`` around its source; its two obtuse sides (outward
normals ``n1``, ``n2``) retreat at ``v_obtuse * speed`` and its two acute sides
(``-n1``, ``-n2``) at ``v_acute * speed``; a new step loop starts at the source every
``loop_interval_s``, so the pit deepens by one step height per loop interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import CalciteAFMError
from .crystal import RHOMB_ACUTE_ANGLE_DEG, _gauge
from .fields import _spawn
from .generators import SyntheticSeries
from .params import SeriesParams
from .pits import _pit_box
from .render import _MARGIN
from .surface_model import _build_model

__all__ = ["PitTruth", "SeriesTruth", "pit_truth"]


@dataclass
class PitTruth:
    """One multilayer pit of a synthetic movie.

    Attributes
    ----------
    index : int
        Position in ``params["drawn"]["multilayer_pits"]``; the pit's value in
        :attr:`SeriesTruth.footprints` is ``index + 1``.
    y_nm, x_nm : float
        Source (the pit's fixed deepest point), nm on frame 0's grid (``x`` along
        columns, ``y`` along rows, from the centre of pixel (0, 0)).
    t0_s : float
        Nucleation time, s (negative: before frame 0).
    loop_interval_s : float
        Seconds between successive step loops at the source.
    obtuse_velocity_nm_s, acute_velocity_nm_s : float
        Retreat velocities of the pit's obtuse and acute steps, nm/s.
    deepening_nm_s : float
        Step height over loop interval, nm/s.
    area_nm2 : numpy.ndarray
        float ``(frames,)``: area of the pit's footprint inside the frame, nm^2 (pixels
        of overlapping pits counted for each).
    owned_area_nm2 : numpy.ndarray
        float ``(frames,)``: area of the pixels the pit owns in the frame (where it is
        the deepest pit: its value in :attr:`SeriesTruth.footprints`), nm^2.
    full_area_nm2 : numpy.ndarray
        float ``(frames,)``: area of the whole rhombus without edge waviness,
        ``(v_o + v_a)^2 age^2 / sin 78``, nm^2 (0 before nucleation).
    touches_border : numpy.ndarray
        bool ``(frames,)``: the footprint reaches the edge of the frame (its area in
        the frame is clipped).
    """

    index: int
    y_nm: float
    x_nm: float
    t0_s: float
    loop_interval_s: float
    obtuse_velocity_nm_s: float
    acute_velocity_nm_s: float
    deepening_nm_s: float
    area_nm2: np.ndarray
    owned_area_nm2: np.ndarray
    full_area_nm2: np.ndarray
    touches_border: np.ndarray

    @property
    def visible(self) -> np.ndarray:
        """bool ``(frames,)``: frames where the pit has pixels in the frame."""
        return self.area_nm2 > 0


@dataclass
class SeriesTruth:
    """The multilayer pits and crystal kinetics of a synthetic movie (:func:`pit_truth`).

    Attributes
    ----------
    pits : list of PitTruth
        The multilayer pits, in the generator's order.
    footprints : numpy.ndarray
        int16 ``(frames, rows, cols)`` on frame 0's grid (the grid of ``series.labels``):
        ``index + 1`` of the pit that made each pixel's label 1 (the one with most loops
        there, the first on ties), 0 elsewhere.
    orientation_deg : float
        Direction of one rhombus side in the image, degrees (``SeriesParams``).
    obtuse_normals_deg, acute_normals_deg : tuple of float
        Directions of the outward normals of the obtuse and acute sides, degrees in
        [0, 360), image axes (``x`` along columns, ``y`` along rows).
    obtuse_velocity_nm_s, acute_velocity_nm_s : float
        The crystal's step velocities (each pit multiplies them by its speed factor).
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : numpy.ndarray
        Frame times, s.
    """

    pits: list[PitTruth]
    footprints: np.ndarray
    orientation_deg: float
    obtuse_normals_deg: tuple[float, float]
    acute_normals_deg: tuple[float, float]
    obtuse_velocity_nm_s: float
    acute_velocity_nm_s: float
    pixel_size_nm: float
    frame_times_s: np.ndarray

    @property
    def velocity_ratio(self) -> float:
        """Obtuse over acute step velocity (2.3 in the generator)."""
        return self.obtuse_velocity_nm_s / self.acute_velocity_nm_s


def _angle(v) -> float:
    return math.degrees(math.atan2(v[1], v[0])) % 360.0


def _rebuild_model(series: SyntheticSeries):
    """The surface model of ``series``, drawn again from its recorded settings."""
    rec = series.params
    if not isinstance(rec, dict) or "drawn" not in rec:
        raise CalciteAFMError("pit_truth needs a series made by make_series (params recorded)")
    params = SeriesParams.from_dict(rec)
    if params.seed is None:
        raise CalciteAFMError("pit_truth needs a series made with a seed (seed=None)")
    drift = np.asarray(rec["drawn"]["drift_px"], float).reshape(-1, 2)
    pad = math.ceil(float(np.abs(drift).max())) + _MARGIN + 3
    duration = (int(params.n_frames) - 1) * float(params.frame_interval_s)
    rng_model = _spawn(params.seed, 4)[0]
    model, drawn = _build_model(rng_model, params, duration_s=duration, pad=pad)
    if drawn["multilayer_pits"] != rec["drawn"]["multilayer_pits"]:  # pragma: no cover
        raise CalciteAFMError("pit_truth: the series' settings do not rebuild its model")
    return model, params


def _levels(model, k: int, t: float, xs: np.ndarray, edge: np.ndarray):
    """Loops of multilayer pit ``k`` at time ``t`` over its box: ``(box, levels)``."""
    mp = model.multi
    age = t - mp.t0[k]
    if age <= 0:
        return None
    vo = model.v_obtuse * mp.speed[k]
    va = model.v_acute * mp.speed[k]
    n = xs.size
    box = _pit_box(model, mp.x[k], mp.y[k], va * age, vo * age, xs[0], xs[0], n)
    if box is None:
        return None
    rs, cs = box
    dx = xs[cs][None, :] - mp.x[k]
    dy = xs[rs][:, None] - mp.y[k]
    g = _gauge(model, dx, dy, vo, va) + edge[rs, cs]
    return box, np.floor((age - g) / mp.tau[k]) + 1.0


def pit_truth(series: SyntheticSeries) -> SeriesTruth:
    """The true multilayer pits of a movie made by :func:`~.generators.make_series`.

    Parameters
    ----------
    series : SyntheticSeries
        A movie made with a seed (its ``params`` rebuild its surface model).

    Returns
    -------
    SeriesTruth
        Per pit: source, nucleation time, velocities, deepening rate, area per frame;
        per frame: the footprint of each pit on frame 0's grid (their union is
        ``series.labels == 1``); the crystal's obtuse and acute side normals.

    Examples
    --------
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(n_frames=3, size=64, seed=2, n_multilayer=2, pixel_size_nm=40.0)
    >>> truth = pit_truth(s)
    >>> len(truth.pits), round(truth.velocity_ratio, 2)
    (2, 2.3)
    >>> bool(np.array_equal(truth.footprints > 0, s.labels == 1))
    True
    """
    model, params = _rebuild_model(series)
    n_frames = series.n_frames
    size = int(params.size)
    p = float(params.pixel_size_nm)
    m = _MARGIN
    # the render's grid (with its margin) cropped to the frame: the same floats
    xs = ((-m * p) + np.arange(size + 2 * m) * p)[m : m + size]
    edge = model.edge_noise_s[model.pad : model.pad + size, model.pad : model.pad + size]
    times = series.frame_times_s
    mp = model.multi
    n_pits = mp.x.size
    foot = np.zeros((n_frames, size, size), np.int16)
    area = np.zeros((n_pits, n_frames))
    border = np.zeros((n_pits, n_frames), bool)
    for f, t in enumerate(times):
        best = np.zeros((size, size))
        for k in range(n_pits):
            got = _levels(model, k, float(t), xs, edge)
            if got is None:
                continue
            (rs, cs), lev = got
            inside = lev > 0
            area[k, f] = inside.sum() * p * p
            border[k, f] = bool(
                (rs.start == 0 and inside[0].any())
                or (rs.stop == size and inside[-1].any())
                or (cs.start == 0 and inside[:, 0].any())
                or (cs.stop == size and inside[:, -1].any())
            )
            win = inside & (lev > best[rs, cs])
            best[rs, cs][win] = lev[win]
            foot[f, rs, cs][win] = k + 1
    sin_a = math.sin(math.radians(RHOMB_ACUTE_ANGLE_DEG))
    owned = np.stack([np.bincount(f.ravel(), minlength=n_pits + 1) for f in foot]).astype(float)
    pits = []
    for k in range(n_pits):
        vo = model.v_obtuse * float(mp.speed[k])
        va = model.v_acute * float(mp.speed[k])
        age = np.clip(times - mp.t0[k], 0.0, None)
        pits.append(
            PitTruth(
                index=k,
                y_nm=float(mp.y[k]),
                x_nm=float(mp.x[k]),
                t0_s=float(mp.t0[k]),
                loop_interval_s=float(mp.tau[k]),
                obtuse_velocity_nm_s=vo,
                acute_velocity_nm_s=va,
                deepening_nm_s=float(params.step_height_nm) / float(mp.tau[k]),
                area_nm2=area[k],
                owned_area_nm2=owned[:, k + 1] * p * p,
                full_area_nm2=(vo + va) ** 2 * age**2 / sin_a,
                touches_border=border[k],
            )
        )
    n1, n2 = model.n1, model.n2
    return SeriesTruth(
        pits=pits,
        footprints=foot,
        orientation_deg=float(series.params["drawn"]["orientation_deg"]),
        obtuse_normals_deg=(_angle(n1), _angle(n2)),
        acute_normals_deg=(_angle((-n1[0], -n1[1])), _angle((-n2[0], -n2[1]))),
        obtuse_velocity_nm_s=float(model.v_obtuse),
        acute_velocity_nm_s=float(model.v_acute),
        pixel_size_nm=p,
        frame_times_s=np.asarray(times, float),
    )
