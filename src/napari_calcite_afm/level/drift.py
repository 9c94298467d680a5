"""Drift between the frames of a stack: :func:`register_stack` and :func:`shift_stack`.

:func:`register_stack` measures the drift and removes it with :func:`shift_stack`;
shifts are in pixels, ``scipy.ndimage.shift`` convention (the shift that, applied to
frame t, aligns it with frame 0). Each pair of frames is first matched as a whole by a
robust phase correlation (whitened, low-pass filtered spectra, subpixel upsampling):
strong and reliable even for large shifts, but on a dissolving surface it partly follows
the retreating steps and widening pits. The shift is then corrected on what does not
move: the fine texture of the terraces (:mod:`._texture`) and the bottoms of the deep
pits, which stay on their dislocations (:mod:`._anchors`); it is checked against frames
two and three apart and tied to every frame that shares a pit bottom
(:mod:`._consensus`). Pairs with a weak correlation peak, or a jump far beyond the
drift of the frames before that neither a strong peak nor the terrace texture confirms
(:mod:`._pairs`), are rejected; their frames get shifts interpolated from their
neighbours, and the result says so (:attr:`Registration.messages`; the confidence of
each frame and the messages: :mod:`._verdict`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .._util import available_cpus, stop_requested, thread_map
from ..errors import Cancelled, LevelError
from ._anchors import _anchor_pass
from ._consensus import _fill, _frame_list, _Measurement, _solve_positions
from ._correlation import _cross_correlation, _peak, _subpixel, _window, _z_score
from ._input import _as_stack
from ._leading import extrapolate_leading, skip_odd_leading
from ._pairs import (
    _GOOD,
    _WEAK,
    _jump,
    _off_trend,
    _on_trend,
    _Pair,
    _staircase_alias,
    _texture_confirms,
)
from ._texture import (
    _TEX_STRONG,
    _TEX_WEAK,
    _bias_posterior,
    _refine,
    _texture_spectra,
    _z_surface,
)
from ._verdict import _confidence, _messages
from .robust import _eval_poly, _fit_poly

__all__ = ["Registration", "register_stack", "shift_stack"]


@dataclass
class Registration:
    """Result of :func:`register_stack`.

    Attributes
    ----------
    aligned : numpy.ndarray, float32, shape (frames, rows, cols)
        The shifted stack (nm); NaN where a frame has no data after shifting.
    shifts : numpy.ndarray, float, shape (frames, 2)
        (row, col) shift in pixels *applied* to each frame to align it to frame 0
        (``scipy.ndimage.shift`` convention; frame 0 gets (0, 0)).
    valid : tuple of slice
        (rows, cols) region that every shifted frame covers (the overlap): pixels
        there hold data unless they were NaN in the input already.
    confidence : numpy.ndarray, float, shape (frames,)
        How far each frame's shift can be trusted, 0 to 1: the strength of its
        whole-frame correlation peak (0 at 8 standard deviations of the correlation
        surface, 1 from 20), times 0.5-1 for the strength of its terrace-texture peak
        (0.5 at 5 or below, 1 from 8; 1 where pit bottoms agree on the shift),
        divided by ``1 + (r / 0.5 px)**2`` for the disagreement ``r`` with frames
        2-3 apart, and (with ``texture``) by ``1 + e**2`` where the standard
        deviation of its solved position exceeds half a pixel by ``e`` px (a weak
        texture pair adds about a pixel to every frame after it: errors add up along
        the movie); 0 for rejected frames, 1 for frame 0.
    rejected : numpy.ndarray, bool, shape (frames,)
        Frames whose shift was not measured (no data, weak correlation, implausible
        jump) but interpolated from the frames around them.
    messages : list of str
        What a user should know, one sentence each, naming the frames (numbered from
        0): rejected frames and why, frames registered without texture, a common area
        below half the frame. Empty when all went well.

    Examples
    --------
    >>> reg = register_stack(np.zeros((2, 8, 8)))
    >>> reg.shifts.tolist(), reg.valid
    ([[0.0, 0.0], [0.0, 0.0]], (slice(0, 8, None), slice(0, 8, None)))
    >>> reg.rejected.tolist(), reg.confidence.tolist()
    ([False, True], [1.0, 0.0])
    >>> reg.messages  # two flat frames: nothing to correlate
    ['drift of frame 1 rejected (weak correlation) and interpolated from the frames around']
    """

    aligned: np.ndarray
    shifts: np.ndarray
    valid: tuple[slice, slice]
    confidence: np.ndarray | None = None
    rejected: np.ndarray | None = None
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = int(np.asarray(self.shifts).shape[0])
        if self.confidence is None:
            self.confidence = np.ones(n)
        if self.rejected is None:
            self.rejected = np.zeros(n, bool)

    @property
    def common_fraction(self) -> float:
        """Fraction of the frame inside :attr:`valid` (the area every frame covers)."""
        rows, cols = self.aligned.shape[1:]
        area = (self.valid[0].stop - self.valid[0].start) * (
            self.valid[1].stop - self.valid[1].start
        )
        return float(area) / max(rows * cols, 1)


_REG_NOISE_K = 3.0  # whitening regularisation, in units of the high-frequency noise floor
_REG_LOWPASS = 0.15  # Gaussian low-pass of the correlation, cycles per pixel


def _spectrum(frame: np.ndarray, window, lowpass: np.ndarray, highf: np.ndarray):
    """Weighted Fourier transform of one frame for drift measurement.

    The frame is made tilt-free, NaN set to 0 and windowed (Hann); its spectrum is
    whitened with a regularised magnitude, ``F / sqrt(|F|**2 + (k * floor)**2)`` with
    ``floor`` the median magnitude at the highest frequencies (the noise), and weighted by
    a Gaussian low-pass. Pure phase correlation amplifies noise on smooth or noisy
    surfaces, plain cross-correlation gives broad peaks on terraced ones; this is a
    robust middle (tested on synthetic calcite and Gaussian random surfaces).
    """
    z = np.asarray(frame, np.float64)
    finite = np.isfinite(z)
    if not finite.any():
        return np.zeros(z.shape, complex)
    z = z - _eval_poly(_fit_poly(z, finite, 1), z.shape)  # drop tilt
    z[~finite] = 0.0
    f = np.fft.fft2(z * window)
    mag = np.abs(f)
    floor = float(np.median(mag[highf])) if highf.any() else 0.0
    scale = np.sqrt(mag**2 + (_REG_NOISE_K * floor) ** 2)
    scale[scale == 0] = 1.0
    return f / scale * lowpass


def _restricted_shift(f_ref: np.ndarray, f_mov: np.ndarray, max_shift: float) -> np.ndarray:
    """Correlation peak searched within +-max_shift pixels (parabolic subpixel)."""
    cc = _cross_correlation(f_ref, f_mov)
    return _subpixel(cc, _peak(cc, _window(cc.shape, max_shift)))


def _pair_shift(f_ref, f_mov, upsample_factor, max_shift) -> np.ndarray:
    from skimage.registration import phase_cross_correlation

    if not (f_ref.any() and f_mov.any()):  # a frame without data: nothing to measure
        return np.zeros(2)
    shift = phase_cross_correlation(
        f_ref, f_mov, upsample_factor=upsample_factor, space="fourier", normalization=None
    )[0]
    shift = np.asarray(shift, float)
    if max_shift is not None and np.any(np.abs(shift) > max_shift):
        shift = _restricted_shift(f_ref, f_mov, max_shift)
    return shift


# -- decisions (peak strengths are z-scores of the correlation peak over its surface)
_TEX_RADIUS = 12  # texture offsets searched around the whole-frame shift, pixels
_TEX_EXCESS = 0.5  # a texture peak must exceed the movie's noise peaks by this to count
_MAX_LAG = 3  # successive frames are also checked against frames up to this far apart


def _peak_strength(f_ref: np.ndarray, f_mov: np.ndarray, max_shift) -> float:
    """z-score of the correlation peak against the rest of the correlation surface."""
    if not (f_ref.any() and f_mov.any()):
        return 0.0
    cc = _cross_correlation(f_ref, f_mov)
    allowed = _window(cc.shape, max_shift)
    return _z_score(cc, _peak(cc, allowed), allowed)


def _all_textures(a: np.ndarray, has_data: list[bool]) -> list:
    """The texture spectra of every frame with data (None elsewhere), on threads."""

    def one(i: int):
        return _texture_spectra(a[i]) if has_data[i] else None

    return list(thread_map(one, range(a.shape[0]), available_cpus()))


def _whole_frame_pass(
    a, reference, upsample_factor, max_shift, use_texture, progress, stop, computed=None
):
    """Measure each frame against its reference by whole-frame phase correlation.

    The reference is the last accepted frame (``"previous"``) or the first frame with
    data (``"first"``). Returns ``(pairs, textures, anchor)``: one :class:`_Pair` per
    frame after the anchor, the texture spectra of the accepted frames (when
    ``use_texture``) and the anchor (the first frame with data); ``computed``: the
    textures of :func:`_all_textures`, when computed already."""
    n, rows, cols = a.shape
    window = np.outer(np.hanning(rows), np.hanning(cols)) if min(rows, cols) > 2 else 1.0
    freq = np.hypot(np.fft.fftfreq(rows)[:, None], np.fft.fftfreq(cols)[None, :])
    lowpass = np.exp(-0.5 * (freq / _REG_LOWPASS) ** 2)  # applied to both: Gaussian^2
    highf = freq > 0.35
    has_data = [bool(np.isfinite(a[i]).any()) for i in range(n)]
    anchor = has_data.index(True) if any(has_data) else 0
    ref, ref_spec = anchor, _spectrum(a[anchor], window, lowpass, highf)
    textures: list = [None] * n
    # every frame's texture at once, side by side on threads (the filters release the
    # GIL); kept below only for the accepted frames, so the result does not depend on it
    if computed is None:
        computed = _all_textures(a, has_data) if use_texture else textures
    if use_texture:
        textures[anchor] = computed[anchor]
    positions = {anchor: np.zeros(2)}
    pairs: list[_Pair] = []
    for i in range(anchor + 1, n):
        if stop_requested(stop):
            raise Cancelled(f"stopped after registering {i} of {n} frames")
        if not has_data[i]:
            pairs.append(_Pair(ref, i, np.zeros(2), 0.0, reason="no data"))
            continue
        cur = _spectrum(a[i], window, lowpass, highf)
        shift = _pair_shift(ref_spec, cur, upsample_factor, max_shift)
        pair = _Pair(ref, i, shift, _peak_strength(ref_spec, cur, max_shift))
        if pair.strength < _WEAK:
            if not _on_trend(pair, positions):  # faint but on the trend: kept (confidence 0)
                pair.reason = "weak correlation"
        elif _jump(pair, positions):
            textures_of = (computed[ref], computed[i]) if use_texture else None
            _judge_jump(pair, positions, (ref_spec, cur), textures_of, a.shape[1:], max_shift)
        elif use_texture and _off_trend(pair, positions):
            # within the allowance of a jump, but where a staircase alias would lie
            if not _texture_confirms(computed[ref], computed[i], pair.coarse, a.shape[1:]):
                _staircase_alias(pair, positions, ref_spec, cur, _WEAK, max_shift)
        pairs.append(pair)
        if not pair.reason:
            positions[i] = positions[ref] + pair.coarse
            if use_texture:
                textures[i] = computed[i]
            if reference == "previous":
                ref, ref_spec = i, cur
        if progress is not None:
            progress({"stage": "register", "frame": i, "n_frames": n})
    return pairs, textures, anchor


def _judge_jump(pair: _Pair, positions, spectra, textures, shape, max_shift) -> None:
    """Decide a pair whose whole-frame shift jumps off the drift trend (sets ``reason``
    when it is rejected). With the texture (``textures``, the two frames' texture
    spectra; None without): kept as it is where the texture confirms it, moved to the
    correlation peak near the trend where a staircase matched itself one step spacing
    away (:func:`._pairs._staircase_alias`). Otherwise a strong peak (``_GOOD``) is
    kept and a weaker one rejected."""
    if textures is not None and (
        _texture_confirms(*textures, pair.coarse, shape)
        or _staircase_alias(pair, positions, *spectra, _WEAK, max_shift)
    ):
        return
    if pair.strength < _GOOD:
        pair.reason = "a jump far beyond the drift before it"


def _texture_pass(pairs: list[_Pair], textures, shape, max_shift) -> None:
    """Correct each accepted pair's shift on the terrace texture (sets ``shift``).

    A correction is applied where the texture peak stands out of the peaks that the
    same textures give at an unrelated offset (half a frame away: the noise level of
    this movie's texture), on its own or on average over the pair and two pairs on
    either side; elsewhere the whole-frame shift is kept.
    """
    accepted = [p for p in pairs if not p.reason]
    if not accepted:
        return
    radius = int(min(_TEX_RADIUS, max(2, min(shape) // 8)))
    grids = [
        _z_surface(textures[p.ref], textures[p.mov], p.coarse, radius, shape) for p in accepted
    ]
    far = np.array(shape, float) / 2
    null = [
        _z_surface(textures[p.ref], textures[p.mov], p.coarse + far, radius, shape).max()
        for p in accepted
    ]
    level = float(np.median(null))
    offsets = np.arange(-radius, radius + 1, dtype=float)
    found = []
    for p, grid, post in zip(accepted, grids, _bias_posterior(grids)):
        source = grid if grid.max() >= _TEX_STRONG else post
        k = np.unravel_index(int(np.argmax(source)), source.shape)
        start = p.coarse + np.array([offsets[k[0]], offsets[k[1]]])
        found.append(_refine(textures[p.ref], textures[p.mov], start, shape))
    excess = np.array([z for _, z in found]) - level
    for i, (p, (shift, z)) in enumerate(zip(accepted, found)):
        p.texture_z = z
        near = excess[max(0, i - 2) : i + 3]
        use = excess[i] >= _TEX_EXCESS or (excess[i] > 0 and near.mean() >= _TEX_EXCESS)
        p.shift = shift if use else p.coarse.copy()
        if max_shift is not None:
            p.shift = np.clip(p.shift, -max_shift, max_shift)


def _measurements(pairs, textures, shape, anchor, use_texture, reference):
    """The lag-1 measurements and (texture, ``"previous"``) frames 2-3 apart."""
    accepted = [p for p in pairs if not p.reason]
    meas = []
    for p in accepted:
        z = p.texture_z
        weight = (z - 3.0) ** 2 if use_texture and z >= _TEX_WEAK else 1.0
        meas.append(_Measurement(p.ref, p.mov, p.shift, weight))
    if not use_texture or reference != "previous":
        return meas
    frames = [anchor] + [p.mov for p in accepted]
    chain = {anchor: np.zeros(2)}
    for p in accepted:
        chain[p.mov] = chain[p.ref] + p.shift
    for lag in range(2, _MAX_LAG + 1):
        for i, j in zip(frames[:-lag], frames[lag:]):
            predicted = chain[j] - chain[i]
            shift, z = _refine(textures[i], textures[j], predicted, shape)
            if z >= _TEX_WEAK and np.abs(shift - predicted).max() < 2.0:
                meas.append(_Measurement(i, j, shift, (z - 3.0) ** 2))
    return meas


def _valid_region(shifts: np.ndarray, rows: int, cols: int) -> tuple[slice, slice]:
    """The (rows, cols) region that every shifted frame covers."""
    eps = 1e-6
    r0 = int(np.ceil(max(shifts[:, 0].max(), 0.0) - eps))
    r1 = rows + int(np.floor(min(shifts[:, 0].min(), 0.0) + eps))
    c0 = int(np.ceil(max(shifts[:, 1].max(), 0.0) - eps))
    c1 = cols + int(np.floor(min(shifts[:, 1].min(), 0.0) + eps))
    return (slice(r0, max(r0, r1)), slice(c0, max(c0, c1)))


def _check_args(reference, upsample_factor, max_shift) -> None:
    if reference not in ("previous", "first"):
        raise LevelError(f"reference must be 'previous' or 'first', got {reference!r}")
    if (
        isinstance(upsample_factor, bool)
        or int(upsample_factor) != upsample_factor
        or (upsample_factor < 1)
    ):
        raise LevelError(f"upsample_factor must be an integer >= 1, got {upsample_factor!r}")
    if max_shift is not None and not max_shift >= 0:
        raise LevelError(f"max_shift must be >= 0 pixels, got {max_shift!r}")


def register_stack(
    stack,
    *,
    upsample_factor: int = 20,
    reference: str = "previous",
    max_shift: float | None = None,
    texture: bool = True,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
) -> Registration:
    """Measure and remove drift between frames, saying which shifts can be trusted.

    1. Each frame is matched as a whole to its reference (the last accepted frame, or
       frame 0) by a robust phase correlation: tilt removed, NaN set to 0, Hann window,
       spectra whitened with a noise-regularised magnitude and low-pass filtered, peak
       found with ``skimage.registration.phase_cross_correlation`` (subpixel,
       ``upsample_factor``). A peak weaker than 8 standard deviations of the
       correlation surface (unless at least 5 and within 2 px of the drift trend of
       the frames before), or one that jumps far from the drift of the frames before
       it without a strong peak (20) and without a strong terrace-texture peak near it
       (the steps can bias the shifts before a true change of drift), rejects the
       frame; the next frame is then measured against the last accepted one. With
       ``texture``, such a jump (strong or weak) first takes the correlation peak near
       the trend's prediction where there is one: a regular staircase matches itself
       one step spacing away. The first shift is judged against no drift. When the
       first frame matches none after it (its pair is weak) and the movie measured
       from the next frame places at least as many frames, that pass is kept (up to 2
       leading frames skipped): the skipped frames are rejected and their drift
       continued back from the first accepted steps (:mod:`._leading`).
    2. ``texture``: on a dissolving surface the whole-frame match partly follows the
       retreating steps. The shift is corrected on the fine texture of the terraces
       away from any step edge (what does not move), pooling weak evidence over
       successive pairs. Where the texture peak is weak (a noisy or featureless
       surface) the correction is uncertain: confidence at most 0.5, and a message.
       The bottoms of deep pits (at least 1.5 nm below their surroundings: the
       dislocation pits, whose bottoms do not move while their walls retreat) are
       matched from frame to frame; a pair whose bottoms agree on another shift takes
       it where the texture does not refute it (where the texture shows nothing, once
       two bottoms agree, the bottom is proven in another pair, or one bottom keeps a
       steady offset from the pairs' shifts over 3 pairs or more); every frame that
       shares a bottom is tied to the others (errors do not add up along the movie).
    3. ``texture`` and ``"previous"``: frames 2 and 3 apart are matched on the texture
       too, and all the shifts are solved jointly by robust least squares.
    4. Rejected frames get shifts interpolated linearly from the accepted frames around
       them (held at the ends; frames without data keep the shift of the frame before),
       and every frame is shifted with :func:`shift_stack` (bilinear, NaN outside).

    Parameters
    ----------
    stack : array_like, shape (frames, rows, cols)
        Heights (nm), preferably levelled.
    upsample_factor : int
        Subpixel precision of the whole-frame match is 1 / upsample_factor pixel.
    reference : {"previous", "first"}
        ``"previous"`` registers each frame to the last accepted one and chains the
        shifts (robust when the surface changes slowly, as during dissolution);
        ``"first"`` registers every frame to frame 0.
    max_shift : float, optional
        Largest plausible shift between two registered frames (pixels, per axis); a
        correlation peak beyond it is ignored and the best peak within it is used.
    texture : bool
        Correct the shifts on the terrace texture (steps 2 and 3); False keeps the
        whole-frame phase correlation alone (faster; follows moving steps).
    progress : callable, optional
        Called after each frame with ``{"stage": "register", "frame": i, "n_frames": n}``.
    stop : callable or threading.Event, optional
        Checked before each frame; when set the function raises
        :class:`~napari_calcite_afm.errors.Cancelled`.

    Returns
    -------
    Registration
        ``aligned`` stack, ``shifts`` (frames, 2) applied to each frame, ``valid``
        overlap, ``confidence``, ``rejected`` and ``messages``.

    Raises
    ------
    LevelError
        For a stack that is not 3-D or a bad setting.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from scipy import ndimage
    >>> base = ndimage.gaussian_filter(rng.normal(size=(64, 64)), 2)
    >>> stack = np.stack([base, ndimage.shift(base, (2.0, -3.0), order=1)])
    >>> reg = register_stack(stack)
    >>> np.round(reg.shifts[1]).tolist(), bool(reg.confidence[1] > 0.5)
    ([-2.0, 3.0], True)
    """
    a = _as_stack(stack)
    _check_args(reference, upsample_factor, max_shift)
    n, rows, cols = a.shape
    use_texture = bool(texture) and n > 1

    has_data = [bool(np.isfinite(f).any()) for f in a]  # textures once, for every pass
    computed = _all_textures(a, has_data) if use_texture else None

    def run(arr, report=None):  # a pass run again (._leading) reports no progress
        return _whole_frame_pass(
            arr, reference, int(upsample_factor), max_shift, use_texture, report, stop, computed
        )

    first = run(a, progress)
    if reference == "previous":  # a first frame unlike the rest: measured from the next
        pairs, textures, anchor, skipped = skip_odd_leading(a, first, run)
    else:
        (pairs, textures, anchor), skipped = first, []
    tied = []
    if use_texture:
        _texture_pass(pairs, textures, (rows, cols), max_shift)
        tied = _anchor_pass(pairs, a, textures, _refine, (rows, cols), max_shift)
    else:
        for p in pairs:
            p.shift = p.coarse
    meas = _measurements(pairs, textures, (rows, cols), anchor, use_texture, reference)
    accepted = [anchor] + [p.mov for p in pairs if not p.reason]
    positions, residual, spread = _solve_positions(accepted, anchor, meas + tied)
    shifts = _fill(n, positions)
    for p in pairs:
        if p.reason == "no data":
            shifts[p.mov] = shifts[p.mov - 1]
    shifts = extrapolate_leading(shifts, positions, skipped)
    rejected = np.zeros(n, bool)
    rejected[[p.mov for p in pairs if p.reason] + skipped] = True
    valid = _valid_region(shifts, rows, cols)
    confidence = _confidence(pairs, residual, spread, n, anchor, use_texture)
    confidence[skipped] = 0.0
    messages = _messages(pairs, use_texture, valid, (rows, cols))
    if skipped:
        word = "frames" if len(skipped) > 1 else "frame"
        messages.insert(
            0,
            f"{word} {_frame_list(skipped)} matched none of the frames after (weak "
            f"correlation): the drift is measured from frame {anchor}, and that of "
            f"{word} {_frame_list(skipped)} continued back from the drift of the frames "
            "after (the shifts stay relative to frame 0)",
        )
    return Registration(
        aligned=shift_stack(a, shifts),
        shifts=shifts,
        valid=valid,
        confidence=confidence,
        rejected=rejected,
        messages=messages,
    )


def shift_stack(stack, shifts) -> np.ndarray:
    """Shift each frame by its (row, col) shift in pixels (bilinear); NaN outside.

    Parameters
    ----------
    stack : array_like, shape (frames, rows, cols)
        Heights (nm); NaN pixels stay NaN (and so does every output pixel whose
        interpolation would touch one).
    shifts : array_like, shape (frames, 2)
        Shift applied to each frame, ``scipy.ndimage.shift`` convention: the content
        moves by +shift, ``out[r, c] = frame[r - dr, c - dc]``.

    Returns
    -------
    numpy.ndarray, float32, shape (frames, rows, cols)

    Examples
    --------
    >>> s = shift_stack(np.arange(8.0).reshape(1, 2, 4), [[0, 1]])
    >>> s[0]
    array([[nan,  0.,  1.,  2.],
           [nan,  4.,  5.,  6.]], dtype=float32)
    """
    a = _as_stack(stack)
    sh = np.asarray(shifts, float)
    if sh.shape != (a.shape[0], 2):
        raise LevelError(f"shifts must have shape ({a.shape[0]}, 2), got {sh.shape}")
    if not np.isfinite(sh).all():
        raise LevelError("shifts must be finite")
    out = np.empty(a.shape, np.float32)
    for i in range(a.shape[0]):
        f = np.asarray(a[i], np.float64)
        if not sh[i].any():
            out[i] = f
            continue
        finite = np.isfinite(f)
        data = ndimage.shift(np.where(finite, f, 0.0), sh[i], order=1, mode="grid-constant")
        weight = ndimage.shift(finite.astype(np.float64), sh[i], order=1, mode="grid-constant")
        out[i] = np.where(weight > 1 - 1e-6, data, np.nan)
    return out
