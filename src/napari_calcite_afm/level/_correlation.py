"""Peaks of the whole-frame correlation of two frames (the drift registration,
:mod:`.drift` and :mod:`._pairs`).

The correlation of two frame spectra is searched for its maximum within a window of
lags (around 0, or around a predicted shift), located to a fraction of a pixel by a
parabola through its neighbours, and scored as a z-score against the rest of the
surface. Shifts in pixels, ``scipy.ndimage.shift`` convention.
"""

from __future__ import annotations

import numpy as np


def _cross_correlation(f_ref: np.ndarray, f_mov: np.ndarray) -> np.ndarray:
    """The (real) correlation surface of two spectra; element ``[i, j]`` scores the lag
    ``(i, j)`` (circular)."""
    return np.real(np.fft.ifft2(f_ref * np.conj(f_mov)))


def _window(shape, radius: float | None, centre=(0.0, 0.0)) -> np.ndarray:
    """Lags within ``radius`` pixels (per axis, circularly) of ``centre``; every lag when
    ``radius`` is None."""
    if radius is None:
        return np.ones(shape, bool)
    near = [
        np.abs((np.fft.fftfreq(n, 1.0 / n) - c + n / 2) % n - n / 2) <= radius
        for n, c in zip(shape, centre)
    ]
    return near[0][:, None] & near[1][None, :]


def _peak(cc: np.ndarray, allowed: np.ndarray) -> tuple[int, int]:
    """Index of the correlation maximum among the ``allowed`` lags."""
    r, c = np.unravel_index(int(np.argmax(np.where(allowed, cc, -np.inf))), cc.shape)
    return int(r), int(c)


def _lag(cc: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """The integer shift (pixels) of a correlation index."""
    return np.array([np.fft.fftfreq(n, 1.0 / n)[i] for n, i in zip(cc.shape, peak)], float)


def _subpixel(cc: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """The shift of a correlation peak, refined by a parabola through its neighbours on
    each axis (at most half a pixel)."""
    shift = _lag(cc, peak)
    for ax in range(2):
        lo, hi = list(peak), list(peak)
        lo[ax], hi[ax] = (peak[ax] - 1) % cc.shape[ax], (peak[ax] + 1) % cc.shape[ax]
        ym, y0, yp = cc[tuple(lo)], cc[peak], cc[tuple(hi)]
        den = ym - 2 * y0 + yp
        if den < 0:
            shift[ax] += float(np.clip(0.5 * (ym - yp) / den, -0.5, 0.5))
    return shift


def _z_score(cc: np.ndarray, peak: tuple[int, int], region: np.ndarray) -> float:
    """z-score of the correlation at ``peak`` against ``region`` without the 5 x 5 lags
    around it (0 with fewer than 8 lags left, or a flat surface)."""
    d = [np.abs((np.arange(n) - p + n // 2) % n - n // 2) for n, p in zip(cc.shape, peak)]
    background = cc[region & ~((d[0][:, None] <= 2) & (d[1][None, :] <= 2))]
    if background.size < 8:
        return 0.0
    sd = float(background.std())
    return float((cc[peak] - background.mean()) / sd) if sd > 0 else 0.0
