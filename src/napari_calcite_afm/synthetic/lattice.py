"""The cellular model of calcite dissolution: an integer height lattice of monolayers.

The surface is a lattice of crystal *columns* whose axes ``e1``, ``e2`` run along the two
step directions of calcite {10-14}, 78 degrees apart (an oblique lattice, cell side
``cell_nm``). Each cell holds its *depth*: the number of monolayers (0.31 nm) dissolved
there. The lattice is periodic with a height offset (helical boundaries): the cell
``(i + Ni, j)`` is ``Ki`` layers deeper than ``(i, j)``, so a vicinal staircase runs on
without edges.

Dissolution is a probabilistic cellular automaton, one *sweep* at a time. A cell is
removed (its depth grows by one layer) only where a neighbour is already lower, i.e. at a
step:

* a cell with two or more lower neighbours (a kink, or a corner) is removed with
  probability ``pk`` (kinks propagate along the steps);
* a cell on a straight step (one lower neighbour) is removed with a small probability,
  ``qo`` where the step retreats towards ``+e1`` or ``+e2`` (obtuse steps) and ``qa``
  where it retreats towards ``-e1`` or ``-e2`` (acute steps): kink-pair nucleation, the
  slow part of step retreat.

Straight steps along the lattice axes are therefore slow and kinked ones fast, so
etch pits grow as lattice rectangles, i.e. rhombi with 78 and 102 degree corners in the
image, their obtuse sides faster than their acute ones (the velocity of a long straight
step is calibrated in :data:`_VELOCITY_TABLE`): neither the shape nor the off-centre
source is drawn. A smooth *reactivity* field (impurities, strain) scales the rates from
place to place, which makes the steps wavy and the pits irregular; dislocation cores
are more reactive around them.

Pits: dislocation cores remove one more layer every ``tau`` seconds (multilayer pits
whose loops then spread by the rules above); monolayer pits nucleate as one removed cell
at random places and times.

Each cell also remembers what dissolved its top layer (:data:`MADE_BY_STEP`,
:data:`MADE_BY_MULTI`, :data:`MADE_BY_MONO`), passed on by the rules: a cell takes the
maker its lower neighbours share, or the step's when one of them is terrace (so a step
that meets a pit does not become part of it), and keeps :data:`VISITED` once a
multilayer pit dissolved it. The labels follow from depths and flags
(:mod:`.lattice_render`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .crystal import RHOMB_ACUTE_ANGLE_DEG

#: Velocity of a long straight step, cells per sweep, against the removal probability of a
#: straight-step cell ``q`` (rows: kink probability ``pk`` of :data:`_PK_GRID`; columns: ``q``
#: of :data:`_Q_GRID`). Measured once with this automaton on a 4096-cell step over 1300
#: sweeps; ``v`` grows about as ``1.33 sqrt(q pk)`` for small ``q`` (polynuclear step flow).
_Q_GRID = np.array([0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128])
_PK_GRID = np.array([0.5, 0.75, 1.0])
_VELOCITY_TABLE = np.array(
    [
        [0.0425, 0.0607, 0.0848, 0.1172, 0.1632, 0.2267, 0.3224],
        [0.0524, 0.0727, 0.1028, 0.1436, 0.1971, 0.2725, 0.3715],
        [0.0602, 0.0836, 0.1184, 0.1627, 0.2259, 0.3080, 0.4179],
    ]
)


def _step_velocity_cells(q: float, pk: float) -> float:
    """Velocity (cells per sweep) of a long straight step whose cells go with probability ``q``."""
    logv = [np.interp(math.log(q), np.log(_Q_GRID), np.log(row)) for row in _VELOCITY_TABLE]
    return float(math.exp(np.interp(pk, _PK_GRID, logv)))


def _q_for_velocity(v_cells: float, pk: float) -> float:
    """Inverse of :func:`_step_velocity_cells`: the ``q`` that gives ``v_cells``."""
    lo, hi = math.log(_Q_GRID[0] / 4), math.log(_Q_GRID[-1])
    for _ in range(60):  # bisection on log q (the velocity grows with q)
        mid = 0.5 * (lo + hi)
        if _step_velocity_cells(math.exp(mid), pk) < v_cells:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def _lattice_axes(orientation_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors ``e1``, ``e2`` (x, y in the image) of the lattice, 78 degrees apart."""
    phi = math.radians(orientation_deg)
    theta = math.radians(RHOMB_ACUTE_ANGLE_DEG)
    e1 = np.array([math.cos(phi), math.sin(phi)])
    e2 = np.array([math.cos(phi + theta), math.sin(phi + theta)])
    return e1, e2


def _periodic_field(rng: np.random.Generator, shape: tuple[int, int], corr_cells: float):
    """Smooth Gaussian random field on the torus ``shape`` (unit variance, float64).

    White noise low-passed in Fourier space with a Gaussian of ``corr_cells`` (standard
    deviation, cells): periodic in both axes, as the helical lattice needs.
    """
    noise = rng.standard_normal(shape)
    ki = np.fft.fftfreq(shape[0])[:, None]
    kj = np.fft.rfftfreq(shape[1])[None, :]
    s = max(float(corr_cells), 0.5)
    kernel = np.exp(-2.0 * (math.pi * s) ** 2 * (ki**2 + kj**2))
    kernel[0, 0] = 0.0  # zero mean (a field smoother than the lattice is flat)
    field = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=shape)
    std = field.std()
    return field / std if std > 1e-9 else np.zeros(shape)


def _to_u16(p: np.ndarray | float) -> np.ndarray:
    """Probabilities as uint16 thresholds (``u < threshold`` with ``u`` uniform in 0-65535)."""
    return np.minimum(np.round(np.asarray(p, dtype=np.float64) * 65536.0), 65535).astype(np.uint16)


@dataclass
class _Cores:
    """Dislocation cores: cells, first sweep, sweeps between loops, next loop (float)."""

    i: np.ndarray
    j: np.ndarray
    start: np.ndarray
    tau: np.ndarray
    next: np.ndarray


@dataclass
class _Lattice:
    """The state of the automaton (see the module docstring).

    ``depth`` is ``(Ni, Nj)`` int16 layers; ``flags`` uint8 (who made each cell: see
    :data:`MADE_BY_STEP`); ``offsets`` = ``(Ki, Kj)``, the helical height offsets;
    ``q_obtuse``, ``q_acute`` uint16 threshold maps; ``p_kink`` uint16.
    ``origin`` is the lattice position (cells, along ``e1``, ``e2``) of the frame centre.
    """

    cell_nm: float
    e1: np.ndarray
    e2: np.ndarray
    depth: np.ndarray
    flags: np.ndarray
    offsets: tuple[int, int]
    q_obtuse: np.ndarray
    q_acute: np.ndarray
    p_kink: np.uint16
    nucleation_per_sweep: float  # expected monolayer nuclei per sweep (whole lattice)
    cores: _Cores
    origin: tuple[float, float]
    sweep: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """``(Ni, Nj)``: cells along ``e1`` and ``e2``."""
        return self.depth.shape[0], self.depth.shape[1]

    def to_lattice(self, x_nm: np.ndarray, y_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lattice coordinates (cells, along ``e1`` and ``e2``) of image positions (nm from
        the frame centre, ``y`` down the rows)."""
        m = np.linalg.inv(np.array([self.e1, self.e2]).T) / self.cell_nm
        u = m[0, 0] * x_nm + m[0, 1] * y_nm + self.origin[0]
        v = m[1, 0] * x_nm + m[1, 1] * y_nm + self.origin[1]
        return u, v


class _Automaton:
    """One sweep of the rules, with work buffers kept between sweeps.

    The lower-neighbour tests run on the whole lattice; the draws and the updates only on
    the cells at a step (a few per cent of them).
    """

    def __init__(self, lat: _Lattice):
        self.lat = lat
        shape = lat.depth.shape
        self.lower = [np.empty(shape, bool) for _ in range(4)]
        self.has = np.empty(shape, bool)
        size = shape[0] * shape[1]
        self.index_t = np.int32 if size < 2**31 else np.int64

    def sweep(self, rng: np.random.Generator) -> None:
        """Draw and remove the cells that go this sweep."""
        lat = self.lat
        d = lat.depth
        ki, kj = lat.offsets
        lpi, lmi, lpj, lmj = self.lower  # lower neighbour at +i, -i, +j, -j
        np.greater(d[1:], d[:-1], out=lpi[:-1])
        lpi[-1] = (d[0] + ki) > d[-1]
        np.greater(d[:-1], d[1:], out=lmi[1:])
        lmi[0] = (d[-1] - ki) > d[0]
        np.greater(d[:, 1:], d[:, :-1], out=lpj[:, :-1])
        lpj[:, -1] = (d[:, 0] + kj) > d[:, -1]
        np.greater(d[:, :-1], d[:, 1:], out=lmj[:, 1:])
        lmj[:, 0] = (d[:, -1] - kj) > d[:, 0]
        has = self.has
        np.logical_or(lpi, lmi, out=has)
        has |= lpj
        has |= lmj
        cand = np.flatnonzero(has).astype(self.index_t)
        if cand.size == 0:
            return
        low = [a.reshape(-1).take(cand) for a in self.lower]
        kink = (low[0].view(np.uint8) + low[1] + low[2] + low[3]) >= 2
        # a step retreating towards +i or +j (its lower side at -i or -j) is obtuse
        obt = low[1] | low[3]
        thr = np.where(obt, lat.q_obtuse.reshape(-1).take(cand), lat.q_acute.reshape(-1).take(cand))
        thr[kink] = lat.p_kink
        u = np.frombuffer(rng.bytes(2 * cand.size), dtype=np.uint16)
        go = cand[u < thr]
        if go.size:
            self._flags(go)
            d.reshape(-1)[go] += 1

    def _flags(self, idx: np.ndarray) -> None:
        """Who made the cells ``idx`` (flat) that go now: the maker all their lower
        neighbours share, the step (0) when one of them is terrace, else the multilayer
        pit (1) when one is; a cell a multilayer pit dissolves keeps :data:`VISITED`."""
        flat = self.lat.flags.reshape(-1)
        ni, nj = self.lat.shape
        total = ni * nj
        col = idx % nj
        plus_i = idx + nj
        plus_i[plus_i >= total] -= total
        minus_i = idx - nj
        minus_i[minus_i < 0] += total
        plus_j = idx + 1
        plus_j[col == nj - 1] -= nj
        minus_j = idx - 1
        minus_j[col == 0] += nj
        seen = np.zeros(idx.size, np.uint8)  # bit 1 << maker for each lower neighbour
        for low, nb in zip(self.lower, (plus_i, minus_i, plus_j, minus_j)):
            bit = np.left_shift(np.uint8(1), flat.take(nb) & MAKER)
            seen |= bit * low.reshape(-1).take(idx)
        maker = _MAKER_OF_SEEN.take(seen)
        visited = (flat.take(idx) & VISITED) | ((maker == MADE_BY_MULTI) * np.uint8(VISITED))
        flat[idx] = maker | visited


#: Cell flags (:attr:`_Lattice.flags`): the low bits say what dissolved the cell's top
#: layer (a retreating step, a multilayer pit's loops, a monolayer pit), :data:`VISITED`
#: that a multilayer pit dissolved the cell at some time (its footprint).
MADE_BY_STEP, MADE_BY_MULTI, MADE_BY_MONO = 0, 1, 3
MAKER = 3
VISITED = 4
# the maker of a cell from the makers its lower neighbours have (bit 1 << maker each)
_MAKER_OF_SEEN = np.array(
    [MADE_BY_MONO if (b & 1) == 0 and (b & 2) == 0 else (0 if b & 1 else 1) for b in range(16)],
    dtype=np.uint8,
)


def _advance(lat: _Lattice, n_sweeps: int, rng: np.random.Generator, auto=None) -> None:
    """Run ``n_sweeps`` sweeps: dislocation loops, monolayer nuclei, then the rules."""
    auto = auto or _Automaton(lat)
    ni, nj = lat.shape
    cores = lat.cores
    for _ in range(int(n_sweeps)):
        s = lat.sweep
        if cores.i.size:
            due = (cores.start <= s) & (cores.next <= s)
            while due.any():  # a new loop at each due core (several if tau < 1 sweep)
                lat.depth[cores.i[due], cores.j[due]] += 1
                lat.flags[cores.i[due], cores.j[due]] = MADE_BY_MULTI | VISITED
                cores.next[due] = np.maximum(cores.next[due], cores.start[due]) + cores.tau[due]
                due = (cores.start <= s) & (cores.next <= s)
        k = int(rng.poisson(lat.nucleation_per_sweep))
        if k:
            ii, jj = rng.integers(0, ni, k), rng.integers(0, nj, k)
            lat.depth[ii, jj] += 1
            lat.flags[ii, jj] = (lat.flags[ii, jj] & VISITED) | MADE_BY_MONO
        auto.sweep(rng)
        lat.sweep = s + 1


#: The acute sides of pits 20-70 cells across retreat about 10 % slower than a long
#: straight acute step (their kink-pair nucleation is rarer), the obtuse sides about as
#: fast: the acute probability aims 10 % higher, so that pits show the set ratio.
_PIT_ACUTE_FACTOR = 1.1

#: Removal probability of a cell on a straight obtuse step (the acute one follows from the
#: velocity ratio): small enough for sharp rhombic pits, large enough for few sweeps.
_Q_OBTUSE = 0.1


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One number drawn log-uniformly in ``[lo, hi]``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _lattice_shape(e1, e2, cell_nm: float, half_nm: float) -> tuple[int, int]:
    """Cells along ``e1``, ``e2`` that hold a square of half-side ``half_nm`` (one period)."""
    m = np.linalg.inv(np.array([e1, e2]).T) / cell_nm
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], float).T * half_nm
    uv = m @ corners
    ext = uv.max(axis=1) - uv.min(axis=1)
    return math.ceil(ext[0]) + 4, math.ceil(ext[1]) + 4


def _vicinal_depth(
    rng: np.random.Generator,
    shape: tuple[int, int],
    e1,
    e2,
    cell_nm: float,
    geometry: dict,
    drawn: dict,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The initial staircase (int16 depths) and its helical offsets ``(Ki, Kj)``.

    ``geometry`` holds ``step_density_per_um`` and ``waviness_nm`` and
    ``waviness_length_nm``; the offsets are rounded to whole steps per period, so the
    density and direction that were realised are recorded in ``drawn``.
    """
    ni, nj = shape
    density = float(geometry["step_density_per_um"])
    # steps run near a crystal direction (within 15 degrees) two times in three
    axis = e1 if rng.random() < 0.5 else e2
    along = math.atan2(axis[1], axis[0]) + math.radians(rng.uniform(-15.0, 15.0))
    downhill = along + math.pi / 2 + (math.pi if rng.random() < 0.5 else 0.0)
    if rng.random() < 1.0 / 3.0:
        downhill = float(rng.uniform(0.0, 2 * math.pi))
    g = density / 1000.0 * np.array([math.cos(downhill), math.sin(downhill)])  # layers / nm
    ki = round(ni * cell_nm * float(g @ e1))
    kj = round(nj * cell_nm * float(g @ e2))
    if ki == 0 and kj == 0:  # at least one step crosses the lattice
        if abs(float(g @ e1)) >= abs(float(g @ e2)):
            ki = 1 if g @ e1 >= 0 else -1
        else:
            kj = 1 if g @ e2 >= 0 else -1
    wav_layers = geometry["waviness_nm"] * density / 1000.0
    wav = wav_layers * _periodic_field(rng, shape, geometry["waviness_length_nm"] / cell_nm)
    ii = np.arange(ni, dtype=np.float64)[:, None] * (ki / ni)
    jj = np.arange(nj, dtype=np.float64)[None, :] * (kj / nj)
    depth = np.floor(ii + jj + wav + rng.uniform(0.0, 1.0)).astype(np.int16)
    # what was realised: the gradient in layers per nm, back in the image
    gl = np.array([ki / (ni * cell_nm), kj / (nj * cell_nm)])
    g_img = np.linalg.solve(np.array([e1, e2]), gl)
    drawn["step_density_per_um"] = float(np.hypot(*g_img) * 1000.0)
    drawn["step_downhill_deg"] = float(math.degrees(math.atan2(g_img[1], g_img[0])))
    return depth, (ki, kj)


def _build_lattice(
    rng: np.random.Generator,
    *,
    frame: dict,
    kinetics: dict,
    geometry: dict,
    pits: dict,
    drawn: dict,
) -> tuple[_Lattice, float, int]:
    """Draw the initial lattice of a cellular surface.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws (in a fixed order).
    frame : dict
        ``size`` (pixels), ``pixel_size_nm``, ``cell_px``, ``half_nm`` (half-side of the
        square the lattice must hold, nm), ``reach`` (history: the distance an obtuse step
        travels before the first frame, as a fraction of the frame side), ``extra_s``
        (seconds simulated after the first frame: a movie's duration).
    kinetics : dict
        ``v_obtuse_nm_s``, ``obtuse_to_acute``, ``p_kink``, ``reactivity_sigma``.
    geometry : dict
        ``orientation_deg``, ``step_density_per_um``, ``waviness_nm``,
        ``waviness_length_nm``.
    pits : dict
        ``n_multilayer``, ``monolayer_density_per_um2`` (per 300 s).
    drawn : dict
        Receives what was drawn or realised.

    Returns
    -------
    lattice, dt_s, history_sweeps
        The lattice at time 0 (no sweep yet), seconds per sweep, and the number of
        sweeps to run before the first frame.
    """
    p = float(frame["pixel_size_nm"])
    cell = float(frame["cell_px"]) * p
    e1, e2 = _lattice_axes(float(geometry["orientation_deg"]))
    shape = _lattice_shape(e1, e2, cell, float(frame["half_nm"]))
    depth0, offsets = _vicinal_depth(rng, shape, e1, e2, cell, geometry, drawn)

    pk = float(kinetics["p_kink"])
    v_cells = _step_velocity_cells(_Q_OBTUSE, pk)
    ratio = float(kinetics["obtuse_to_acute"])
    q_acute = _q_for_velocity(v_cells / ratio * _PIT_ACUTE_FACTOR, pk)
    sin_angle = math.sin(math.radians(RHOMB_ACUTE_ANGLE_DEG))
    dt = v_cells * cell * sin_angle / float(kinetics["v_obtuse_nm_s"])
    side_nm = frame["size"] * p
    history = math.ceil(frame["reach"] * side_nm / (v_cells * cell * sin_angle))
    total = history + math.ceil(float(frame["extra_s"]) / dt)

    cores = _draw_cores(rng, pits["n_multilayer"], side_nm, history, total, dt, drawn)
    origin = (shape[0] / 2.0, shape[1] / 2.0)
    lat = _Lattice(
        cell_nm=cell,
        e1=e1,
        e2=e2,
        depth=depth0,
        flags=np.zeros(shape, np.uint8),
        offsets=offsets,
        q_obtuse=np.zeros(shape, np.uint16),
        q_acute=np.zeros(shape, np.uint16),
        p_kink=np.uint16(_to_u16(pk)),
        nucleation_per_sweep=0.0,
        cores=_Cores(*(np.zeros(0) for _ in range(5))),
        origin=origin,
    )
    ci, cj = lat.to_lattice(cores["x_nm"], cores["y_nm"])
    lat.cores = _Cores(
        i=np.floor(ci).astype(np.intp) % shape[0],
        j=np.floor(cj).astype(np.intp) % shape[1],
        start=cores["start"],
        tau=cores["tau"],
        next=cores["start"].astype(np.float64),
    )
    react = _reactivity(rng, lat, float(kinetics["reactivity_sigma"]))
    lat.q_obtuse = _to_u16(np.minimum(_Q_OBTUSE * react, pk))
    lat.q_acute = _to_u16(np.minimum(q_acute * react, pk))
    area_um2 = shape[0] * shape[1] * cell * cell * sin_angle / 1e6
    lat.nucleation_per_sweep = float(pits["monolayer_density_per_um2"]) / 300.0 * dt * area_um2
    drawn.update(
        cell_nm=cell,
        lattice_shape=[int(shape[0]), int(shape[1])],
        seconds_per_sweep=dt,
        history_sweeps=history,
        history_s=history * dt,
        q_obtuse=_Q_OBTUSE,
        q_acute=q_acute,
        acute_step_velocity_nm_s=float(kinetics["v_obtuse_nm_s"])
        / float(kinetics["obtuse_to_acute"]),
    )
    return lat, dt, history


def _draw_cores(
    rng: np.random.Generator,
    n_multilayer: int,
    side_nm: float,
    history: int,
    total: int,
    dt: float,
    drawn: dict,
) -> dict:
    """Dislocation cores: positions (nm from the frame centre), first sweep, sweeps per loop.

    Most start during the history (pits of every size at the first frame), a fifth
    during the movie; one new loop every 25-300 s (log-uniform).
    """
    n = int(n_multilayer)
    x = rng.uniform(-0.4, 0.4, n) * side_nm
    y = rng.uniform(-0.4, 0.4, n) * side_nm
    early = rng.uniform(0.0, 0.8 * max(history, 1), n)
    late = rng.uniform(history, max(total, history + 1), n)
    start = np.floor(np.where(rng.random(n) < 0.8, early, late)).astype(np.int64)
    tau_s = np.exp(rng.uniform(math.log(25.0), math.log(300.0), n))
    drawn["multilayer_pits"] = [
        {"x_nm": float(a), "y_nm": float(b), "t0_s": float(s * dt), "loop_interval_s": float(t)}
        for a, b, s, t in zip(x, y, start, tau_s)
    ]
    return {"x_nm": x, "y_nm": y, "start": start, "tau": tau_s / dt}


def _reactivity(rng: np.random.Generator, lat: _Lattice, sigma: float) -> np.ndarray:
    """Relative removal rates: a log-normal smooth field, higher around dislocation cores."""
    shape = lat.shape
    corr_nm = _loguniform(rng, 40.0, 400.0)
    field = np.exp(sigma * _periodic_field(rng, shape, corr_nm / lat.cell_nm) - 0.5 * sigma**2)
    if lat.cores.i.size:
        ii = np.arange(shape[0])[:, None]
        jj = np.arange(shape[1])[None, :]
        r0 = max(1.5 * lat.cell_nm, float(rng.uniform(15.0, 40.0)))
        for ci, cj in zip(lat.cores.i.tolist(), lat.cores.j.tolist()):
            di = (ii - ci + shape[0] // 2) % shape[0] - shape[0] // 2  # nearest image
            dj = (jj - cj + shape[1] // 2) % shape[1] - shape[1] // 2
            x = (di * lat.e1[0] + dj * lat.e2[0]) * lat.cell_nm
            y = (di * lat.e1[1] + dj * lat.e2[1]) * lat.cell_nm
            boost = float(rng.uniform(2.0, 6.0))
            field *= 1.0 + boost * np.exp(-np.hypot(x, y) / r0)
    return field
