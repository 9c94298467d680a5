"""The measured frame pairs of the drift registration (:mod:`.drift`), and whether a
pair's whole-frame shift is an implausible jump.

A :class:`_Pair` holds what was measured between two frames: the whole-frame shift and
its peak strength, then the texture correction and the pit bottoms that agree.
:func:`_jump` judges a whole-frame shift against the drift of the frames before it;
:func:`_texture_confirms` lets the terrace texture overrule that judgement where the
steps had biased the shifts before; :func:`_staircase_alias` replaces a jump by the
correlation peak near the drift trend, where a regular staircase matched itself one step
spacing away. Shifts in pixels, ``scipy.ndimage.shift`` convention.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ._correlation import _cross_correlation, _lag, _peak, _subpixel, _window, _z_score
from ._texture import _TEX_STRONG, _refine

_WEAK = 8.0  # a whole-frame peak weaker than this is noise: the pair is rejected
_GOOD = 20.0  # full confidence; a jump beyond the drift before needs at least this
_JUMP_PX = 5.0  # a shift this far (plus 4 sigma of the recent drift) from the trend is a jump
_FAINT = 5.0  # a weak whole-frame peak this strong is kept when it lies on the trend...
_TREND_PX = 2.0  # ...within this many pixels of the trend's prediction


@dataclass
class _Pair:
    """One measured pair: the shift that aligns frame ``mov`` with frame ``ref``."""

    ref: int
    mov: int
    coarse: np.ndarray  # whole-frame phase correlation, pixels
    strength: float  # its peak strength (z-score)
    reason: str = ""  # why it was rejected ("" when accepted)
    shift: np.ndarray | None = None  # after the texture correction, pixels
    texture_z: float = float("nan")  # strength of the texture peak (NaN: not used)
    anchors: int = 0  # pit bottoms that agree on the shift (:mod:`._anchors`)


def _recent_rates(positions: dict[int, np.ndarray]) -> tuple[int, np.ndarray]:
    """The last accepted frame and the drift rates (pixels per frame, ``(k, 2)``) of the
    last (up to) 5 accepted steps before it (none with a single frame)."""
    recent = sorted(positions)[-6:]
    rates = [(positions[b] - positions[a]) / (b - a) for a, b in itertools.pairwise(recent)]
    return recent[-1], np.array(rates).reshape(-1, 2)


def _jump(pair: _Pair, positions: dict[int, np.ndarray]) -> bool:
    """True when ``pair`` puts its frame far off the drift of the last accepted frames.

    The drift rate is the median over the last (up to) 5 accepted steps; with fewer
    than 2 steps the allowed deviation is 3 times wider, and with none the drift so far
    is taken as 0: a weak first peak far off (more than ``3 * _JUMP_PX`` pixels, where
    the steps of a frame-filling pit match themselves along their length) would
    otherwise set a trend that rejects every true shift after it.
    """
    last, rates = _recent_rates(positions)
    gap = pair.mov - last
    new = positions[pair.ref] + pair.coarse
    if not len(rates):
        return bool(np.any(np.abs(new - positions[last]) > 3 * _JUMP_PX * np.sqrt(gap)))
    rate = np.median(rates, axis=0)
    spread = 1.4826 * np.median(np.abs(rates - rate), axis=0)
    allowed = _JUMP_PX + 4 * spread if len(rates) >= 2 else 3 * _JUMP_PX
    predicted = positions[last] + rate * gap
    return bool(np.any(np.abs(new - predicted) > allowed * np.sqrt(gap)))


def _off_trend(pair: _Pair, positions: dict[int, np.ndarray]) -> bool:
    """True when ``pair``'s shift lies more than ``_JUMP_PX`` pixels (per axis, times the
    square root of the frame gap) from what :func:`_predicted` expects: not a jump
    (:func:`_jump`), but where a staircase alias would put it."""
    last = max(positions)
    predicted = _predicted(pair, positions)
    return bool(np.any(np.abs(pair.coarse - predicted) > _JUMP_PX * np.sqrt(pair.mov - last)))


def _on_trend(pair: _Pair, positions: dict[int, np.ndarray]) -> bool:
    """Whether a weak whole-frame peak (at least ``_FAINT``) lies within ``_TREND_PX``
    pixels (per axis, times the square root of the frame gap) of what the drift of at
    least 2 accepted steps predicts. A noise peak would fall anywhere on the correlation
    surface; one on the trend is the drift, seen faintly. Rejecting it instead makes the
    next frames be measured across ever wider gaps, where the surface has changed more
    (a development cellular movie lost 24 of its 30 frames that way)."""
    last, rates = _recent_rates(positions)
    if len(rates) < 2 or pair.strength < _FAINT:
        return False
    predicted = _predicted(pair, positions)
    return bool(np.all(np.abs(pair.coarse - predicted) <= _TREND_PX * np.sqrt(pair.mov - last)))


def _texture_confirms(tex_ref, tex_mov, shift: np.ndarray, shape) -> bool:
    """Whether the terrace texture peaks strongly near a whole-frame ``shift`` (within
    ``_JUMP_PX``): a change of the drift rate that what does not move confirms, not a
    jump. (Where the steps move, the whole-frame shifts before it can be biased by
    several pixels, so that the true shift looks like a jump from them.)"""
    if tex_ref is None or tex_mov is None:
        return False
    refined, z = _refine(tex_ref, tex_mov, shift, shape)
    return bool(z >= _TEX_STRONG and np.abs(refined - shift).max() <= _JUMP_PX)


def _predicted(pair: _Pair, positions: dict[int, np.ndarray]) -> np.ndarray:
    """The shift of ``pair`` that the drift of the last (up to) 5 accepted steps
    predicts (from its reference frame); with fewer than 2 steps, no drift since the
    last accepted frame (one step is no trend, and a first shift far off is as likely a
    staircase matching itself as drift)."""
    last, rates = _recent_rates(positions)
    if len(rates) < 2:
        return positions[last] - positions[pair.ref]
    return positions[last] + np.median(rates, axis=0) * (pair.mov - last) - positions[pair.ref]


def _peak_near(f_ref: np.ndarray, f_mov: np.ndarray, centre: np.ndarray, radius: float):
    """The whole-frame correlation peak within ``radius`` pixels (per axis) of
    ``centre``: ``(shift, strength)``, the strength a z-score over the whole surface
    (without the 5 x 5 pixels around the peak), as the main peak's; strength 0 when the
    maximum lies on the window's edge (the flank of a peak outside it)."""
    cc = _cross_correlation(f_ref, f_mov)
    allowed = _window(cc.shape, radius, centre)
    if not allowed.any():
        return np.asarray(centre, float), 0.0
    peak = _peak(cc, allowed)
    if np.abs(_lag(cc, peak) - centre).max() > radius - 1:
        return _lag(cc, peak), 0.0  # on the window's edge: the flank of a peak outside
    return _subpixel(cc, peak), _z_score(cc, peak, np.ones(cc.shape, bool))


def _staircase_alias(
    pair: _Pair, positions, f_ref, f_mov, weak: float, max_shift: float | None = None
) -> bool:
    """Replace a jump-flagged whole-frame shift by the correlation peak near the drift
    trend's prediction (inside ``_JUMP_PX``), when that peak is at least ``weak`` and
    within ``max_shift`` (pixels, per axis; None: no bound); returns whether it did.

    A staircase of regular steps (the wall of a large pit) matches itself one step
    spacing away: its correlation then peaks there, often strongly (a development movie
    jumped 24 px between two frames whose drift differed by 2 px), beside a peak at the
    true shift.
    """
    predicted = _predicted(pair, positions)
    shift, strength = _peak_near(f_ref, f_mov, predicted, _JUMP_PX)
    if strength < weak or (max_shift is not None and np.abs(shift).max() > max_shift):
        return False
    pair.coarse, pair.strength = shift, strength
    return True
