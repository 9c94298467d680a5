"""Synthetic in-situ AFM movies of calcite {10-14} dissolving in water, with ground truth.

The generator renders a physical model of the surface, then adds the artifacts of an AFM
scan on top of it:

Surface (``clean``, heights in nm, the frame of reference of frame 0)
    * a vicinal surface: monolayer steps (``step_height_nm``, 0.31 nm) a few per µm,
      roughly parallel and slightly wavy, each step lowering the terrace by one step
      height; the steps retreat uphill (step flow), so the surface goes down with time;
    * many monolayer rhombic etch pits (one step deep) that nucleate at random places
      and times (new ones appear frame after frame) and grow; a pit dissolves only the
      layer exposed where it nucleated (the terrace, or the floor of an older pit: pits
      in pits), so a pit that reaches the next step down opens into the lower terrace
      (it is then terrace, not a pit, in the labels), pits coalesce, whole layers get
      consumed and small islands of the layer above remain here and there; a monolayer
      pit stops growing after 1500-4000 s (long after its layer is usually consumed),
      which bounds the cost;
    * a few multilayer rhombic pits (dislocation pits): concentric step loops, one new
      loop every ``tau`` seconds at the source, so the walls are terraced, the bottom is
      pointed and the pit widens and deepens with time;
    * every rhombus has angles of 78 and 102 degrees, one crystal orientation per
      series, and asymmetric growth: obtuse steps retreat 2.3 times faster than acute
      ones, so each pit's source sits off-centre toward its acute corner (the 78 degree
      corner where the two slow, acute steps meet);
    * correlated roughness (Gaussian-filtered noise), rougher inside pits than on
      terraces.

Pits merge by union (the depth at a point is the largest depth any pit digs there), so
overlapping pits coalesce as they do on the real surface.

Artifacts (``raw`` only, see :func:`add_artifacts`)
    tilt (a plane), bow (second order), scan-line offsets (a random walk plus occasional
    jumps), scars (short bright or dark streaks along the fast scan axis), white noise,
    and drift between frames (a smooth random walk, sub-pixel).

Labels: 1 multilayer pit (its footprint, walls included), 2 terrace, 3 monolayer pit
(a closed depression one step lower than its surroundings, outside multilayer pits,
possibly with a younger pit inside it; an opened one is terrace).

Drift convention: the content of raw frame ``k`` appears displaced by
``drift_px[k] = (d_row, d_col)`` pixels with respect to frame 0, i.e. before the other
artifacts ``raw[k][r, c] == surface(t_k)`` sampled at reference position
``(r - d_row, c - d_col)``.  ``scipy.ndimage.shift(raw[k], -drift_px[k])`` registers it
back; registering ``raw[k]`` on ``raw[0]`` (e.g.
``skimage.registration.phase_cross_correlation(raw[0], raw[k])``) finds about
``-drift_px[k]`` (the surface itself changes between frames).

Speed: about 0.1 s per 512 x 512 frame for :func:`make_series` and 0.15 s for
:func:`make_frame` (one CPU core); the monolayer pits of up to 10 frames are rasterised
together, once.

Examples
--------
>>> from napari_calcite_afm.synthetic import make_series, make_frame
>>> s = make_series(n_frames=3, size=128, seed=1)
>>> s.raw.shape, s.raw.dtype, s.labels.dtype
((3, 128, 128), dtype('float32'), dtype('uint8'))
>>> s.frame_times_s
array([  0., 300., 600.])
>>> raw, clean, labels = make_frame(size=64, seed=3)
>>> raw.shape
(64, 64)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._util import stop_requested as _stopped

__all__ = [
    "LABEL_MONOLAYER",
    "LABEL_MULTILAYER",
    "LABEL_TERRACE",
    "STEP_HEIGHT_NM",
    "SyntheticSeries",
    "add_artifacts",
    "make_frame",
    "make_frames",
    "make_series",
]

#: Height of one monolayer step of calcite {10-14}, nm.
STEP_HEIGHT_NM = 0.31
#: Acute angle of the rhombic etch pits, degrees (the obtuse one is 180 minus it).
RHOMB_ACUTE_ANGLE_DEG = 78.0
#: Ratio of the retreat velocities of obtuse and acute steps (Liang, Baer, Lea 1995).
OBTUSE_TO_ACUTE_VELOCITY = 2.3

LABEL_MULTILAYER = 1
LABEL_TERRACE = 2
LABEL_MONOLAYER = 3

_REFERENCE_FRAME_S = 300.0  # monolayer nucleation densities are counted per 300 s


def _error(message: str) -> Exception:
    """The project's user-error type (``io.CalciteAFMError``), ``ValueError`` as fallback."""
    try:
        from .io import CalciteAFMError
    except ImportError:  # pragma: no cover - io not importable
        return ValueError(message)
    return CalciteAFMError(message)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _spawn(seed: int | None, n: int) -> list[np.random.Generator]:
    """Independent generators for the parts of a series (deterministic for a seed)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# --------------------------------------------------------------------------------------
# result container
# --------------------------------------------------------------------------------------


@dataclass
class SyntheticSeries:
    """A synthetic AFM time series and its ground truth.

    Attributes
    ----------
    raw : numpy.ndarray
        float32 ``(frames, rows, cols)`` heights in nm as the instrument would record
        them: the surface plus tilt, bow, scan-line offsets, scars, noise and drift.
    clean : numpy.ndarray
        float32 ``(frames, rows, cols)`` heights in nm of the artifact-free surface, all
        frames in the frame of reference of frame 0 (no drift), paired with ``labels``.
    labels : numpy.ndarray
        uint8 ``(frames, rows, cols)``: 1 multilayer pit, 2 terrace, 3 monolayer pit;
        paired pixel by pixel with ``clean``.
    pixel_size_nm : float
        Pixel size, nm per pixel.
    frame_interval_s : float
        Time between frames, s.
    drift_px : numpy.ndarray
        float ``(frames, 2)``: ``(row, col)`` displacement of the content of each raw
        frame relative to frame 0, pixels (``drift_px[0]`` is zero). See the module
        docstring for the sign convention.
    params : dict
        The generator's arguments and the values it drew for those left to chance
        (JSON-serialisable).
    labels_raw : numpy.ndarray
        uint8 labels in the drifted frame of each raw frame, so that ``raw`` and
        ``labels_raw`` pair pixel by pixel.
    """

    raw: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    pixel_size_nm: float
    frame_interval_s: float
    drift_px: np.ndarray
    params: dict = field(default_factory=dict)
    labels_raw: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.labels_raw is None:
            self.labels_raw = self.labels

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.raw.shape[0])

    @property
    def frame_times_s(self) -> np.ndarray:
        """Acquisition time of each frame, s, counted from frame 0 (float64)."""
        return np.arange(self.n_frames, dtype=np.float64) * float(self.frame_interval_s)


# --------------------------------------------------------------------------------------
# random fields
# --------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float64).

    Wide kernels are filtered on a coarser grid and interpolated back, which is much
    faster and indistinguishable for a smooth field.
    """
    sigma_px = max(float(sigma_px), 0.3)
    factor = int(max(1, sigma_px // 3))
    if factor == 1:
        noise = rng.standard_normal(shape)
        out = ndimage.gaussian_filter(noise, sigma_px, mode="wrap")
    else:
        small = (shape[0] // factor + 3, shape[1] // factor + 3)
        noise = rng.standard_normal(small)
        low = ndimage.gaussian_filter(noise, sigma_px / factor, mode="wrap")
        rows = np.arange(shape[0]) / factor
        cols = np.arange(shape[1]) / factor
        out = _bilinear_grid(low, rows, cols)
    std = out.std()
    return out / std if std > 0 else out


def _bilinear_grid(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``arr`` on the grid ``rows x cols`` (separable)."""
    r0 = np.clip(np.floor(rows).astype(np.intp), 0, arr.shape[0] - 2)
    c0 = np.clip(np.floor(cols).astype(np.intp), 0, arr.shape[1] - 2)
    wr = (rows - r0)[:, None]
    wc = (cols - c0)[None, :]
    top = arr[r0][:, c0] * (1 - wc) + arr[r0][:, c0 + 1] * wc
    bot = arr[r0 + 1][:, c0] * (1 - wc) + arr[r0 + 1][:, c0 + 1] * wc
    return top * (1 - wr) + bot * wr


def _sample_shifted(canvas: np.ndarray, pad: int, shift: tuple[float, float], size: int):
    """Values of a padded reference-frame field on a frame displaced by ``shift``.

    ``canvas[i, j]`` is the field at reference pixel ``(i - pad, j - pad)``; the result
    ``out[r, c]`` is the field at reference position ``(r - shift[0], c - shift[1])``
    (bilinear for sub-pixel shifts).
    """
    br = pad - shift[0]
    bc = pad - shift[1]
    i0 = math.floor(br)
    j0 = math.floor(bc)
    wr = br - i0
    wc = bc - j0
    a = canvas[i0 : i0 + size, j0 : j0 + size]
    if wr == 0 and wc == 0:
        return a
    b = canvas[i0 : i0 + size, j0 + 1 : j0 + 1 + size]
    c = canvas[i0 + 1 : i0 + 1 + size, j0 : j0 + size]
    d = canvas[i0 + 1 : i0 + 1 + size, j0 + 1 : j0 + 1 + size]
    return (a * (1 - wc) + b * wc) * (1 - wr) + (c * (1 - wc) + d * wc) * wr


# --------------------------------------------------------------------------------------
# the surface model
# --------------------------------------------------------------------------------------


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
class _Model:
    size: int
    pad: int
    pixel_size_nm: float
    step_height_nm: float
    # vicinal steps
    normal: tuple[float, float]  # (x, y) unit vector pointing downhill
    spacing_nm: float
    step_velocity_nm_s: float
    xi_offset_nm: float
    waviness_nm: np.ndarray  # padded canvas, nm added to the downhill coordinate
    # crystal
    n1: tuple[float, float]
    n2: tuple[float, float]
    m1: tuple[float, float]
    m2: tuple[float, float]
    v_obtuse: float
    v_acute: float
    edge_noise_s: np.ndarray  # padded canvas, s added to the pit gauge (wavy pit steps)
    multi: _Pits
    mono: _Pits
    mono_max_age_s: float  # monolayer pits stop growing at this age (bounds the cost)
    # roughness
    rough_terrace_nm: float
    rough_pit_nm: float
    rough_terrace_px: float
    rough_pit_px: float

    @property
    def canvas_size(self) -> int:
        return self.size + 2 * self.pad

    def terrace_index(self, xi: np.ndarray, t: float) -> np.ndarray:
        return np.floor((xi + self.step_velocity_nm_s * t) / self.spacing_nm)

    def corners_extent(self, ext_lo: float, ext_hi: float) -> tuple[float, float, float, float]:
        """Bounding box (dx_min, dx_max, dy_min, dy_max), nm, of a pit around its source."""
        xs, ys = [], []
        for a in (-ext_lo, ext_hi):
            for b in (-ext_lo, ext_hi):
                xs.append(a * self.m1[0] + b * self.m2[0])
                ys.append(a * self.m1[1] + b * self.m2[1])
        return min(xs), max(xs), min(ys), max(ys)


def _crystal_axes(orientation_deg: float):
    """Normals and dual vectors of the rhombus sides for a crystal orientation."""
    phi = math.radians(orientation_deg)
    theta = math.radians(RHOMB_ACUTE_ANGLE_DEG)
    e1 = np.array([math.cos(phi), math.sin(phi)])
    e2 = np.array([math.cos(phi + theta), math.sin(phi + theta)])
    n1 = np.array([-e2[1], e2[0]])  # perpendicular to e2
    if n1 @ e1 < 0:
        n1 = -n1
    n2 = np.array([-e1[1], e1[0]])  # perpendicular to e1
    if n2 @ e2 < 0:
        n2 = -n2
    m = np.linalg.inv(np.array([n1, n2]))  # columns: m1, m2 with n_i . m_j = delta_ij
    m1, m2 = m[:, 0], m[:, 1]
    return tuple(n1), tuple(n2), tuple(m1), tuple(m2)


def _draw_drift(rng: np.random.Generator, n_frames: int, scale_px: float) -> np.ndarray:
    """Smooth random walk of the frame position, ``(frames, 2)`` pixels."""
    drift = np.zeros((n_frames, 2))
    if n_frames < 2 or scale_px <= 0:
        return drift
    v_const = rng.normal(0.0, 0.8 * scale_px, 2)
    v = np.zeros(2)
    for k in range(1, n_frames):
        v = 0.7 * v + rng.normal(0.0, 0.6 * scale_px, 2)
        drift[k] = drift[k - 1] * 0.98 + v + v_const
    return drift


def _build_model(
    rng: np.random.Generator,
    *,
    size: int,
    pixel_size_nm: float,
    duration_s: float,
    pad: int,
    n_multilayer: int | None,
    monolayer_density_per_um2: float | None,
    step_height_nm: float,
    step_density_per_um: float | None,
    orientation_deg: float | None,
    step_velocity_nm_s: float | None,
    roughness: float | None,
) -> tuple[_Model, dict]:
    """Draw every random property of a series (deterministic for a given ``rng``)."""
    p = float(pixel_size_nm)
    n_canvas = size + 2 * pad
    extent_nm = size * p
    area_um2 = (extent_nm / 1000.0) ** 2
    drawn: dict[str, Any] = {}

    # --- crystal and kinetics -----------------------------------------------------------
    if orientation_deg is None:
        orientation_deg = float(rng.uniform(0.0, 360.0))
    n1, n2, m1, m2 = _crystal_axes(orientation_deg)
    if step_velocity_nm_s is None:
        step_velocity_nm_s = _loguniform(rng, 0.12, 0.45)
    v_obtuse = float(step_velocity_nm_s)
    v_acute = v_obtuse / OBTUSE_TO_ACUTE_VELOCITY
    drawn["orientation_deg"] = float(orientation_deg)
    drawn["obtuse_step_velocity_nm_s"] = v_obtuse
    drawn["acute_step_velocity_nm_s"] = v_acute

    # --- vicinal steps -------------------------------------------------------------------
    if step_density_per_um is None:
        step_density_per_um = _loguniform(rng, 0.8, 5.0)
    spacing = 1000.0 / float(step_density_per_um)
    downhill = float(rng.uniform(0.0, 2 * math.pi))
    normal = (math.cos(downhill), math.sin(downhill))
    v_step = float(rng.uniform(v_acute, 0.5 * (v_acute + v_obtuse)))
    wav_len = float(rng.uniform(120.0, 450.0))  # nm, correlation length of the waviness
    wav_amp = float(rng.uniform(0.12, 0.3)) * min(wav_len, 1.5 * spacing)
    waviness = wav_amp * _smooth_noise(rng, (n_canvas, n_canvas), wav_len / p)
    fine_len = float(rng.uniform(25.0, 60.0))
    waviness += float(rng.uniform(2.0, 6.0)) * _smooth_noise(
        rng, (n_canvas, n_canvas), fine_len / p
    )
    centre = 0.5 * (size - 1) * p
    xi_offset = -(centre * normal[0] + centre * normal[1]) + float(rng.uniform(0, spacing))
    drawn.update(
        step_density_per_um=float(step_density_per_um),
        step_downhill_deg=math.degrees(downhill),
        step_retreat_velocity_nm_s=v_step,
        step_waviness_nm=wav_amp,
        step_waviness_length_nm=wav_len,
    )

    # --- pit edge waviness (shared by all pits) -----------------------------------------
    edge_amp_nm = float(rng.uniform(1.0, 3.5))
    edge_noise_s = (edge_amp_nm / v_acute) * _smooth_noise(
        rng, (n_canvas, n_canvas), float(rng.uniform(20.0, 50.0)) / p
    )

    # --- multilayer pits ------------------------------------------------------------------
    if n_multilayer is None:
        mean = rng.uniform(1.0, 4.0) * area_um2 / 36.0
        n_multilayer = max(1, int(rng.poisson(mean)))
    n_multilayer = int(n_multilayer)
    mx = rng.uniform(0.1, 0.9, n_multilayer) * extent_nm
    my = rng.uniform(0.1, 0.9, n_multilayer) * extent_nm
    # most are there before the movie starts, some appear during it
    early = rng.uniform(-4000.0, -500.0, n_multilayer)
    late = rng.uniform(0.0, 0.4 * max(duration_s, 1.0), n_multilayer)
    mt0 = np.where(rng.random(n_multilayer) < 0.8, early, late)
    mtau = np.exp(rng.uniform(math.log(25.0), math.log(300.0), n_multilayer))
    mspeed = rng.uniform(0.8, 1.25, n_multilayer)
    multi = _Pits(mx, my, mt0, mspeed, mtau, np.zeros(n_multilayer))
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

    # --- monolayer pits -------------------------------------------------------------------
    if monolayer_density_per_um2 is None:
        monolayer_density_per_um2 = _loguniform(rng, 0.5, 5.0)
    pre_s = float(min(2500.0, 1.2 * spacing / v_step))
    t_lo, t_hi = -pre_s, float(duration_s)
    margin_nm = pad * p + 60.0
    span_nm = extent_nm + 2 * margin_nm
    rate = float(monolayer_density_per_um2) / _REFERENCE_FRAME_S  # per um2 per s
    expected = rate * (span_nm / 1000.0) ** 2 * (t_hi - t_lo)
    n_mono = int(rng.poisson(expected))
    ux = rng.uniform(-margin_nm, extent_nm + margin_nm, n_mono)
    uy = rng.uniform(-margin_nm, extent_nm + margin_nm, n_mono)
    ut0 = np.sort(rng.uniform(t_lo, t_hi, n_mono))
    uspeed = rng.uniform(0.85, 1.15, n_mono)
    # pits stop growing (bounding the cost) well after their layer is typically consumed
    consume_s = (rate / 1e6 * v_obtuse * v_acute) ** (-1.0 / 3.0) if rate > 0 else 1e9
    max_age = float(np.clip(1.5 * consume_s, 1500.0, 4000.0))
    drawn["monolayer_density_per_um2"] = float(monolayer_density_per_um2)
    drawn["n_monolayer_nucleated"] = n_mono

    # --- roughness --------------------------------------------------------------------------
    if roughness is None:
        roughness = float(rng.uniform(0.015, 0.05))
    rough_terrace = float(roughness)
    rough_pit = rough_terrace * float(rng.uniform(1.6, 3.0))
    rough_terrace_px = float(rng.uniform(8.0, 18.0)) / p
    rough_pit_px = float(rng.uniform(15.0, 35.0)) / p
    drawn.update(
        roughness_terrace_nm=rough_terrace,
        roughness_pit_nm=rough_pit,
        n_multilayer=n_multilayer,
    )

    model = _Model(
        size=size,
        pad=pad,
        pixel_size_nm=p,
        step_height_nm=float(step_height_nm),
        normal=normal,
        spacing_nm=spacing,
        step_velocity_nm_s=v_step,
        xi_offset_nm=xi_offset,
        waviness_nm=waviness,
        n1=n1,
        n2=n2,
        m1=m1,
        m2=m2,
        v_obtuse=v_obtuse,
        v_acute=v_acute,
        edge_noise_s=edge_noise_s,
        multi=multi,
        mono=_Pits(ux, uy, ut0, uspeed, np.full(n_mono, np.inf), np.full(n_mono, np.nan)),
        mono_max_age_s=max_age,
        rough_terrace_nm=rough_terrace,
        rough_pit_nm=rough_pit,
        rough_terrace_px=rough_terrace_px,
        rough_pit_px=rough_pit_px,
    )
    # the terrace each monolayer pit nucleates on, at its nucleation time
    return model, drawn


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


def _gauge(model: _Model, dx: np.ndarray, dy: np.ndarray, v_obtuse: float, v_acute: float):
    """Time (s) a pit's steps need to reach offset ``(dx, dy)`` nm from its source.

    The rhombus of age ``a`` is ``gauge <= a``: its two acute (slow) sides meet at the
    78 degree corner, its two obtuse (fast) sides at the opposite one.
    """
    dt = dx.dtype
    p1 = dx * dt.type(model.n1[0]) + dy * dt.type(model.n1[1])
    p2 = dx * dt.type(model.n2[0]) + dy * dt.type(model.n2[1])
    fo = dt.type(1.0 / v_obtuse)
    fa = dt.type(-1.0 / v_acute)
    return np.maximum(np.maximum(p1 * fo, p1 * fa), np.maximum(p2 * fo, p2 * fa))


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


_NESTING = 4  # layers a stack of monolayer pits (a pit in a pit...) may reach below step flow
_NEVER = np.float32(1e12)


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
    wav_max = float(np.abs(model.waviness_nm).max()) + 1.0
    max_age = model.mono_max_age_s

    # every pit's bounding box at its (capped) age at the end of the window, vectorised
    sel = np.nonzero(up.t0 < t_hi)[0]  # sorted by nucleation time
    age = np.minimum(t_hi - up.t0[sel], max_age)
    vo = model.v_obtuse * up.speed[sel]
    va = model.v_acute * up.speed[sel]
    cx = [
        a * model.m1[0] + b * model.m2[0]
        for a in (-va * age, vo * age)
        for b in (-va * age, vo * age)
    ]
    cy = [
        a * model.m1[1] + b * model.m2[1]
        for a in (-va * age, vo * age)
        for b in (-va * age, vo * age)
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
    t0s, layers = up.t0[sel].tolist(), up.terrace[sel].tolist()
    xs, ys = up.x[sel].astype(np.float32), up.y[sel].astype(np.float32)
    arrays = (c0, c1, r0, r1, inside, xi_lo, ref_lo, ref_hi, vo, va)
    fields = [a.tolist() for a in (*arrays, src_r, src_c, src_ref, src_i0, src_edge)]
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
    ) in enumerate(zip(*fields)):
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


def _gauge_outer(model: _Model, dy: np.ndarray, dx: np.ndarray, v_obtuse: float, v_acute: float):
    """:func:`_gauge` on the grid ``dy (rows) x dx (cols)``: the largest of four linear
    functions, each an outer sum (float32, few passes over the box)."""
    f32 = np.float32
    g = None
    for n, f in (
        (model.n1, 1.0 / v_obtuse),
        (model.n1, -1.0 / v_acute),
        (model.n2, 1.0 / v_obtuse),
        (model.n2, -1.0 / v_acute),
    ):
        term = np.add.outer(dy * f32(n[1] * f), dx * f32(n[0] * f))
        g = term if g is None else np.maximum(g, term, out=g)
    return g


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


_CHUNK = 10  # frames whose monolayer pits are rasterised together
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

    Hidden pixels: see :func:`make_frame` (``return_hidden``).
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
        levels = np.floor((age - g) / mp.tau[k]) + 1.0
        np.maximum(n_multi[rs, cs], levels, out=n_multi[rs, cs])

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


# --------------------------------------------------------------------------------------
# artifacts
# --------------------------------------------------------------------------------------


def add_artifacts(
    surface: np.ndarray,
    rng: np.random.Generator | int | None,
    *,
    tilt_nm: float | None = None,
    bow_nm: float | None = None,
    row_offset_nm: float | None = None,
    n_scars: int | None = None,
    noise_nm: float | None = None,
    tilt_direction_deg: float | None = None,
) -> np.ndarray:
    """Add AFM scan artifacts to one frame.

    Parameters
    ----------
    surface : numpy.ndarray
        One frame ``(rows, cols)`` of heights, nm. NaN stays NaN.
    rng : numpy.random.Generator or int or None
        Random generator or seed.
    tilt_nm : float, optional
        Sample tilt: the rise of the plane across the frame along its direction, nm.
        Default: drawn in [10, 40] nm. 0 disables it.
    bow_nm : float, optional
        Peak-to-peak height of the second-order (bow) background, nm. Default: drawn in
        [1, 5] nm. 0 disables it.
    row_offset_nm : float, optional
        Typical size of the occasional jumps of the scan-line offsets, nm (the offsets
        also follow a random walk with steps of ``row_offset_nm / 15``). Default: drawn
        in [0.2, 1] nm. 0 disables row offsets.
    n_scars : int, optional
        Number of scars (streaks along a row, 1-3 rows thick, 10-100 pixels long,
        bright or dark, 1-4 nm). Default: drawn in [2, 12].
    noise_nm : float, optional
        Standard deviation of the white noise, nm. Default: drawn in [0.03, 0.08] nm.
    tilt_direction_deg : float, optional
        Direction of the tilt's gradient in the image (0 = along columns, i.e. to the
        right; 90 = down the rows). Default: random.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, cols)``: the raw frame, nm.

    Examples
    --------
    >>> import numpy as np
    >>> raw = add_artifacts(np.zeros((64, 64), np.float32), 0, tilt_nm=20.0, n_scars=0)
    >>> raw.dtype, float(raw.max() - raw.min()) > 10
    (dtype('float32'), True)
    """
    surface = np.asarray(surface)
    if surface.ndim != 2:
        raise _error(f"add_artifacts expects one frame (rows, cols), got shape {surface.shape}")
    rng = _as_rng(rng)
    rows, cols = surface.shape
    if tilt_nm is None:
        tilt_nm = float(rng.uniform(10.0, 40.0))
    if bow_nm is None:
        bow_nm = float(rng.uniform(1.0, 5.0))
    if row_offset_nm is None:
        row_offset_nm = float(rng.uniform(0.2, 1.0))
    if n_scars is None:
        n_scars = int(rng.integers(2, 13))
    if noise_nm is None:
        noise_nm = float(rng.uniform(0.03, 0.08))
    if tilt_direction_deg is None:
        tilt_direction_deg = float(rng.uniform(0.0, 360.0))

    yn = (np.arange(rows, dtype=np.float64) / max(rows - 1, 1) - 0.5)[:, None]
    xn = (np.arange(cols, dtype=np.float64) / max(cols - 1, 1) - 0.5)[None, :]
    ang = math.radians(tilt_direction_deg)
    bg = float(tilt_nm) * (xn * math.cos(ang) + yn * math.sin(ang))
    if bow_nm:
        a, b = rng.uniform(0.6, 1.0, 2)
        c = rng.uniform(-0.4, 0.4)
        bow = a * xn**2 + b * yn**2 + c * xn * yn
        bow = bow - bow.min()
        bow *= float(bow_nm) / max(float(bow.max()), 1e-12)
        bg = bg + (bow if rng.random() < 0.5 else -bow)

    offsets = np.zeros(rows)
    if row_offset_nm:
        walk = np.cumsum(rng.normal(0.0, row_offset_nm / 15.0, rows))
        jumps = np.where(
            rng.random(rows) < rng.uniform(0.005, 0.03),
            rng.choice([-1.0, 1.0], rows) * rng.uniform(0.4, 1.2, rows) * row_offset_nm,
            0.0,
        )
        glitches = np.where(
            rng.random(rows) < 0.01,
            rng.choice([-1.0, 1.0], rows) * rng.uniform(0.5, 1.5, rows) * row_offset_nm,
            0.0,
        )
        offsets = walk + np.cumsum(jumps) + glitches
        offsets -= offsets.mean()
    out = surface.astype(np.float64) + bg + offsets[:, None]

    for _ in range(int(n_scars)):
        thick = int(rng.integers(1, 4))
        length = int(rng.integers(10, 101))
        r = int(rng.integers(0, max(rows - thick, 1)))
        c = int(rng.integers(-length // 2, cols))
        amp = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 4.0))
        c0, c1 = max(c, 0), min(c + length, cols)
        if c1 <= c0:
            continue
        profile = amp * (1.0 + 0.15 * rng.standard_normal(c1 - c0))
        out[r : r + thick, c0:c1] += profile[None, :]

    if noise_nm:
        out += rng.normal(0.0, float(noise_nm), out.shape)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------
# public generators
# --------------------------------------------------------------------------------------


def _check_args(n_frames: int, size: int, pixel_size_nm: float, frame_interval_s: float):
    if int(n_frames) < 1:
        raise _error(f"n_frames must be at least 1, got {n_frames}")
    if int(size) < 8:
        raise _error(f"size must be at least 8 pixels, got {size}")
    if not pixel_size_nm > 0:
        raise _error(f"pixel_size_nm must be positive, got {pixel_size_nm}")
    if not frame_interval_s > 0:
        raise _error(f"frame_interval_s must be positive, got {frame_interval_s}")


def make_series(
    n_frames: int = 10,
    size: int = 512,
    *,
    pixel_size_nm: float = 11.7,
    frame_interval_s: float = 300.0,
    seed: int | None = 0,
    n_multilayer: int | None = None,
    monolayer_density_per_um2: float | None = None,
    step_height_nm: float = STEP_HEIGHT_NM,
    noise_nm: float | None = None,
    artifacts: bool = True,
    drift: bool = True,
    scars: bool = True,
    roughness: float | None = None,
    step_density_per_um: float | None = None,
    orientation_deg: float | None = None,
    step_velocity_nm_s: float | None = None,
    drift_px_per_frame: float = 1.5,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
) -> SyntheticSeries:
    """Generate an in-situ AFM movie of calcite {10-14} dissolving in water.

    Parameters left to ``None`` are drawn from realistic ranges with the seed, so that
    different seeds give different surfaces (orientation, step density, pit counts,
    depths, kinetics, roughness, artifacts).

    Parameters
    ----------
    n_frames : int
        Number of frames.
    size : int
        Frame size, pixels (frames are square ``size x size``).
    pixel_size_nm : float
        Pixel size, nm (11.7 nm: a 6 µm frame of 512 pixels).
    frame_interval_s : float
        Time between frames, s.
    seed : int or None
        Seed of the random generator; the same seed gives the same series.
    n_multilayer : int, optional
        Number of multilayer (dislocation) pits. Default: 1-4 per 36 µm² (at least 1).
    monolayer_density_per_um2 : float, optional
        Monolayer pits nucleated per µm² per 300 s (whatever ``frame_interval_s``).
        Default: drawn in [0.5, 5] (log-uniform).
    step_height_nm : float
        Height of one monolayer step, nm.
    noise_nm : float, optional
        White noise of the raw frames (standard deviation), nm. Default: drawn in
        [0.03, 0.08] nm.
    artifacts : bool
        Add tilt, bow, scan-line offsets, scars and noise to ``raw``. If False (and no
        drift), ``raw`` equals ``clean``.
    drift : bool
        Displace the raw frames by a smooth random walk (``drift_px``).
    scars : bool
        Add scars to the raw frames (only with ``artifacts``).
    roughness : float, optional
        RMS roughness of the terraces, nm (pits are 1.6-3 times rougher). 0 gives a
        surface made only of whole steps. Default: drawn in [0.015, 0.05] nm.
    step_density_per_um : float, optional
        Vicinal steps per µm. Default: drawn in [0.8, 5] (log-uniform).
    orientation_deg : float, optional
        Direction of one rhombus side in the image, degrees. Default: random.
    step_velocity_nm_s : float, optional
        Retreat velocity of obtuse steps, nm/s (acute steps are 2.3 times slower).
        Default: drawn in [0.12, 0.45] nm/s (log-uniform).
    drift_px_per_frame : float
        Scale of the drift, pixels per frame.
    progress : callable, optional
        Called after each frame with ``{"frame": k, "n_frames": n}``.
    stop : callable or threading.Event, optional
        When it returns True (is set), generation stops and the frames made so far are
        returned.

    Returns
    -------
    SyntheticSeries
        Raw frames, clean frames, labels (clean and raw frame of reference), drift and
        parameters.

    Examples
    --------
    >>> s = make_series(n_frames=4, size=96, seed=7, n_multilayer=1)
    >>> s.clean.shape, s.drift_px.shape
    ((4, 96, 96), (4, 2))
    >>> sorted(set(s.labels.ravel().tolist())) <= [1, 2, 3]
    True
    >>> bool((s.labels == 1).sum(axis=(1, 2))[-1] >= (s.labels == 1).sum(axis=(1, 2))[0])
    True
    """
    _check_args(n_frames, size, pixel_size_nm, frame_interval_s)
    n_frames = int(n_frames)
    size = int(size)
    args = {
        "n_frames": n_frames,
        "size": size,
        "pixel_size_nm": float(pixel_size_nm),
        "frame_interval_s": float(frame_interval_s),
        "seed": seed,
        "n_multilayer": n_multilayer,
        "monolayer_density_per_um2": monolayer_density_per_um2,
        "step_height_nm": float(step_height_nm),
        "noise_nm": noise_nm,
        "artifacts": bool(artifacts),
        "drift": bool(drift),
        "scars": bool(scars),
        "roughness": roughness,
        "step_density_per_um": step_density_per_um,
        "orientation_deg": orientation_deg,
        "step_velocity_nm_s": step_velocity_nm_s,
        "drift_px_per_frame": float(drift_px_per_frame),
    }
    rng_model, rng_drift, rng_rough, rng_art = _spawn(seed, 4)

    drift_px = _draw_drift(rng_drift, n_frames, drift_px_per_frame if drift else 0.0)
    pad = math.ceil(float(np.abs(drift_px).max())) + _MARGIN + 3
    duration = (n_frames - 1) * float(frame_interval_s)
    model, drawn = _build_model(
        rng_model,
        size=size,
        pixel_size_nm=float(pixel_size_nm),
        duration_s=duration,
        pad=pad,
        n_multilayer=n_multilayer,
        monolayer_density_per_um2=monolayer_density_per_um2,
        step_height_nm=step_height_nm,
        step_density_per_um=step_density_per_um,
        orientation_deg=orientation_deg,
        step_velocity_nm_s=step_velocity_nm_s,
        roughness=roughness,
    )

    # series-level artifact settings, jittered per frame
    if noise_nm is None:
        noise_nm = float(rng_art.uniform(0.03, 0.08))
    tilt = float(rng_art.uniform(10.0, 40.0))
    tilt_dir = float(rng_art.uniform(0.0, 360.0))
    bow = float(rng_art.uniform(1.0, 5.0))
    row_off = float(rng_art.uniform(0.2, 1.0))
    scar_rate = float(rng_art.uniform(2.0, 10.0))
    drawn.update(
        noise_nm=float(noise_nm),
        tilt_nm=tilt,
        tilt_direction_deg=tilt_dir,
        bow_nm=bow,
        row_offset_nm=row_off,
        drift_px=drift_px.tolist(),
    )

    shape = (n_frames, size, size)
    raw = np.empty(shape, np.float32)
    clean = np.empty(shape, np.float32)
    labels = np.empty(shape, np.uint8)
    labels_raw = np.empty(shape, np.uint8)
    canvas = (model.canvas_size, model.canvas_size)
    rough_t = rough_p = None
    done = 0
    arrival = None
    for k in range(n_frames):
        if _stopped(stop):
            break
        t = k * float(frame_interval_s)
        if k % _CHUNK == 0:  # monolayer pits rasterised once per chunk of frames
            t_end = min(k + _CHUNK - 1, n_frames - 1) * float(frame_interval_s)
            arrival = _mono_arrival(model, t, t_end)
        if model.rough_terrace_nm > 0:
            new_t = _smooth_noise(rng_rough, canvas, model.rough_terrace_px)
            new_p = _smooth_noise(rng_rough, canvas, model.rough_pit_px)
            if rough_t is None:
                rough_t, rough_p = new_t, new_p
            else:  # partly correlated from frame to frame
                rough_t = 0.6 * rough_t + 0.8 * new_t
                rough_p = 0.6 * rough_p + 0.8 * new_p
        clean[k], labels[k], _ = _render(model, t, (0.0, 0.0), arrival, rough_t, rough_p)
        shift = (float(drift_px[k, 0]), float(drift_px[k, 1]))
        if shift != (0.0, 0.0):
            surf, labels_raw[k], _ = _render(model, t, shift, arrival, rough_t, rough_p)
        else:
            surf, labels_raw[k] = clean[k], labels[k]
        if artifacts:
            raw[k] = add_artifacts(
                surf,
                rng_art,
                tilt_nm=tilt * float(rng_art.uniform(0.95, 1.05)),
                tilt_direction_deg=tilt_dir + float(rng_art.normal(0.0, 2.0)),
                bow_nm=bow * float(rng_art.uniform(0.9, 1.1)),
                row_offset_nm=row_off,
                n_scars=int(rng_art.poisson(scar_rate)) if scars else 0,
                noise_nm=noise_nm,
            )
        else:
            raw[k] = surf
        done = k + 1
        if progress is not None:
            progress({"frame": k, "n_frames": n_frames})

    drawn["n_frames_generated"] = done
    params = {**args, "drawn": drawn}
    return SyntheticSeries(
        raw=raw[:done],
        clean=clean[:done],
        labels=labels[:done],
        pixel_size_nm=float(pixel_size_nm),
        frame_interval_s=float(frame_interval_s),
        drift_px=drift_px[:done],
        params=params,
        labels_raw=labels_raw[:done],
    )


def make_frame(
    size: int = 512,
    *,
    seed: int | None = 0,
    time_s: float | None = None,
    n_frames: int = 10,
    return_hidden: bool = False,
    **kw: Any,
) -> tuple[np.ndarray, ...]:
    """One frame at a random time point of a random series (for training sets).

    Renders only the requested frame, so it is about as fast as one frame of
    :func:`make_series`. There is no drift: ``raw``, ``clean`` and ``labels`` pair pixel
    by pixel.

    Parameters
    ----------
    size : int
        Frame size, pixels.
    seed : int or None
        Seed; the same seed gives the same frame, different seeds give different
        surfaces (every ``None`` parameter of :func:`make_series` is drawn).
    time_s : float, optional
        Time of the frame since the start of the movie, s. Default: drawn uniformly in
        ``[0, (n_frames - 1) * frame_interval_s]``.
    n_frames : int
        Length of the notional movie the time is drawn from.
    return_hidden : bool
        Also return the *hidden* multilayer-pit pixels (see Returns).
    **kw
        Any keyword of :func:`make_series` (``pixel_size_nm``, ``frame_interval_s``,
        ``n_multilayer``, ``monolayer_density_per_um2``, ``step_height_nm``,
        ``noise_nm``, ``artifacts``, ``scars``, ``roughness``, ``step_density_per_um``,
        ``orientation_deg``, ``step_velocity_nm_s``; ``drift`` and
        ``drift_px_per_frame`` are accepted and ignored: one frame has no drift).

    Returns
    -------
    raw : numpy.ndarray
        float32 ``(size, size)`` heights with artifacts, nm.
    clean : numpy.ndarray
        float32 ``(size, size)`` artifact-free heights, nm.
    labels : numpy.ndarray
        uint8 ``(size, size)``: 1 multilayer pit, 2 terrace, 3 monolayer pit.
    hidden : numpy.ndarray
        Only with ``return_hidden``: bool ``(size, size)``, True on the multilayer-pit
        pixels (label 1) whose height the pit did not set, because monolayer pits, or
        the layers they consumed, dug at least as deep there. Label 1 follows the pit's
        footprint (its outermost step loop), but there that footprint leaves no trace
        in the topography: the surface would be the same without the pit. A method can
        only guess these pixels from the shape of the rest of the pit; benchmarks
        report scores with and without them.

    Examples
    --------
    >>> raw, clean, labels = make_frame(size=64, seed=5, time_s=600.0)
    >>> raw.shape == clean.shape == labels.shape == (64, 64)
    True
    >>> raw, clean, labels, hidden = make_frame(size=256, seed=5, return_hidden=True)
    >>> bool(hidden.any()), bool(np.all(labels[hidden] == 1))
    (True, True)
    """
    allowed = {
        "pixel_size_nm",
        "frame_interval_s",
        "n_multilayer",
        "monolayer_density_per_um2",
        "step_height_nm",
        "noise_nm",
        "artifacts",
        "scars",
        "roughness",
        "step_density_per_um",
        "orientation_deg",
        "step_velocity_nm_s",
        "drift",
        "drift_px_per_frame",
    }
    unknown = set(kw) - allowed
    if unknown:
        raise _error(f"make_frame got unknown option(s): {', '.join(sorted(unknown))}")
    pixel_size_nm = float(kw.get("pixel_size_nm", 11.7))
    frame_interval_s = float(kw.get("frame_interval_s", 300.0))
    _check_args(n_frames, size, pixel_size_nm, frame_interval_s)
    size = int(size)
    rng_model, rng_rough, rng_art = _spawn(seed, 3)
    duration = (int(n_frames) - 1) * frame_interval_s
    if time_s is None:
        time_s = float(rng_art.uniform(0.0, duration)) if duration > 0 else 0.0
    model, _ = _build_model(
        rng_model,
        size=size,
        pixel_size_nm=pixel_size_nm,
        duration_s=duration,
        pad=_MARGIN + 2,
        n_multilayer=kw.get("n_multilayer"),
        monolayer_density_per_um2=kw.get("monolayer_density_per_um2"),
        step_height_nm=float(kw.get("step_height_nm", STEP_HEIGHT_NM)),
        step_density_per_um=kw.get("step_density_per_um"),
        orientation_deg=kw.get("orientation_deg"),
        step_velocity_nm_s=kw.get("step_velocity_nm_s"),
        roughness=kw.get("roughness"),
    )
    rough_t = rough_p = None
    if model.rough_terrace_nm > 0:
        canvas = (model.canvas_size, model.canvas_size)
        rough_t = _smooth_noise(rng_rough, canvas, model.rough_terrace_px)
        rough_p = _smooth_noise(rng_rough, canvas, model.rough_pit_px)
    arrival = _mono_arrival(model, float(time_s), float(time_s))
    clean, labels, hidden = _render(model, float(time_s), (0.0, 0.0), arrival, rough_t, rough_p)
    if kw.get("artifacts", True):
        raw = add_artifacts(
            clean,
            rng_art,
            noise_nm=kw.get("noise_nm"),
            n_scars=None if kw.get("scars", True) else 0,
        )
    else:
        raw = clean.copy()
    if return_hidden:
        return raw, clean, labels, hidden
    return raw, clean, labels


def _raw_and_labels(size: int, seed: int, hidden: bool = False) -> tuple[np.ndarray, ...]:
    raw, _clean, labels, mask = make_frame(size, seed=seed, return_hidden=True)
    return (raw, labels, mask) if hidden else (raw, labels)


def make_frames(
    n: int, size: int = 512, *, seed0: int = 0, jobs: int = 1, return_hidden: bool = False
) -> tuple[np.ndarray, ...]:
    """``n`` independent training frames, :func:`make_frame` with seeds ``seed0 + i``.

    Parameters
    ----------
    n : int
        Number of frames.
    size : int
        Frame size, pixels.
    seed0 : int
        Seed of the first frame; frame ``i`` has seed ``seed0 + i``.
    jobs : int
        Processes generating the frames. Each frame depends on its seed alone, so any
        number of jobs gives the same frames.
    return_hidden : bool
        Also return the hidden multilayer-pit pixels (:func:`make_frame`).

    Returns
    -------
    raw : numpy.ndarray
        float32 ``(n, size, size)`` heights with artifacts, nm.
    labels : numpy.ndarray
        uint8 ``(n, size, size)``: 1 multilayer pit, 2 terrace, 3 monolayer pit.
    hidden : numpy.ndarray
        Only with ``return_hidden``: bool ``(n, size, size)``.

    Examples
    --------
    >>> raw, labels = make_frames(2, 48, seed0=7)
    >>> raw.shape == labels.shape == (2, 48, 48)
    True
    """
    seeds = range(int(seed0), int(seed0) + int(n))
    if jobs > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(int(jobs)) as pool:
            pairs = list(
                pool.map(
                    _raw_and_labels,
                    [size] * len(seeds),
                    seeds,
                    [return_hidden] * len(seeds),
                    chunksize=4,
                )
            )
    else:
        pairs = [_raw_and_labels(size, s, return_hidden) for s in seeds]
    shape = (len(pairs), size, size)
    raw = np.stack([p[0] for p in pairs]) if pairs else np.zeros(shape, np.float32)
    labels = np.stack([p[1] for p in pairs]) if pairs else np.zeros(shape, np.uint8)
    if return_hidden:
        hidden = np.stack([p[2] for p in pairs]) if pairs else np.zeros(shape, bool)
        return raw, labels, hidden
    return raw, labels
