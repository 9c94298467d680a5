"""The measured frame pairs of the drift registration (:mod:`.drift`), and whether a
pair's whole-frame shift is an implausible jump.

A :class:`_Pair` holds what was measured between two frames: the whole-frame shift and
its peak strength, then the texture correction and the pit bottoms that agree.
:func:`_jump` judges a whole-frame shift against the drift of the frames before it;
:func:`_texture_confirms` lets the terrace texture overrule that judgement where the
steps had biased the shifts before. Shifts in pixels, ``scipy.ndimage.shift`` convention.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ._texture import _TEX_STRONG, _refine

_JUMP_PX = 5.0  # a shift this far (plus 4 sigma of the recent drift) from the trend is a jump


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


def _jump(pair: _Pair, positions: dict[int, np.ndarray]) -> bool:
    """True when ``pair`` puts its frame far off the drift of the last accepted frames.

    The drift rate is the median over the last (up to) 5 accepted steps; with fewer
    than 2 steps the allowed deviation is 3 times wider, and with none the drift so far
    is taken as 0: a weak first peak far off (more than ``3 * _JUMP_PX`` pixels, where
    the steps of a frame-filling pit match themselves along their length) would
    otherwise set a trend that rejects every true shift after it.
    """
    recent = sorted(positions)[-6:]
    last = recent[-1]
    gap = pair.mov - last
    new = positions[pair.ref] + pair.coarse
    if len(recent) < 2:
        return bool(np.any(np.abs(new - positions[last]) > 3 * _JUMP_PX * np.sqrt(gap)))
    rates = np.array(
        [(positions[b] - positions[a]) / (b - a) for a, b in itertools.pairwise(recent)]
    )
    rate = np.median(rates, axis=0)
    spread = 1.4826 * np.median(np.abs(rates - rate), axis=0)
    allowed = _JUMP_PX + 4 * spread if len(rates) >= 2 else 3 * _JUMP_PX
    predicted = positions[last] + rate * gap
    return bool(np.any(np.abs(new - predicted) > allowed * np.sqrt(gap)))


def _texture_confirms(tex_ref, tex_mov, shift: np.ndarray, shape) -> bool:
    """Whether the terrace texture peaks strongly near a whole-frame ``shift`` (within
    ``_JUMP_PX``): a change of the drift rate that what does not move confirms, not a
    jump. (Where the steps move, the whole-frame shifts before it can be biased by
    several pixels, so that the true shift looks like a jump from them.)"""
    if tex_ref is None or tex_mov is None:
        return False
    refined, z = _refine(tex_ref, tex_mov, shift, shape)
    return bool(z >= _TEX_STRONG and np.abs(refined - shift).max() <= _JUMP_PX)
