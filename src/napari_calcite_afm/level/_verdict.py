"""What a drift registration (:mod:`.drift`) tells its user: a confidence per frame and
the messages.

The confidence of a frame's shift (relative to frame 0) has two parts: how well its own
pair was measured (the strength of the whole-frame and terrace-texture peaks, the
agreement with frames 2-3 apart), and how well the chain of measurements that ties it
to frame 0 holds. The shifts are solved jointly from pairs of frames, so the error of a
pair carries over to every frame after it; a frame measured well against its
neighbour, after a run of frames whose texture showed nothing, is no better known than
the end of that run. The spread of the solved position (:func:`._consensus._solve_positions`)
says so: a weak texture pair adds about a pixel to it; a frame tied to frame 0
through pit bottoms or strong texture peaks stays at about half a pixel or less.
"""

from __future__ import annotations

import numpy as np

from ._consensus import _frame_list, _longest_run
from ._pairs import _GOOD, _WEAK
from ._texture import _TEX_WEAK

_TEX_GOOD = 8.0  # texture peak of full confidence
_SPREAD_FREE_PX = 0.5  # a solved position this well known keeps its pair's confidence
_COMMON_MIN = 0.5  # warn when every frame covers less than this fraction of the frame


def _confidence(pairs, residual, spread, n, anchor, use_texture) -> np.ndarray:
    """Per-frame confidence (see :class:`.drift.Registration`); ``spread``: frame ->
    standard deviation of its solved position, pixels (used with the texture, whose
    weights say how well each pair is known)."""
    conf = np.zeros(n)
    conf[: anchor + 1] = 1.0
    accepted = [p for p in pairs if not p.reason]
    for p, res in zip(accepted, residual[: len(accepted)]):
        c = float(np.clip((p.strength - _WEAK) / (_GOOD - _WEAK), 0.0, 1.0))
        if use_texture:
            t = 1.0 if p.anchors else (p.texture_z - _TEX_WEAK) / (_TEX_GOOD - _TEX_WEAK)
            c *= 0.5 + 0.5 * float(np.clip(t, 0.0, 1.0))
            c *= _chain_factor(spread.get(p.mov, 0.0))
        conf[p.mov] = c / (1.0 + (float(res) / 0.5) ** 2)
    return conf


def _chain_factor(spread_px: float) -> float:
    """``1 / (1 + excess**2)`` for the spread of a solved position beyond
    ``_SPREAD_FREE_PX`` (pixels): 1 up to half a pixel, 0.5 at 1.5 px, 0.2 at 2.5 px."""
    excess = max(0.0, float(spread_px) - _SPREAD_FREE_PX)
    return 1.0 / (1.0 + excess**2)


def _messages(pairs, use_texture, valid, shape) -> list[str]:
    """The sentences of :attr:`.drift.Registration.messages`."""
    out = []
    nodata = [p.mov for p in pairs if p.reason == "no data"]
    if nodata:
        word = "frames" if len(nodata) > 1 else "frame"
        out.append(
            f"drift of {word} {_frame_list(nodata)} not measured (no data) "
            "and held at the frame before"
        )
    for reason in ("weak correlation", "a jump far beyond the drift before it"):
        frames = [p.mov for p in pairs if p.reason == reason]
        if frames:
            word = "frames" if len(frames) > 1 else "frame"
            out.append(
                f"drift of {word} {_frame_list(frames)} rejected ({reason}) "
                "and interpolated from the frames around"
            )
    if use_texture:
        weak = [
            p.mov for p in pairs if not p.reason and not p.texture_z >= _TEX_WEAK and not p.anchors
        ]
        if weak:
            word = "frames" if len(weak) > 1 else "frame"
            first, last = _longest_run(weak)
            run = (
                f"; their errors add up along a run of such frames (longest: frames "
                f"{first}-{last}), as the shift follows the steps as far as they retreat"
                if last - first >= 2
                else ""
            )
            out.append(
                f"{word} {_frame_list(weak)}: the terrace texture barely showed the drift "
                "(weak texture peak); it may be off by a pixel or more (confidence at most "
                f"0.5){run}"
            )
    rows, cols = shape
    h, w = valid[0].stop - valid[0].start, valid[1].stop - valid[1].start
    if h * w < _COMMON_MIN * rows * cols:
        out.append(
            f"the area every registered frame covers is {h} x {w} px, "
            f"{100.0 * h * w / (rows * cols):.0f} % of the frame: check the drift (drift.csv)"
        )
    return out
