"""From pairwise drift measurements to one shift per frame, and what to report.

:func:`_solve_positions` solves the frames' positions from measured shifts between pairs
of frames (successive frames and frames 2-3 apart) by weighted least squares, with
iteratively reweighted (Cauchy) weights so that one bad pair cannot bend the rest; the
residual of each measurement says how well the references agree, and the spread of
each solved position says how far the chain of measurements that ties a frame to the
first one can be trusted (errors add up along a chain of weak links). :func:`_fill` gives
rejected frames a shift interpolated linearly (by frame index) between the accepted
frames around them, held at the nearest accepted frame at the ends.
:func:`_frame_list` writes frame numbers for the messages ("3, 7-9").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_RESIDUAL_SCALE_PX = 0.5  # Cauchy scale of the reweighting, pixels


@dataclass
class _Measurement:
    """Shift to apply to frame ``mov`` to align it with frame ``ref`` (pixels)."""

    ref: int
    mov: int
    shift: np.ndarray
    weight: float


def _solve_positions(
    frames: list[int], anchor: int, measurements: list[_Measurement], iters: int = 4
) -> tuple[dict[int, np.ndarray], np.ndarray, dict[int, float]]:
    """Positions (shift applied to each frame, ``anchor`` at 0) of ``frames``.

    Returns ``(positions, residuals, spread)``: a dict frame -> (2,) shift, the largest
    per-axis residual (pixels) of each measurement after the solve, and a dict frame ->
    the standard deviation of its position (pixels), reading a measurement of weight
    ``w`` as one of standard deviation ``1 / sqrt(w)`` px (a weak texture pair, weight
    1, is good to about a pixel), with the final weights of the solve.
    """
    unknown = [f for f in frames if f != anchor]
    col = {f: i for i, f in enumerate(unknown)}
    if not unknown or not measurements:
        still = {f: 0.0 for f in frames}
        return {f: np.zeros(2) for f in frames}, np.zeros(len(measurements)), still
    design = np.zeros((len(measurements), len(unknown)))
    rhs = np.zeros((len(measurements), 2))
    base_w = np.zeros(len(measurements))
    for k, m in enumerate(measurements):
        if m.mov in col:
            design[k, col[m.mov]] += 1.0
        if m.ref in col:
            design[k, col[m.ref]] -= 1.0
        rhs[k] = m.shift
        base_w[k] = max(float(m.weight), 1e-6)
    w = base_w.copy()
    sol = np.zeros((len(unknown), 2))
    residual = np.zeros(len(measurements))
    for _ in range(iters):
        sw = np.sqrt(w)[:, None]
        sol = np.linalg.lstsq(design * sw, rhs * sw, rcond=None)[0]
        residual = np.abs(design @ sol - rhs).max(axis=1)
        w = base_w / (1.0 + (residual / _RESIDUAL_SCALE_PX) ** 2)
    positions = {anchor: np.zeros(2)}
    positions.update({f: sol[col[f]] for f in unknown})
    # covariance of the weighted least squares: the inverse of its normal matrix
    normal = design.T @ (design * w[:, None])
    var = np.diag(np.linalg.pinv(normal, hermitian=True))
    spread = {anchor: 0.0}
    spread.update({f: float(np.sqrt(max(var[col[f]], 0.0))) for f in unknown})
    return positions, residual, spread


def _fill(n: int, positions: dict[int, np.ndarray]) -> np.ndarray:
    """``(n, 2)`` shifts: the solved positions, the others interpolated by frame index.

    Frames before the first (after the last) solved frame take its shift.
    """
    known = sorted(positions)
    out = np.zeros((n, 2))
    if not known:
        return out
    xs = np.array(known, float)
    ys = np.array([positions[f] for f in known])
    for ax in range(2):
        out[:, ax] = np.interp(np.arange(n, dtype=float), xs, ys[:, ax])
    return out


def _runs(frames) -> list[tuple[int, int]]:
    """``[3, 7, 8, 9]`` -> ``[(3, 3), (7, 9)]``: the runs of consecutive frame numbers."""
    runs: list[tuple[int, int]] = []
    for f in sorted(int(f) for f in frames):
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return runs


def _frame_list(frames) -> str:
    """``[3, 7, 8, 9]`` -> ``"3, 7-9"`` (frame numbers from 0)."""
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in _runs(frames))


def _longest_run(frames) -> tuple[int, int]:
    """First and last frame of the longest run of consecutive numbers in ``frames``;
    the earliest of equally long runs."""
    return max(_runs(frames), key=lambda r: r[1] - r[0])
