"""A second, structurally different generator: calcite dissolving on a cellular lattice.

Where :func:`~.generators.make_series` draws pits as rhombi of closed-form growth, this
generator *simulates* dissolution (:mod:`.lattice`): an integer height lattice of
monolayers whose step cells go with probabilities set by the local step direction,
dislocation cores that keep opening new layers, monolayer nuclei at random places and
times, vicinal trains of wavy steps. Rhombic pits with their 78 and 102 degree corners,
the off-centre sources and the terraced walls of multilayer pits emerge from the rules.
It renders pixels, labels (:mod:`.lattice_render`), roughness, noise and artifacts
(:mod:`.scan_model`) with code of its own, so that a network trained on one generator
can be tested on the other (``benchmarks/cross_generator.py``).

Examples
--------
>>> from napari_calcite_afm.synthetic import make_cellular_frame
>>> raw, clean, labels = make_cellular_frame(64, seed=1, pixel_size_nm=10.0)
>>> raw.shape, raw.dtype, sorted(set(labels.ravel().tolist())) <= [1, 2, 3]
((64, 64), dtype('float32'), True)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import stop_requested
from ..errors import CalciteAFMError
from ..labels import LABEL_TERRACE
from .cellular_params import _CELLULAR_FIELDS, CellularParams, _draw_cellular
from .crystal import STEP_HEIGHT_NM
from .fields import _map_seeds, _stack_frames
from .generators import SyntheticSeries
from .lattice import _advance, _Automaton, _build_lattice
from .lattice_render import _cellular_labels, _footprint_labels, _sample
from .scan_model import _draw_roughness, _draw_scan, _roughness_fields, _scan

__all__ = ["make_cellular_frame", "make_cellular_frames", "make_cellular_series"]

_MARGIN = 8  # pixels around each frame on which labels are worked out


def make_cellular_series(
    n_frames: int = 10,
    size: int = 512,
    *,
    seed: int | None = 0,
    pixel_size_nm: float | None = None,
    frame_interval_s: float = 300.0,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
    params: CellularParams | None = None,
    **options: Any,
) -> SyntheticSeries:
    """Simulate an in-situ AFM movie of calcite {10-14} dissolving (cellular model).

    Parameters
    ----------
    n_frames : int
        Number of frames.
    size : int
        Frame size, pixels.
    seed : int or None
        Seed; the same seed gives the same movie.
    pixel_size_nm : float, optional
        Pixel size, nm. Default: drawn in [2, 20] nm (log-uniform); physical sizes
        (steps, pits, velocities) stay physical, so pits span more or fewer pixels.
    frame_interval_s : float
        Time between frames, s.
    progress : callable, optional
        Called after each frame with ``{"frame": k, "n_frames": n}``.
    stop : callable or threading.Event, optional
        When set, generation stops and the frames made so far are returned.
    params : CellularParams, optional
        All the settings in one object, instead of the keywords.
    **options
        Any other field of :class:`CellularParams` (``step_velocity_nm_s``,
        ``step_density_per_um``, ``monolayer_density_per_um2``, ``n_multilayer``,
        ``history``, ``noise_nm``, ``artifacts``, ``drift``, ...).

    Returns
    -------
    SyntheticSeries
        ``raw`` (with artifacts and drift), ``clean`` and ``labels`` in the frame of
        reference of frame 0 (1 multilayer pit, 2 terrace, 3 monolayer pit),
        ``labels_raw``, ``drift_px``, ``pixel_size_nm``, ``frame_interval_s`` and
        ``params`` (the settings, ``"generator": "cellular"`` and under ``"drawn"``
        what was drawn; ``CellularParams.from_dict(params)`` makes the movie again).

    Examples
    --------
    >>> s = make_cellular_series(3, 64, seed=2, pixel_size_nm=8.0)
    >>> s.raw.shape, s.pixel_size_nm, s.params["generator"]
    ((3, 64, 64), 8.0, 'cellular')
    >>> again = make_cellular_series(params=CellularParams.from_dict(s.params))
    >>> bool(np.array_equal(again.raw, s.raw))
    True
    """
    keywords = dict(n_frames=n_frames, size=size, seed=seed, pixel_size_nm=pixel_size_nm)
    keywords.update(frame_interval_s=frame_interval_s, **options)
    p = _cellular_params(params, keywords)
    p.check()
    rng_model, rng_drift, rng_rough, rng_art = (
        np.random.default_rng(s) for s in np.random.SeedSequence(p.seed).spawn(4)
    )
    d = _draw_cellular(rng_model, p)
    px = float(d["pixel_size_nm"])
    n = int(p.n_frames)
    drift_px = _drift(rng_drift, n, p.drift_px_per_frame if p.drift else 0.0)
    pad = math.ceil(float(np.abs(drift_px).max())) + _MARGIN + 2
    drawn: dict[str, Any] = {**d}
    lat, dt, history = _build_lattice(
        rng_model,
        frame=dict(
            size=int(p.size),
            pixel_size_nm=px,
            cell_px=float(p.cell_px),
            half_nm=(0.5 * int(p.size) + pad) * px,
            reach=d["history"],
            extra_s=(n - 1) * float(p.frame_interval_s),
        ),
        kinetics=dict(
            v_obtuse_nm_s=d["step_velocity_nm_s"],
            obtuse_to_acute=float(p.obtuse_to_acute),
            p_kink=d["kink_probability"],
            reactivity_sigma=d["reactivity_sigma"],
        ),
        geometry=dict(
            orientation_deg=d["orientation_deg"],
            step_density_per_um=d["step_density_per_um"],
            waviness_nm=d["step_waviness"] * 1000.0 / d["step_density_per_um"],
            waviness_length_nm=d["waviness_length_nm"],
        ),
        pits=dict(
            n_multilayer=d["n_multilayer"], monolayer_density_per_um2=d["monolayer_density_per_um2"]
        ),
        drawn=drawn,
    )
    rough = _draw_roughness(rng_rough, d["roughness_nm"], px)
    scan = _draw_scan(rng_art, d["noise_nm"], px, p.scars)
    drawn.update(roughness=rough, scan=scan, drift_px=drift_px.tolist())
    frames = _cellular_frames(
        lat,
        p,
        (dt, history),
        drift_px,
        rough,
        scan,
        (rng_model, rng_rough, rng_art),
        progress=progress,
        stop=stop,
    )
    raw, clean, labels, labels_raw = frames
    drawn["n_frames_generated"] = int(raw.shape[0])
    drawn["frame_sweeps"] = [history + round(k * p.frame_interval_s / dt) for k in range(n)]
    return SyntheticSeries(
        raw=raw,
        clean=clean,
        labels=labels,
        pixel_size_nm=px,
        frame_interval_s=float(p.frame_interval_s),
        drift_px=drift_px[: raw.shape[0]],
        params={**p.to_dict(), "generator": "cellular", "drawn": drawn},
        labels_raw=labels_raw,
    )


def _cellular_params(params: CellularParams | None, keywords: dict[str, Any]) -> CellularParams:
    """The settings of a call: ``params``, or else the keywords (not both)."""
    unknown = set(keywords) - set(_CELLULAR_FIELDS)
    if unknown:
        raise CalciteAFMError(
            f"make_cellular_series got unknown option(s): {', '.join(sorted(unknown))}"
        )
    if params is None:
        return CellularParams(**keywords)
    if not isinstance(params, CellularParams):
        raise CalciteAFMError(
            f"make_cellular_series: params must be a CellularParams, got {type(params).__name__}"
        )
    if CellularParams(**keywords) != CellularParams():
        raise CalciteAFMError(
            "make_cellular_series takes its settings either as keywords or as params, not both"
        )
    return params


def _drift(rng: np.random.Generator, n_frames: int, scale_px: float) -> np.ndarray:
    """A smooth random walk of the frame position, ``(frames, 2)`` pixels (row, col)."""
    drift = np.zeros((n_frames, 2))
    if n_frames < 2 or scale_px <= 0:
        return drift
    bias = rng.normal(0.0, 0.7 * scale_px, 2)
    vel = np.zeros(2)
    for k in range(1, n_frames):
        vel = 0.75 * vel + rng.normal(0.0, 0.5 * scale_px, 2)
        drift[k] = drift[k - 1] + vel + bias
    return drift


def _cellular_frames(
    lat,
    p: CellularParams,
    timing: tuple[float, int],
    drift_px: np.ndarray,
    rough: dict,
    scan: dict,
    rngs: tuple,
    *,
    progress,
    stop,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the lattice from frame to frame and render ``raw, clean, labels, labels_raw``."""
    dt, history = timing
    rng_model, rng_rough, rng_art = rngs
    size, n = int(p.size), drift_px.shape[0]
    px = float(lat.cell_nm / p.cell_px)
    m = _MARGIN
    grid = (size + 2 * m, size + 2 * m)
    raw = np.empty((n, size, size), np.float32)
    clean = np.empty_like(raw)
    labels = np.empty((n, size, size), np.uint8)
    labels_raw = np.empty_like(labels)
    auto = _Automaton(lat)
    crop = (slice(m, m + size), slice(m, m + size))
    footprint = p.pit_labels == "footprint"  # labels only: heights follow the basins
    fields = ref = None
    done = 0
    for k in range(n):
        if stop_requested(stop):
            break
        target = history + round(k * float(p.frame_interval_s) / dt)
        _advance(lat, target - lat.sweep, rng_model, auto)
        depth, flags = _sample(lat, size, px, (0.0, 0.0), m)
        lab = _cellular_labels(depth, flags)
        if ref is None:
            ref = int(np.median(depth[crop]))
        fields = _roughness_fields(rng_rough, grid, rough, fields)
        surf = _heights(depth, lab, fields, rough, ref)  # roughness follows the basins
        if footprint:
            lab = _footprint_labels(lab, flags)
        clean[k], labels[k] = surf[crop], lab[crop]
        shift = (float(drift_px[k, 0]), float(drift_px[k, 1]))
        if shift != (0.0, 0.0):
            depth, flags = _sample(lat, size, px, shift, m)
            lab = _cellular_labels(depth, flags)
            moved = [ndimage.shift(f, shift, order=1, mode="wrap") for f in fields]
            surf = _heights(depth, lab, moved, rough, ref)
            if footprint:
                lab = _footprint_labels(lab, flags)
        labels_raw[k] = lab[crop]
        raw[k] = _scan(surf[crop], rng_art, scan) if p.artifacts else surf[crop]
        done = k + 1
        if progress is not None:
            progress({"frame": k, "n_frames": n})
    return raw[:done], clean[:done], labels[:done], labels_raw[:done]


def _heights(depth: np.ndarray, labels: np.ndarray, fields, rough: dict, ref: int) -> np.ndarray:
    """Heights (float32, nm): whole steps below the reference layer plus roughness."""
    z = -(depth - ref).astype(np.float64) * STEP_HEIGHT_NM
    terrace = labels == LABEL_TERRACE
    z += np.where(terrace, rough["terrace_nm"] * fields[0], rough["pit_nm"] * fields[1])
    return z.astype(np.float32)


def make_cellular_frame(
    size: int = 512, *, seed: int | None = 0, **options: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training frame of the cellular generator (no drift).

    Parameters
    ----------
    size : int
        Frame size, pixels.
    seed : int or None
        Seed; the same seed gives the same frame.
    **options
        Any field of :class:`CellularParams` but ``n_frames``, ``size`` and ``seed``
        (``pixel_size_nm``, ``history``, ``artifacts``, ``noise_nm``, ...; ``drift`` and
        ``drift_px_per_frame`` are accepted and ignored: one frame has no drift).

    Returns
    -------
    raw, clean, labels : numpy.ndarray
        float32 heights with artifacts (nm), float32 artifact-free heights (nm), uint8
        labels (1 multilayer pit, 2 terrace, 3 monolayer pit), all ``(size, size)``.

    Examples
    --------
    >>> raw, clean, labels = make_cellular_frame(48, seed=4, pixel_size_nm=12.0)
    >>> raw.shape == clean.shape == labels.shape == (48, 48)
    True
    """
    if "n_frames" in options:
        raise CalciteAFMError("make_cellular_frame does not take 'n_frames'")
    s = make_cellular_series(1, size, seed=seed, **{**options, "drift": False})
    return s.raw[0], s.clean[0], s.labels[0]


def _frame_worker(size: int, seed: int, options: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """One frame of :func:`make_cellular_frames`: ``(raw, labels, pixel_size_nm)``."""
    s = make_cellular_series(1, size, seed=seed, **{**options, "drift": False})
    return s.raw[0], s.labels[0], s.pixel_size_nm


def make_cellular_frames(
    n: int,
    size: int = 512,
    *,
    seed0: int = 0,
    jobs: int = 1,
    return_pixel_size: bool = False,
    **options: Any,
) -> tuple[np.ndarray, ...]:
    """``n`` independent cellular training frames, seeds ``seed0 + i``.

    Parameters
    ----------
    n : int
        Number of frames.
    size : int
        Frame size, pixels.
    seed0 : int
        Seed of the first frame; frame ``i`` has seed ``seed0 + i``.
    jobs : int
        Processes generating the frames (any number gives the same frames).
    return_pixel_size : bool
        Also return each frame's pixel size, nm (drawn unless ``pixel_size_nm`` is given).
    **options
        Fields of :class:`CellularParams`, as for :func:`make_cellular_frame`.

    Returns
    -------
    raw : numpy.ndarray
        float32 ``(n, size, size)`` heights with artifacts, nm.
    labels : numpy.ndarray
        uint8 ``(n, size, size)``.
    pixel_size_nm : numpy.ndarray
        Only with ``return_pixel_size``: float ``(n,)``.

    Examples
    --------
    >>> raw, labels = make_cellular_frames(2, 32, seed0=5, pixel_size_nm=15.0)
    >>> raw.shape == labels.shape == (2, 32, 32)
    True
    """
    seeds = range(int(seed0), int(seed0) + int(n))
    out = _map_seeds(_frame_worker, seeds, jobs, size, options)
    raw = _stack_frames(out, size, 0, np.float32)
    labels = _stack_frames(out, size, 1, np.uint8)
    if return_pixel_size:
        return raw, labels, np.array([o[2] for o in out], dtype=np.float64)
    return raw, labels
