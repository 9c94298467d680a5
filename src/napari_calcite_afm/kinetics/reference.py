"""The height reference of two registered frames: the surface that did not change.

Levelling removes each frame's own mean and plane (and bow), so two frames are put on one
height reference before their difference is a rate (:mod:`.rates`). **The assumption is
that part of the surface did not change between the two frames** (between frames minutes
apart, most of the terrace: a pixel drops by a step only when a step sweeps over it). The
reference is the densest level of the difference ``Z_{t+1} - Z_t`` over the pixels that
the labels call terrace in both frames (all pixels without labels): a Gaussian fitted to
the upper side of the histogram's peak (dissolution only lowers the surface, so only the
lower side of the unchanged pixels' peak is mixed with pixels that a step swept). Where
steps swept most of the surface between the two frames (a vicinal surface, fast steps),
the densest level is the swept one: a peak one step (0.31 nm) above it holding at least
8 % of the pixels (the histogram fitted as noise-wide peaks a step apart) is then the
unchanged surface, when the noise resolves the steps, and the pair gets a message.
Each frame is levelled on its own, so the two frames' levellings also differ by a smooth
surface and an offset per scan line; :mod:`.residue` fits and removes those first, where
that is credible (``residue=False``: one offset per pair, as before stop 29). When less
than a quarter of the reference pixels lie within noise of the reference (3 times the
noise that the two frames' own pixel-to-pixel noise gives their difference) there is no
clear unchanged part and the pair gets a message (its rates may carry an offset).
``docs/kinetics.md`` has the measured errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._util import available_cpus, thread_map
from ..checks import holds_numbers
from ..errors import KineticsError
from ..labels import LABEL_TERRACE
from ..surface import CALCITE_STEP_NM, _histogram_mode
from .residue import N_COLUMN_TERMS, levelling_residue, residue_surface

__all__ = ["HeightReference", "height_reference"]

_MAX_SAMPLE = 65536  # at most this many reference pixels per pair make its level
_MIN_PIXELS = 100  # fewer common reference pixels than this: no reference
_BIN_NM = 0.01  # histogram bin of the mode, nm
_UNCHANGED_MIN = 0.25  # below this fraction of reference pixels at one level: a message
_STEP_NM = CALCITE_STEP_NM  # calcite's monolayer step height, nm
_STEP_WINDOW_NM = 0.1  # the level found above lies this close to one step up, nm
_RESIDUE_SKIP = 0.9  # a pair with this share of its reference at one level keeps one offset
_RESIDUE_MIN = 0.5  # a levelling residue must leave this share of the reference at one level
_STEP_UP_MIN = 0.08  # share of the reference pixels there that makes it the unchanged level


def _as_movie(aligned, name: str = "aligned") -> np.ndarray:
    a = np.asarray(aligned)
    if a.ndim != 3:
        raise KineticsError(f"{name} must be a 3-D stack (frames, rows, cols), got {a.shape}")
    if not holds_numbers(a):
        raise KineticsError(f"{name} must hold heights (numbers), got dtype {a.dtype}")
    if a.shape[0] < 2:
        raise KineticsError(f"rates need at least 2 frames, got {a.shape[0]}")
    return a


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
    column_terms : numpy.ndarray, shape (frames - 1, 3), optional
        Per pair, the column polynomial of what levelling left different between the
        two frames (:func:`~.residue.levelling_residue`), nm; None: not fitted.
    row_offsets_nm : numpy.ndarray, shape (frames - 1, rows), optional
        Per pair, the offset of each row beyond ``offsets_nm``, nm; None: not fitted.

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
    column_terms: np.ndarray | None = None
    row_offsets_nm: np.ndarray | None = None

    def residue_range_nm(self) -> np.ndarray:
        """Per pair, the range (max - min over the frame, nm) of the levelling residue
        removed (0 where none was fitted, NaN where the pair has no reference)."""
        out = np.where(np.isfinite(self.offsets_nm), 0.0, np.nan)
        if self.row_offsets_nm is None or self.column_terms is None:
            return out
        for k in np.flatnonzero(np.isfinite(out)):
            out[k] = np.ptp(residue_surface(self.column_terms[k], self.row_offsets_nm[k], 64))
        return out

    def surface_nm(self, pair: int, shape: tuple[int, int]) -> np.ndarray | float:
        """``Z_{t+1} - Z_t`` of the unchanged surface of ``pair`` (t = ``pair``), nm:
        the offset, plus the levelling residue where it was fitted (a map of ``shape``)."""
        offset = float(self.offsets_nm[pair])
        if self.row_offsets_nm is None or self.column_terms is None:
            return offset
        return offset + residue_surface(
            self.column_terms[pair], self.row_offsets_nm[pair], int(shape[1])
        )


def _mode(d: np.ndarray) -> float:
    """Densest value of ``d`` (fine histogram, refined by the median near the peak)."""
    return _histogram_mode(d, _BIN_NM)


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
    a step (0.31 nm) above its densest level. Where the peak one step above holds at
    least ``_STEP_UP_MIN`` of the pixels (:func:`_share_above`), the densest level is the
    terrace a step swept between the two frames (on a vicinal surface, steps can sweep
    most of it between frames minutes apart) and the level above it is the surface that
    did not change: the level of the pixels above half a step, where it lies within
    ``_STEP_WINDOW_NM`` of one step up (else one step up itself). Repeated up to 3 steps,
    and only where the frames' own pixel noise (``pixel_noise``, the noise it gives the
    difference, nm) is below a third of a step: noisier, the peaks a step apart merge
    (``noise``, the width of the level's peak, is widened by the pixels above it).
    Returns ``(level, noise, steps)``.
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
    if d.size > _MAX_SAMPLE:  # an even sample gives the level to well within the noise
        d = d[:: d.size // _MAX_SAMPLE + 1]
    level, noise = _level(d)
    level, noise, steps = _step_up(d, level, noise, tolerance / 3.0)
    fraction = float(np.mean(np.abs(d - level) <= max(tolerance, 2 * _BIN_NM)))
    return level, fraction, noise, steps


def _with_residue(d: np.ndarray, use: np.ndarray, tolerance: float, fraction: float):
    """The pair's reference with its levelling residue (:mod:`.residue`) removed, when
    the residue is credible: the frames' noise resolves a step (as for :func:`_step_up`)
    and, removed, it leaves at least half of the reference pixels, and no fewer than
    before, at one level. Returns ``((level, fraction, noise, steps), column_terms,
    row_offsets)``, the row offsets taken relative to their median (which joins the
    level), or None (one offset per pair then)."""
    if not tolerance / 3.0 < _STEP_NM / 3:
        return None
    terms, rows = levelling_residue(np.where(use, d, 0.0), use, tolerance / 3.0)
    flat = d - residue_surface(terms, rows, d.shape[1])
    level, share, noise, steps = _pair_reference(flat[use], tolerance)
    if share < max(_RESIDUE_MIN, fraction):
        return None
    base = float(np.median(rows))
    return (level + base, share, noise, steps), terms, rows - base


def _one_pair(z0, z1, labels, pixel_noise, residue: bool):
    """The reference of one pair: ``((level, fraction, noise, steps), (column_terms,
    row_offsets) or None)``, or None without enough reference pixels."""
    d = np.asarray(z1, np.float64) - np.asarray(z0, np.float64)
    valid = np.isfinite(d)
    use = valid
    if labels is not None:
        terrace = valid & (labels[0] == LABEL_TERRACE) & (labels[1] == LABEL_TERRACE)
        use = terrace if terrace.sum() >= _MIN_PIXELS else valid
    if use.sum() < _MIN_PIXELS:
        return None
    tolerance = 3.0 * float(np.hypot(*pixel_noise))
    level = _pair_reference(d[use], tolerance)
    # swept most: a smooth start would sit a step low; nearly all at one level: no need
    if residue and not level[3] and level[1] < _RESIDUE_SKIP:
        fitted = _with_residue(d, use, tolerance, level[1])
        if fitted is not None:
            return fitted[0], fitted[1:]
    return level, None


def height_reference(aligned, labels=None, *, residue: bool = True) -> HeightReference:
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
    residue : bool
        Fit and remove what levelling left different between the two frames (a
        polynomial along the rows and an offset per row, :mod:`.residue`) before the
        level; False: one offset per pair.

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
    terms = np.zeros((n - 1, N_COLUMN_TERMS)) if residue else None
    row_offsets = np.zeros((n - 1, a.shape[1])) if residue else None

    def one(t: int):
        return _one_pair(
            a[t], a[t + 1], None if lab is None else lab[t : t + 2], pixel_noise[t : t + 2], residue
        )

    results = list(thread_map(one, range(n - 1), available_cpus()))  # numpy frees the GIL
    for t, result in enumerate(results):
        if result is None:
            no_ref.append(t)
            continue
        (offsets[t], fraction[t], noise[t], steps), fitted = result
        if fitted is not None:
            terms[t], row_offsets[t] = fitted
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
    return HeightReference(offsets, fraction, noise, messages, terms, row_offsets)
