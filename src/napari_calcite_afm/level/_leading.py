"""Leading frames that match nothing after them: the drift measured from a later frame.

The drift registration (:mod:`.drift`) measures each frame against the last accepted
one, starting from the first frame with data. When that first frame is unlike the
frames after it (the first scan after the approach, while the tip and the fluid cell
settle; on the cellular generator's movies, the first frame of the simulation), its
pair with frame 1 is rejected as weak, and every later frame is then measured against
it across a growing gap: the frames are all rejected, or one is placed on a wrong peak
and the rest follow it (on a development movie, 23 px off from frame 3 on).

:func:`skip_odd_leading` measures the movie again from the next frame, as if the odd
one had no data, and keeps that pass when it places at least as many frames, its own
first pair accepted. :func:`extrapolate_leading` then gives the skipped frames the
drift that the first accepted steps after them continue back to them, so that the
shifts stay relative to frame 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

_MAX_SKIP = 2  # leading frames that may be skipped
_RATE_STEPS = 5  # accepted steps whose median drift rate is continued back


def _placed(pairs) -> int:
    return sum(1 for p in pairs if not p.reason)


def skip_odd_leading(a: np.ndarray, first_pass: tuple, run: Callable) -> tuple:
    """The whole-frame pass to use, and the leading frames it skips.

    Parameters
    ----------
    a : numpy.ndarray
        ``(frames, rows, cols)`` heights, nm.
    first_pass : tuple
        ``(pairs, textures, anchor)`` of the pass from the first frame with data.
    run : callable
        Runs the pass on a stack: ``run(stack) -> (pairs, textures, anchor)``.

    Returns
    -------
    tuple
        ``(pairs, textures, anchor, skipped)``: the pass kept, and the frames before its
        anchor that had data (empty when the first pass is kept).
    """
    pairs, textures, anchor = first_pass
    if not pairs or pairs[0].reason != "weak correlation":
        return pairs, textures, anchor, []
    masked = np.array(a, copy=True)
    skipped: list[int] = []
    cur = anchor
    for _ in range(_MAX_SKIP):
        masked[cur] = np.nan  # as if it had no data: the next frame is the anchor
        skipped.append(cur)
        alt_pairs, alt_textures, alt_anchor = run(masked)
        if not alt_pairs:
            break
        if not alt_pairs[0].reason:
            if _placed(alt_pairs) >= _placed(pairs):
                return alt_pairs, alt_textures, alt_anchor, skipped
            break
        if alt_pairs[0].reason != "weak correlation":
            break
        cur = alt_anchor  # the next frame is unlike the rest too: skip it as well
    return pairs, textures, anchor, []


def extrapolate_leading(shifts: np.ndarray, positions: dict, skipped: list[int]) -> np.ndarray:
    """Shifts relative to the first skipped frame, the skipped frames' own extrapolated.

    ``positions`` are the solved positions of the accepted frames (pixels, relative to
    the anchor of the pass kept); each skipped frame gets the anchor's position minus
    the median drift per frame of the first (up to) 5 accepted steps times its distance
    from the anchor. Every shift is then re-expressed relative to the first skipped
    frame (frame 0 of the movie's data).

    Examples
    --------
    >>> pos = {1: np.zeros(2), 2: np.array([1.0, -2.0]), 3: np.array([2.0, -4.0])}
    >>> out = extrapolate_leading(np.array([[0.0, 0], [0, 0], [1, -2], [2, -4]]), pos, [0])
    >>> out.tolist()
    [[0.0, 0.0], [1.0, -2.0], [2.0, -4.0], [3.0, -6.0]]
    """
    out = np.array(shifts, float, copy=True)
    if not skipped:
        return out
    frames = sorted(positions)[: _RATE_STEPS + 1]
    anchor = frames[0]
    if len(frames) > 1:
        rates = [(positions[b] - positions[a]) / (b - a) for a, b in itertools.pairwise(frames)]
        rate = np.median(np.array(rates), axis=0)
    else:
        rate = np.zeros(2)
    for f in skipped:
        out[f] = positions[anchor] + rate * (f - anchor)
    return out - out[min(skipped)]
