"""Local dissolution rates between registered frames: maps, a table, a TIFF.

The local rate between frames t and t+1 is ``r(x) = -(Z_{t+1}(x) - Z_t(x)) / dt`` in
nm/s, positive where material was removed (``docs/science.md``, Kinetics). Levelling
removes each frame's own mean and plane, so the two frames are first put on one height
reference, :func:`height_reference`: **the assumption is that part of the surface did
not change between the two frames** (between frames minutes apart, most of the terrace:
a pixel drops by a step only when a step sweeps over it). The reference is the densest
level of the difference ``Z_{t+1} - Z_t`` over the pixels that the labels call terrace
in both frames (all pixels without labels): a Gaussian fitted to the upper side of the
histogram's peak (dissolution only lowers the surface, so only the lower side of the
unchanged pixels' peak is mixed with pixels that a step swept). Where steps swept most
of the surface between the two frames (a vicinal surface, fast steps), the densest level
is the swept one: a peak one step (0.31 nm) above it holding at least 8 % of the pixels
(the histogram fitted as noise-wide peaks a step apart) is then the unchanged surface,
when the noise resolves the steps, and the pair gets a message. When less than a
quarter of those pixels lie within noise of that level (3 times the noise that the two
frames' own pixel-to-pixel noise gives their difference) there is no clear unchanged part
and the pair gets a message (its rates may carry an offset). The offset is one number
per pair: a difference of tilt or bow left between the two levelled frames is not
removed (on the synthetic movies the levelling's residuals limit the dissolved volume
to about +-20 % per pair; ``docs/kinetics.md``).

Units: heights nm, times s, rates nm/s, molar rates mol m^-2 s^-1 (calcite molar volume
36.93 cm^3/mol: 1 nm/s = 2.708e-5 mol m^-2 s^-1), volumes nm^3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import stop_requested
from ..errors import Cancelled, KineticsError
from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE

__all__ = [
    "MOLAR_VOLUME_CM3_MOL",
    "NM_S_TO_MOL_M2_S",
    "RATE_COLUMNS",
    "HeightReference",
    "KineticsError",
    "RateTable",
    "height_reference",
    "rate_maps",
    "rate_table",
    "write_rates_tif",
]

#: Molar volume of calcite, cm^3/mol.
MOLAR_VOLUME_CM3_MOL = 36.93
#: 1 nm/s of surface retreat in mol m^-2 s^-1: 1e-9 m/s / (36.93e-6 m^3/mol).
NM_S_TO_MOL_M2_S = 1e-9 / (MOLAR_VOLUME_CM3_MOL * 1e-6)
#: The columns of :class:`RateTable`, in order.
RATE_COLUMNS = (
    "frame",
    "time_s",
    "dt_s",
    "rate_nm_s",
    "rate_pits_nm_s",
    "rate_terrace_nm_s",
    "rate_mol_m2_s",
    "rate_pits_mol_m2_s",
    "rate_terrace_mol_m2_s",
    "dissolved_volume_nm3",
)

_MIN_PIXELS = 100  # fewer common reference pixels than this: no reference
_BIN_NM = 0.01  # histogram bin of the mode, nm
_UNCHANGED_MIN = 0.25  # below this fraction of reference pixels at one level: a message
_STEP_NM = 0.31  # calcite's monolayer step height, nm (docs/science.md)
_STEP_WINDOW_NM = 0.1  # pixels this close to one step above the level count as its peak
_STEP_UP_MIN = 0.08  # share of the reference pixels there that makes it the unchanged level


def _as_movie(aligned, name: str = "aligned") -> np.ndarray:
    a = np.asarray(aligned)
    if a.ndim != 3:
        raise KineticsError(f"{name} must be a 3-D stack (frames, rows, cols), got {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise KineticsError(f"{name} must hold heights (numbers), got dtype {a.dtype}")
    if a.shape[0] < 2:
        raise KineticsError(f"rates need at least 2 frames, got {a.shape[0]}")
    return a


def _as_times(times_s, n: int) -> np.ndarray:
    """Frame times (s) from a sequence of ``n`` times or one frame interval."""
    t = np.asarray(times_s, dtype=np.float64)
    if t.ndim == 0:
        t = np.arange(n, dtype=np.float64) * float(t)
    if t.shape != (n,):
        raise KineticsError(f"times_s must hold one time per frame ({n}), got shape {t.shape}")
    dt = np.diff(t)
    if not (np.isfinite(t).all() and (dt > 0).all()):
        raise KineticsError(
            f"frame times must be finite and increase from frame to frame, got {t.tolist()}"
        )
    return t


def _as_labels(labels, shape) -> np.ndarray | None:
    if labels is None:
        return None
    lab = np.asarray(labels)
    if lab.shape != tuple(shape):
        raise KineticsError(
            f"labels of shape {lab.shape} do not match the height stack's {tuple(shape)}"
        )
    return lab


@dataclass
class HeightReference:
    """The common height reference of each pair of successive frames.

    Attributes
    ----------
    offsets_nm : numpy.ndarray, shape (frames - 1,)
        ``Z_{t+1} - Z_t`` over the surface that did not change, nm (the instrument's
        vertical offset between the two levelled frames); NaN where not measurable.
    unchanged_fraction : numpy.ndarray, shape (frames - 1,)
        Fraction of the reference pixels within 3 noise widths of that level (the noise
        that the two frames' own pixel-to-pixel noise gives their difference).
    noise_nm : numpy.ndarray, shape (frames - 1,)
        Standard deviation of the difference over the unchanged pixels, nm.
    messages : list of str
        Pairs without a clear unchanged part, or without reference pixels.

    Examples
    --------
    >>> ref = height_reference(np.stack([np.zeros((16, 16)), np.full((16, 16), 2.0)]))
    >>> ref.offsets_nm.round(3).tolist(), ref.unchanged_fraction.tolist()
    ([2.0], [1.0])
    """

    offsets_nm: np.ndarray
    unchanged_fraction: np.ndarray
    noise_nm: np.ndarray
    messages: list[str] = field(default_factory=list)


def _mode(d: np.ndarray) -> float:
    """Densest value of ``d`` (fine histogram, refined by the median near the peak)."""
    med = float(np.median(d))
    spread = 1.4826 * float(np.median(np.abs(d - med))) + 2 * _BIN_NM
    half = min(max(4 * spread, 10 * _BIN_NM), 50.0)
    nbins = max(int(2 * half / _BIN_NM), 10)
    hist, edges = np.histogram(d, bins=nbins, range=(med - half, med + half))
    hist = ndimage.uniform_filter1d(hist.astype(float), 3)
    k = int(np.argmax(hist))
    mode = 0.5 * (edges[k] + edges[k + 1])
    near = d[np.abs(d - mode) <= 3 * _BIN_NM]
    return float(np.median(near)) if near.size else mode


def _level(d: np.ndarray) -> tuple[float, float]:
    """Level (nm) and noise (nm) of the unchanged pixels among differences ``d``.

    Dissolution only lowers the surface, so the unchanged pixels' peak is contaminated
    on its lower side (pixels a step swept, blurred by noise) but not on its upper side:
    a Gaussian is fitted to the histogram from half a noise width below the mode up,
    which a plain mode or median near the peak would pull toward the lower side.
    """
    from scipy.optimize import curve_fit

    mode = _mode(d)
    upper = d[d > mode] - mode
    if upper.size < 50:  # (nearly) noise-free: the mode is the level
        return mode, float(np.median(upper)) / 0.674 if upper.size else 0.0
    # the median of the upper half of N(0, s) is 0.674 s
    sigma = max(float(np.median(upper)) / 0.674, _BIN_NM)
    lo, hi = mode - 0.5 * sigma, mode + 4 * sigma
    nbins = int(np.clip((hi - lo) / (0.1 * sigma), 20, 200))
    hist, edges = np.histogram(d, bins=nbins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    if hist.sum() < 50:
        return mode, sigma

    def gauss(x, a, mu, s):
        return a * np.exp(-0.5 * ((x - mu) / s) ** 2)

    try:
        (_, mu, s), _ = curve_fit(
            gauss, centres, hist.astype(float), p0=(float(hist.max()), mode, sigma), maxfev=200
        )
    except (RuntimeError, ValueError):
        return mode, sigma
    if not (np.isfinite(mu) and abs(mu - mode) < 2 * sigma and 0 < abs(s) < 5 * sigma):
        return mode, sigma
    return float(mu), float(abs(s))


def _pixel_noise(frame: np.ndarray) -> float:
    """Noise of one frame (nm) from its pixel-to-pixel differences along the rows."""
    dz = np.diff(np.asarray(frame, np.float64), axis=1)
    dz = dz[np.isfinite(dz)]
    return 1.4826 * float(np.median(np.abs(dz))) / np.sqrt(2.0) if dz.size else float("nan")


def _share_above(d: np.ndarray, level: float, pixel_noise: float) -> float:
    """Share of ``d`` in a peak one step above ``level``: the histogram (0.02 nm bins) is
    fitted as peaks of the pixel noise's width at ``level + k`` steps (k = -2 to 1) over a
    flat background, by non-negative least squares; the share of the k = 1 peak."""
    from scipy.optimize import nnls

    sigma = max(pixel_noise, 0.02)
    edges = np.arange(level - 2.6 * _STEP_NM, level + 2.0 * _STEP_NM, 0.02)
    hist, _ = np.histogram(d, bins=edges)
    x = 0.5 * (edges[:-1] + edges[1:])
    cols = [np.exp(-0.5 * ((x - level - k * _STEP_NM) / sigma) ** 2) for k in (-2, -1, 0, 1)]
    amp, _ = nnls(np.stack([*cols, np.ones_like(x)], axis=1), hist.astype(float))
    areas = amp[:4] * [c.sum() for c in cols]
    return float(areas[3] / max(d.size, 1))


def _step_up(
    d: np.ndarray, level: float, noise: float, pixel_noise: float
) -> tuple[float, float, int]:
    """The unchanged level when a step swept most of the reference surface.

    Dissolution only lowers the surface, so nothing of the reference surface should lie
    a step (0.31 nm) above its densest level. Where at least ``_STEP_UP_MIN`` of the
    pixels lie within ``_STEP_WINDOW_NM`` of that height, and at least three times what
    the frames' own pixel noise (``pixel_noise``: the noise it gives the difference, nm;
    the width of the level's peak, ``noise``, is widened by the pixels above it) would
    put there, the densest level is the terrace
    a step swept between the two frames and the level above it is the surface that did
    not change (between frames minutes apart on a vicinal surface, steps can sweep
    most of it). Repeated up to 3 steps. Returns ``(level, noise, steps)``.
    """
    steps = 0
    if not pixel_noise < _STEP_NM / 3:  # steps not resolved: no peak above can be told
        return level, noise, steps
    while steps < 3 and _share_above(d, level, pixel_noise) >= _STEP_UP_MIN:
        above = level + _STEP_NM
        upper = d[d > level + _STEP_NM / 2]
        new, new_noise = _level(upper) if upper.size >= _MIN_PIXELS else (above, noise)
        level, noise = (new, new_noise) if abs(new - above) < _STEP_WINDOW_NM else (above, noise)
        steps += 1
    return level, noise, steps


def _pair_reference(d: np.ndarray, tolerance: float) -> tuple[float, float, float, int]:
    """Level, unchanged fraction, noise and steps moved up (:func:`_step_up`) of the
    differences ``d`` of one pair.

    The unchanged fraction counts the differences within ``tolerance`` (3 times the
    noise that the two frames' own pixel noise gives their difference) of the level.
    """
    level, noise = _level(d)
    level, noise, steps = _step_up(d, level, noise, tolerance / 3.0)
    fraction = float(np.mean(np.abs(d - level) <= max(tolerance, 2 * _BIN_NM)))
    return level, fraction, noise, steps


def height_reference(aligned, labels=None) -> HeightReference:
    """Height reference of each pair of successive registered frames.

    Assumes that part of the surface did not change between the two frames (see the
    module docstring); with ``labels``, only pixels labelled terrace (2) in both frames
    are used (all valid pixels where fewer than 100 are).

    Parameters
    ----------
    aligned : array_like, shape (frames, rows, cols)
        Registered heights, nm (NaN outside the data).
    labels : array_like of int, optional
        Labels on the same grid (1 multilayer pit, 2 terrace, 3 monolayer pit).

    Returns
    -------
    HeightReference

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z0 = rng.normal(0, 0.03, (64, 64))
    >>> z1 = z0 + 1.5 + rng.normal(0, 0.03, (64, 64)); z1[:16] -= 0.31  # a step swept
    >>> ref = height_reference(np.stack([z0, z1]))
    >>> round(float(ref.offsets_nm[0]), 1), ref.messages
    (1.5, [])
    """
    a = _as_movie(aligned)
    lab = _as_labels(labels, a.shape)
    n = a.shape[0]
    offsets = np.full(n - 1, np.nan)
    fraction = np.full(n - 1, np.nan)
    noise = np.full(n - 1, np.nan)
    no_ref, unclear, swept = [], [], []
    pixel_noise = [_pixel_noise(a[t]) for t in range(n)]
    for t in range(n - 1):
        d = np.asarray(a[t + 1], np.float64) - np.asarray(a[t], np.float64)
        valid = np.isfinite(d)
        use = valid
        if lab is not None:
            terrace = valid & (lab[t] == LABEL_TERRACE) & (lab[t + 1] == LABEL_TERRACE)
            use = terrace if terrace.sum() >= _MIN_PIXELS else valid
        if use.sum() < _MIN_PIXELS:
            no_ref.append(t)
            continue
        tolerance = 3.0 * float(np.hypot(pixel_noise[t], pixel_noise[t + 1]))
        offsets[t], fraction[t], noise[t], steps = _pair_reference(d[use], tolerance)
        if steps:
            swept.append(t)
        elif fraction[t] < _UNCHANGED_MIN:
            unclear.append(t)
    messages = []
    if no_ref:
        names = ", ".join(f"{t}-{t + 1}" for t in no_ref)
        messages.append(f"frame pairs {names}: fewer than {_MIN_PIXELS} common pixels, no rates")
    if swept:
        names = ", ".join(f"{t}-{t + 1} ({100 * fraction[t]:.0f} %)" for t in swept)
        messages.append(
            f"frame pairs {names}: steps swept most of the reference surface between the "
            "two frames; the height reference is the level a step above, which the given "
            "share kept (their rates are uncertain by about a step per frame interval)"
        )
    if unclear:
        names = ", ".join(f"{t}-{t + 1} ({100 * fraction[t]:.0f} %)" for t in unclear)
        messages.append(
            f"frame pairs {names}: no clear unchanged surface (the share of the reference "
            "pixels at one height level is given); their rates may carry an offset"
        )
    return HeightReference(offsets, fraction, noise, messages)


def rate_maps(
    aligned,
    times_s,
    labels=None,
    *,
    reference: HeightReference | None = None,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
) -> np.ndarray:
    """Local dissolution rate between successive registered frames, nm/s.

    ``r = -(Z_{t+1} - ref_t - Z_t) / (t_{t+1} - t_t)`` with ``ref_t`` the height
    reference of the pair (:func:`height_reference`: the assumption that part of the
    surface did not change), so that the unchanged surface has rate 0 and dissolved
    material a positive rate.

    Parameters
    ----------
    aligned : array_like, shape (frames, rows, cols)
        Registered heights, nm, on frame 0's pixel grid (NaN outside each frame's data).
    times_s : float or sequence of float
        Frame times, s (one per frame, increasing), or the frame interval.
    labels : array_like of int, optional
        Labels on the same grid, used for the height reference (terrace in both frames).
    reference : HeightReference, optional
        A reference already computed for these frames (saves computing it again).
    progress : callable, optional
        Called after each pair with ``{"stage": "rates", "frame": t, "n_frames": n - 1}``.
    stop : callable or threading.Event, optional
        Checked before each pair; when set, raises
        :class:`~napari_calcite_afm.errors.Cancelled`.

    Returns
    -------
    numpy.ndarray, float32, shape (frames - 1, rows, cols)
        Rates in nm/s, positive where material was removed; NaN where the two frames do
        not both cover the pixel, or where the pair has no height reference.

    Raises
    ------
    KineticsError
        Fewer than 2 frames, bad times, labels of another shape.

    Examples
    --------
    >>> z0 = np.zeros((32, 32)); z1 = np.full((32, 32), 5.0)   # instrument offset 5 nm
    >>> z1[:8] -= 0.3                                           # 0.3 nm lost on a quarter
    >>> r = rate_maps(np.stack([z0, z1]), [0.0, 300.0])
    >>> r.shape, r.dtype.name, round(float(r[0, 0, 0]), 6), abs(round(float(r[0, -1, 0]), 6))
    ((1, 32, 32), 'float32', 0.001, 0.0)
    """
    a = _as_movie(aligned)
    t = _as_times(times_s, a.shape[0])
    ref = reference if reference is not None else height_reference(a, labels)
    if ref.offsets_nm.shape != (a.shape[0] - 1,):
        raise KineticsError(
            f"the height reference has {ref.offsets_nm.shape[0]} pairs, the stack {a.shape[0] - 1}"
        )
    n = a.shape[0]
    out = np.full((n - 1, *a.shape[1:]), np.nan, dtype=np.float32)
    for k in range(n - 1):
        if stop_requested(stop):
            raise Cancelled(f"stopped after {k} of {n - 1} rate maps")
        if np.isfinite(ref.offsets_nm[k]):
            d = np.asarray(a[k + 1], np.float64) - np.asarray(a[k], np.float64)
            out[k] = -(d - ref.offsets_nm[k]) / (t[k + 1] - t[k])
        if progress is not None:
            progress({"stage": "rates", "frame": k, "n_frames": n - 1})
    return out


@dataclass
class RateTable:
    """Per frame pair: mean rates overall, in pits and on terraces, and dissolved volume.

    Attributes
    ----------
    rows : list of dict
        One dict per pair with the keys :data:`RATE_COLUMNS`: ``frame`` (the first frame
        of the pair, the index of its rate map), ``time_s`` (that frame's time),
        ``dt_s``; mean rates in nm/s and mol m^-2 s^-1 over all valid pixels
        (``rate_*``), over pit pixels (``rate_pits_*``: multilayer or monolayer pit in
        either frame) and terrace pixels (``rate_terrace_*``: terrace in both frames);
        ``dissolved_volume_nm3``, the sum of ``r * dt`` times the pixel area over the
        valid pixels (net: material gained counts negative). NaN where not measurable
        (the pit and terrace columns without labels).
    messages : list of str
        The height reference's messages.

    Examples
    --------
    >>> table = rate_table(np.full((1, 4, 4), 0.01, np.float32), [0.0, 300.0], 10.0)
    >>> row = table.to_rows()[0]
    >>> round(row["rate_nm_s"], 6), round(row["dissolved_volume_nm3"], 3)
    (0.01, 4800.0)
    >>> f"{row['rate_mol_m2_s']:.4g}"
    '2.708e-07'
    """

    rows: list[dict[str, Any]]
    messages: list[str] = field(default_factory=list)

    def to_rows(self) -> list[dict[str, Any]]:
        """The rows as plain dicts of Python numbers (for CSV and JSON)."""
        return [{k: row[k] for k in RATE_COLUMNS} for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Columns and rows, JSON-serialisable (NaN stays NaN: use ``json_safe``)."""
        return {
            "columns": list(RATE_COLUMNS),
            "rows": self.to_rows(),
            "messages": list(self.messages),
        }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def rate_table(
    rates,
    times_s,
    pixel_size_nm: float,
    labels=None,
    *,
    reference: HeightReference | None = None,
) -> RateTable:
    """The per-pair table of :class:`RateTable` from the rate maps of :func:`rate_maps`.

    Parameters
    ----------
    rates : array_like, shape (frames - 1, rows, cols)
        Rate maps, nm/s.
    times_s : float or sequence of float
        Frame times of the *frames* (one more than rate maps), s, or the frame interval.
    pixel_size_nm : float
        Pixel size, nm per pixel.
    labels : array_like of int, shape (frames, rows, cols), optional
        Labels of the frames (for the pit and terrace columns).
    reference : HeightReference, optional
        Its messages are carried into the table.

    Returns
    -------
    RateTable

    Examples
    --------
    >>> lab = np.full((2, 4, 4), 2, np.uint8); lab[1, :2] = 1   # a pit grew over half
    >>> r = np.zeros((1, 4, 4), np.float32); r[0, :2] = 0.002
    >>> row = rate_table(r, 300.0, 10.0, lab).to_rows()[0]
    >>> [round(row[k], 6) for k in ("rate_pits_nm_s", "rate_terrace_nm_s", "rate_nm_s")]
    [0.002, 0.0, 0.001]
    """
    r = np.asarray(rates)
    if r.ndim != 3:
        raise KineticsError(f"rates must be a 3-D stack (pairs, rows, cols), got {r.shape}")
    t = _as_times(times_s, r.shape[0] + 1)
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise KineticsError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    lab = _as_labels(labels, (r.shape[0] + 1, *r.shape[1:]))
    area = float(pixel_size_nm) ** 2
    rows = []
    for k in range(r.shape[0]):
        rk = np.asarray(r[k], np.float64)
        valid = np.isfinite(rk)
        dt = float(t[k + 1] - t[k])
        row = {"frame": k, "time_s": float(t[k]), "dt_s": dt, "rate_nm_s": _mean(rk[valid])}
        pits = terrace = None
        if lab is not None:
            is_pit = np.isin(lab[k], (LABEL_MULTILAYER, LABEL_MONOLAYER)) | np.isin(
                lab[k + 1], (LABEL_MULTILAYER, LABEL_MONOLAYER)
            )
            pits = _mean(rk[valid & is_pit])
            terrace = _mean(rk[valid & (lab[k] == LABEL_TERRACE) & (lab[k + 1] == LABEL_TERRACE)])
        row["rate_pits_nm_s"] = float("nan") if pits is None else pits
        row["rate_terrace_nm_s"] = float("nan") if terrace is None else terrace
        for key in ("", "_pits", "_terrace"):
            row[f"rate{key}_mol_m2_s"] = row[f"rate{key}_nm_s"] * NM_S_TO_MOL_M2_S
        row["dissolved_volume_nm3"] = float(rk[valid].sum() * dt * area)
        rows.append(row)
    return RateTable(rows, list(reference.messages) if reference is not None else [])


def write_rates_tif(
    path: str | Path,
    rates,
    pixel_size_nm: float,
    *,
    frame_interval_s: float | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write rate maps as a float32 ImageJ TIFF (value unit nm/s), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``rates.tif``).
    rates : array_like, shape (frames - 1, rows, cols)
        Rate maps, nm/s (:func:`rate_maps`).
    pixel_size_nm : float
        Pixel size, nm per pixel.
    frame_interval_s : float, optional
        Time between frames, s.
    metadata : dict, optional
        Extra JSON-serialisable metadata (e.g. the height reference's messages).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "rates.tif"
    >>> _ = write_rates_tif(out, np.zeros((2, 8, 8), np.float32), 11.7, frame_interval_s=300.0)
    >>> tifffile.imread(out).dtype.name, tifffile.imread(out).shape
    ('float32', (2, 8, 8))
    """
    from ..io import write_tiff

    r = np.asarray(rates)
    if r.ndim != 3:
        raise KineticsError(f"rates must be a 3-D stack (pairs, rows, cols), got {r.shape}")
    meta: dict[str, Any] = {"quantity": "local dissolution rate", "unit": "nm/s"}
    if metadata:
        meta.update(metadata)
    return write_tiff(
        path,
        r.astype(np.float32),
        pixel_size_nm,
        frame_interval_s=frame_interval_s,
        unit="nm/s",
        metadata=meta,
    )
