"""The public generators: a movie (:func:`make_series`) or single training frames.

:func:`make_series` renders a whole movie with drift and per-frame artifacts and returns
a :class:`SyntheticSeries`; :func:`make_frame` renders one frame at a random time of a
random series (no drift), and :func:`make_frames` many of them, in parallel processes
if asked (each frame depends on its seed alone).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util import stop_requested as _stopped
from ..errors import CalciteAFMError
from .artifacts import (
    _draw_drift,
    _draw_scan_settings,
    _frame_artifacts,
    _ScanSettings,
    add_artifacts,
)
from .crystal import STEP_HEIGHT_NM
from .fields import _map_seeds, _smooth_noise, _spawn, _stack_frames
from .params import _SERIES_FIELDS, STANDARD_PIXEL_SIZE_NM, SeriesParams
from .pits import _mono_arrival
from .render import _MARGIN, _render
from .surface_model import _build_model, _Model
from .wide import VARIETIES, _draw_wide, _Wide

__all__ = ["SyntheticSeries", "make_frame", "make_frames", "make_series"]

_CHUNK = 10  # frames whose monolayer pits are rasterised together


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
        frame relative to frame 0, pixels (``drift_px[0]`` is zero). See
        :mod:`napari_calcite_afm.synthetic` for the sign convention.
    params : dict
        The generator's settings (:meth:`SeriesParams.to_dict`) and, under ``"drawn"``,
        the values it drew for those left to chance (JSON-serialisable);
        ``SeriesParams.from_dict(params)`` makes the same series again.
    labels_raw : numpy.ndarray
        uint8 labels in the drifted frame of each raw frame, so that ``raw`` and
        ``labels_raw`` pair pixel by pixel.

    Examples
    --------
    >>> s = make_series(n_frames=2, size=32, seed=3)
    >>> s.n_frames, s.pixel_size_nm, s.labels_raw.shape
    (2, 11.7, (2, 32, 32))
    >>> again = make_series(params=SeriesParams.from_dict(s.params))
    >>> bool(np.array_equal(again.raw, s.raw))
    True
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


def make_series(
    n_frames: int = 10,
    size: int = 512,
    *,
    pixel_size_nm: float | None = None,
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
    variety: str = "standard",
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
    params: SeriesParams | None = None,
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
    pixel_size_nm : float, optional
        Pixel size, nm. Default: 11.7 nm (a 6 µm frame of 512 pixels); drawn in
        [2, 20] nm (log-uniform) with ``variety="wide"``.
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
    variety : str
        ``"standard"`` or ``"wide"``: draw every setting left to None, the pit shapes
        and walls, waviness, roughness lengths and scan artifacts from wide ranges
        (:mod:`napari_calcite_afm.synthetic.wide`), recorded in ``params["drawn"]``.
    progress : callable, optional
        Called after each frame with ``{"frame": k, "n_frames": n}``.
    stop : callable or threading.Event, optional
        When it returns True (is set), generation stops and the frames made so far are
        returned.
    params : SeriesParams, optional
        All the settings above in one object, instead of the keywords (which must then
        be left at their defaults): ``make_series(params=SeriesParams(n_frames=4))``
        gives the same series as ``make_series(n_frames=4)``.

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
    >>> p = SeriesParams(n_frames=4, size=96, seed=7, n_multilayer=1)
    >>> bool(np.array_equal(make_series(params=p).raw, s.raw))
    True
    >>> w = make_series(n_frames=2, size=64, seed=7, variety="wide")
    >>> 2.0 <= w.pixel_size_nm <= 20.0, "wide" in w.params["drawn"]
    (True, True)
    """
    settings = locals()  # the keyword settings, read before any other local is made
    params = _series_params(params, {name: settings[name] for name in _SERIES_FIELDS})
    params.check()
    n_frames = int(params.n_frames)
    wide = _draw_wide(params)
    rng_model, rng_drift, rng_rough, rng_art = _spawn(params.seed, 4)
    drift_px = _draw_drift(rng_drift, n_frames, params.drift_px_per_frame if params.drift else 0.0)
    pad = math.ceil(float(np.abs(drift_px).max())) + _MARGIN + 3
    duration = (n_frames - 1) * float(params.frame_interval_s)
    model, drawn = _build_model(rng_model, params, duration_s=duration, pad=pad, wide=wide)
    if wide is None:
        scan = _draw_scan_settings(rng_art, params.noise_nm)  # jittered per frame
    else:
        scan = _wide_scan_settings(rng_art, wide, params.noise_nm)
    drawn.update(**scan.record(), drift_px=drift_px.tolist())
    frames = _series_frames(
        model,
        params,
        drift_px,
        (rng_rough, rng_art),
        scan,
        progress=progress,
        stop=stop,
        blur_px=0.0 if wide is None else _blur_px(wide, model.pixel_size_nm),
    )
    raw, clean, labels, labels_raw = frames
    done = raw.shape[0]
    drawn["n_frames_generated"] = done
    return SyntheticSeries(
        raw=raw,
        clean=clean,
        labels=labels,
        pixel_size_nm=float(model.pixel_size_nm),
        frame_interval_s=float(params.frame_interval_s),
        drift_px=drift_px[:done],
        params={**params.to_dict(), "drawn": drawn},
        labels_raw=labels_raw,
    )


def _series_params(params: SeriesParams | None, keywords: dict[str, Any]) -> SeriesParams:
    """The settings of a :func:`make_series` call: ``params``, or else the keywords."""
    if params is None:
        return SeriesParams(**keywords)
    if not isinstance(params, SeriesParams):
        raise CalciteAFMError(
            f"make_series: params must be a SeriesParams, got {type(params).__name__}"
        )
    if SeriesParams(**keywords) != SeriesParams():
        raise CalciteAFMError(
            "make_series takes its settings either as keywords or as params, not both"
        )
    return params


def _next_roughness(
    rng: np.random.Generator,
    model: _Model,
    rough_t: np.ndarray | None,
    rough_p: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The roughness canvases (terrace, pit) of the next frame, partly correlated with
    the previous frame's (``None`` before the first frame or without roughness)."""
    if not model.rough_terrace_nm > 0:
        return rough_t, rough_p
    canvas = (model.canvas_size, model.canvas_size)
    new_t = _smooth_noise(rng, canvas, model.rough_terrace_px)
    new_p = _smooth_noise(rng, canvas, model.rough_pit_px)
    if rough_t is None:
        return new_t, new_p
    # partly correlated from frame to frame
    return 0.6 * rough_t + 0.8 * new_t, 0.6 * rough_p + 0.8 * new_p


def _series_frames(
    model: _Model,
    params: SeriesParams,
    drift_px: np.ndarray,
    rngs: tuple[np.random.Generator, np.random.Generator],
    scan: _ScanSettings,
    *,
    progress: Callable[[dict], None] | None,
    stop: Callable[[], bool] | threading.Event | None,
    blur_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render the frames of a series: ``raw, clean, labels, labels_raw``, as many frames
    as were made before a stop request (``blur_px``: the tip's blur of the raw frames)."""
    rng_rough, rng_art = rngs
    n_frames = drift_px.shape[0]
    interval = float(params.frame_interval_s)
    shape = (n_frames, model.size, model.size)
    raw = np.empty(shape, np.float32)
    clean = np.empty(shape, np.float32)
    labels = np.empty(shape, np.uint8)
    labels_raw = np.empty(shape, np.uint8)
    rough_t = rough_p = None
    done = 0
    arrival = None
    for k in range(n_frames):
        if _stopped(stop):
            break
        t = k * interval
        if k % _CHUNK == 0:  # monolayer pits rasterised once per chunk of frames
            t_end = min(k + _CHUNK - 1, n_frames - 1) * interval
            arrival = _mono_arrival(model, t, t_end)
        rough_t, rough_p = _next_roughness(rng_rough, model, rough_t, rough_p)
        clean[k], labels[k], _ = _render(model, t, (0.0, 0.0), arrival, rough_t, rough_p)
        shift = (float(drift_px[k, 0]), float(drift_px[k, 1]))
        if shift != (0.0, 0.0):
            surf, labels_raw[k], _ = _render(model, t, shift, arrival, rough_t, rough_p)
        else:
            surf, labels_raw[k] = clean[k], labels[k]
        if params.artifacts:
            raw[k] = _frame_artifacts(_blur(surf, blur_px), rng_art, scan, params.scars)
        else:
            raw[k] = surf
        done = k + 1
        if progress is not None:
            progress({"frame": k, "n_frames": n_frames})
    return raw[:done], clean[:done], labels[:done], labels_raw[:done]


def make_frame(
    size: int = 512,
    *,
    seed: int | None = 0,
    time_s: float | None = None,
    n_frames: int = 10,
    return_hidden: bool = False,
    return_pixel_size: bool = False,
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
    return_pixel_size : bool
        Also return the pixel size, nm (drawn with ``variety="wide"``).
    **kw
        Any keyword of :func:`make_series` (``variety``, ``pixel_size_nm``, ``frame_interval_s``,
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
    pixel_size_nm : float
        Only with ``return_pixel_size``: nm per pixel (last).

    Examples
    --------
    >>> raw, clean, labels = make_frame(size=64, seed=5, time_s=600.0)
    >>> raw.shape == clean.shape == labels.shape == (64, 64)
    True
    >>> raw, clean, labels, hidden = make_frame(size=256, seed=5, return_hidden=True)
    >>> bool(hidden.any()), bool(np.all(labels[hidden] == 1))
    (True, True)
    >>> raw, clean, labels, px = make_frame(64, seed=5, variety="wide", return_pixel_size=True)
    >>> 2.0 <= px <= 20.0
    True
    """
    unknown = set(kw) - _FRAME_OPTIONS
    if unknown:
        raise CalciteAFMError(f"make_frame got unknown option(s): {', '.join(sorted(unknown))}")
    params = SeriesParams(n_frames=n_frames, size=size, seed=seed, **kw)
    params.check()
    wide = _draw_wide(params)
    frame_interval_s = float(params.frame_interval_s)
    rng_model, rng_rough, rng_art = _spawn(seed, 3)
    duration = (int(n_frames) - 1) * frame_interval_s
    if time_s is None:
        time_s = float(rng_art.uniform(0.0, duration)) if duration > 0 else 0.0
    model, _ = _build_model(rng_model, params, duration_s=duration, pad=_MARGIN + 2, wide=wide)
    rough_t = rough_p = None
    if model.rough_terrace_nm > 0:
        canvas = (model.canvas_size, model.canvas_size)
        rough_t = _smooth_noise(rng_rough, canvas, model.rough_terrace_px)
        rough_p = _smooth_noise(rng_rough, canvas, model.rough_pit_px)
    arrival = _mono_arrival(model, float(time_s), float(time_s))
    clean, labels, hidden = _render(model, float(time_s), (0.0, 0.0), arrival, rough_t, rough_p)
    if params.artifacts and wide is None:
        raw = add_artifacts(
            clean,
            rng_art,
            noise_nm=params.noise_nm,
            n_scars=None if params.scars else 0,
        )
    elif params.artifacts:
        scan = _wide_scan_settings(rng_art, wide, params.noise_nm)
        blurred = _blur(clean, _blur_px(wide, model.pixel_size_nm))
        raw = _frame_artifacts(blurred, rng_art, scan, params.scars)
    else:
        raw = clean.copy()
    out = (raw, clean, labels, hidden) if return_hidden else (raw, clean, labels)
    return (*out, float(model.pixel_size_nm)) if return_pixel_size else out


# the make_series settings make_frame takes as keywords (drift ones accepted, ignored)
_FRAME_OPTIONS = frozenset(_SERIES_FIELDS) - {"n_frames", "size", "seed"}


def _raw_and_labels(
    size: int, seed: int, hidden: bool = False, variety: str = "standard"
) -> tuple[np.ndarray, ...]:
    """One frame of :func:`make_frames`: ``(raw, labels)``, plus the hidden mask if asked,
    plus the pixel size (nm) with the wide variety."""
    if variety == "standard":
        raw, _clean, labels, mask = make_frame(size, seed=seed, return_hidden=True)
        return (raw, labels, mask) if hidden else (raw, labels)
    raw, _c, labels, mask, px = make_frame(
        size, seed=seed, return_hidden=True, return_pixel_size=True, variety=variety
    )
    return (raw, labels, mask, px) if hidden else (raw, labels, px)


def make_frames(
    n: int,
    size: int = 512,
    *,
    seed0: int = 0,
    jobs: int = 1,
    return_hidden: bool = False,
    variety: str = "standard",
    return_pixel_size: bool = False,
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
    variety : str
        ``"standard"`` or ``"wide"`` (:func:`make_series`).
    return_pixel_size : bool
        Also return each frame's pixel size, nm (drawn with the wide variety).

    Returns
    -------
    raw : numpy.ndarray
        float32 ``(n, size, size)`` heights with artifacts, nm.
    labels : numpy.ndarray
        uint8 ``(n, size, size)``: 1 multilayer pit, 2 terrace, 3 monolayer pit.
    hidden : numpy.ndarray
        Only with ``return_hidden``: bool ``(n, size, size)``.
    pixel_size_nm : numpy.ndarray
        Only with ``return_pixel_size``: float ``(n,)``, nm per pixel (last).

    Examples
    --------
    >>> raw, labels = make_frames(2, 48, seed0=7)
    >>> raw.shape == labels.shape == (2, 48, 48)
    True
    >>> raw, labels, px = make_frames(2, 48, seed0=7, variety="wide", return_pixel_size=True)
    >>> px.shape
    (2,)
    """
    if variety not in VARIETIES:
        raise CalciteAFMError(f"variety must be one of {', '.join(VARIETIES)}, got {variety!r}")
    seeds = range(int(seed0), int(seed0) + int(n))
    pairs = _map_seeds(_raw_and_labels, seeds, jobs, size, return_hidden, variety)
    raw = _stack_frames(pairs, size, 0, np.float32)
    labels = _stack_frames(pairs, size, 1, np.uint8)
    out = (raw, labels)
    if return_hidden:
        out += (_stack_frames(pairs, size, 2, bool),)
    if return_pixel_size:
        px = [p[-1] if variety != "standard" else float(STANDARD_PIXEL_SIZE_NM) for p in pairs]
        out += (np.array(px, dtype=np.float64),)
    return out


def _wide_scan_settings(
    rng: np.random.Generator, wide: _Wide, noise_nm: float | None
) -> _ScanSettings:
    """The scan settings of a wide series (the wide draws, the tilt direction from ``rng``)."""
    sc = wide.scan
    noise = wide.fill.get("noise_nm") if noise_nm is None else float(noise_nm)
    tilt_dir = float(rng.uniform(0.0, 360.0))
    return _ScanSettings(
        noise, sc["tilt_nm"], tilt_dir, sc["bow_nm"], sc["row_offset_nm"], sc["scar_rate"]
    )


def _blur_px(wide: _Wide, pixel_size_nm: float) -> float:
    """Standard deviation of the tip's blur, pixels (0: none)."""
    return float(wide.scan["tip_blur_nm"]) / float(pixel_size_nm)


def _blur(surface: np.ndarray, sigma_px: float) -> np.ndarray:
    """The surface as a blunt tip records it (Gaussian blur; unchanged below 0.3 px)."""
    if sigma_px < 0.3:
        return surface
    from scipy import ndimage

    return ndimage.gaussian_filter(surface, sigma_px, mode="nearest").astype(surface.dtype)
