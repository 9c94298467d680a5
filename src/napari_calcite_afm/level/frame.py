"""The default levelling pipeline: :func:`level_frame` and :func:`level_stack`.

Every step ignores NaN pixels (lines the instrument did not record) and keeps them NaN.
:func:`level_frame` runs

0. scan lines that failed as a whole are found (:func:`.lines.find_bad_lines`): lines
   offset far beyond the surface's height range are aligned at once, garbage lines
   (settling, lost lines) take no part in anything below and are interpolated from
   the lines beside them at the end of step 4, or stay NaN at the start or end of
   the scan. Then the pixels lying more than 1 nm (about three monolayer steps; on a
   rough film 3 times its own typical depth) deep in a depression along their own row
   are set aside from every fit: each row is closed (running maximum then minimum over
   257 pixels) after the background's variation along the rows is taken off, a
   variation measured from the slopes of flat pixels along the rows. Both steps ignore
   scan-line offsets, so the steep walls of a pit covering most of the frame are found
   before anything is aligned; they would otherwise lead the row alignment (a ramp of
   offsets) and bend the bow into the pit;
1. a first row alignment (Gwyddion's *median of differences* by default, which a deep
   pit or a monolayer step crossing a row does not disturb; made robust here by taking,
   for each pair of rows, the densest cluster of differences and a clipped median
   around it);
2. a robust polynomial background (plane, bow, ...): fit, keep the pixels whose height
   lies within ``outlier_sigma`` robust standard deviations of the densest part of the
   residuals and whose slope is not an outlier, refit. Deep pits (broad spreads of
   heights below the terraces, steep walls) are thereby excluded and do not bias the
   fit, even when a pit covers about half of the frame; the kept pixels form the
   background (terrace) mask;
3. the row alignment again, on the raw frame minus the background and over the
   background pixels only, then the background again; twice (TopoStats' two-pass idea,
   repeated because a very large pit misleads the first alignment). Rows that share
   less than a tenth of a row of background pixels with their neighbour keep its
   offset: where a pit covers most of a band of rows, the differences of all its pixels
   follow the pit's walls;
4. scar detection and repair, then the garbage lines of step 0;
5. zero mean.

:func:`level_stack` runs it over every frame of a stack, frames side by side on threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from .._util import Cancelled, thread_map
from .._util import stop_requested as _should_stop
from ..errors import LevelError
from ._input import _as_frame, _as_stack, _usable
from .background import _robust_background, _x_background
from .lines import _bad_lines, _fill_lines
from .rows import (
    _MIN_COMMON,
    _offsets_median_diff,
    _row_depressions,
    _row_slopes,
    _subtract_offsets,
    row_offsets,
)
from .scars import remove_scars
from .settings import LevelSettings

__all__ = ["level_frame", "level_stack", "zero_mean"]


def zero_mean(image) -> np.ndarray:
    """Subtract the mean over finite pixels (nm); all-NaN input is returned unchanged.

    Examples
    --------
    >>> zero_mean(np.array([[1.0, 3.0], [np.nan, 5.0]]))
    array([[-2.,  0.],
           [nan,  2.]])
    """
    z = np.asarray(image)
    if z.ndim < 1:
        raise LevelError("zero_mean needs an array, got a scalar")
    z = z.astype(np.result_type(z.dtype, np.float32), copy=True)
    finite = np.isfinite(z)
    if finite.any():
        z -= z[finite].mean(dtype=np.float64)
    return z


_PASSES = 2


def level_frame(image, settings: LevelSettings | None = None, mask=None) -> np.ndarray:
    """Level one AFM frame with the default pipeline.

    0. scan lines that failed as a whole (:func:`.lines.find_bad_lines`): garbage
       lines are set aside, lines offset far beyond the surface aligned; then pixels
       deep (over 1 nm, more on rough films) in a depression along their row (a pit
       crossed by the row, found whatever the scan-line offsets) are set aside from
       the fits, unless that would leave less than a tenth of the frame;
    1. row alignment (``settings.row_method``) over the usable pixels;
    2. robust polynomial background of ``settings.background_order``; its inliers
       (terraces: pixels neither far in height nor steep) form the background mask;
    3. row alignment of the raw frame minus the background over the background mask,
       then the background again (two such passes); a pair of rows that shares fewer
       than a tenth of a row of background pixels (a band of rows crossed mostly by a
       pit) keeps its offset rather than following the pit's walls;
    4. scar repair (``settings.scars``); the garbage lines of step 0 are interpolated
       from the lines above and below, or stay NaN where they start or end the scan
       or are stuck at the instrument's range limit;
    5. zero mean (``settings.zero_mean``).

    With ``row_method="none"`` steps 1 and 3 and the alignment of step 0 are skipped.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Raw heights (nm). NaN pixels are ignored and stay NaN.
    settings : LevelSettings, optional
        Defaults to ``LevelSettings()``.
    mask : array_like of bool, optional
        True marks pixels the fits may use (e.g. False over a known feature).

    Returns
    -------
    numpy.ndarray, shape (rows, cols), float32
        Levelled heights (nm). NaN where ``image`` is NaN, and on the garbage lines
        that cannot be interpolated.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:64, 0:64].astype(float)
    >>> raw = 0.3 * xx + 0.1 * yy                       # tilt
    >>> raw[::2] += 0.5                                  # scan-line offsets
    >>> out = level_frame(raw, LevelSettings(background_order=1))
    >>> out.dtype.name, bool(np.abs(out).max() < 1e-3)
    ('float32', True)
    """
    s = LevelSettings() if settings is None else settings
    if not isinstance(s, LevelSettings):
        raise LevelError(f"settings must be a LevelSettings, got {type(s).__name__}")
    z = _as_frame(image)
    nan = ~np.isfinite(z)
    z[nan] = np.nan  # +-inf count as missing too
    base = _usable(z, mask)
    if not base.any():
        return z.astype(np.float32)
    # 0. the frame less the background's variation along the rows, which offsets do not
    #    change: pixels deep in a pit along their row take no part in the fits (unless
    #    too little of the frame would remain), and its slopes along the rows serve
    #    every row alignment
    zx = z - _x_background(z, s.background_order)
    # scan lines that failed as a whole: garbage lines take no part in anything (NaN
    # until step 4), lines offset far beyond the surface are aligned first
    lines = _bad_lines(z, zx)
    if lines.garbage.any():
        z[lines.garbage] = np.nan
        zx = z - _x_background(z, s.background_order)
        base = _usable(z, mask)
    if s.row_method != "none" and lines.offsets.any():
        z, zx = (_subtract_offsets(a, lines.offsets) for a in (z, zx))
    zr = None if s.background_order >= 2 else z - _x_background(z, 2)  # bow-free
    fit = base & ~_row_depressions(zx, zr)
    if fit.sum() < 0.1 * base.sum():
        fit = base
    slopes = _row_slopes(zx) if s.row_method == "median_diff" else None
    data_rows = np.isfinite(z).any(axis=1)

    def offsets(img, used, residual=False):
        if s.row_method == "median_diff":
            gap = _MIN_COMMON if residual else None
            off = _offsets_median_diff(img, used, data_rows, gap, slopes)
        else:
            off = row_offsets(img, s.row_method, used, order=s.row_order)
        return np.nan_to_num(off, nan=0.0)

    state = None

    def background(img):
        nonlocal state
        bg, inliers, state = _robust_background(
            img, s.background_order, fit, s.robust_iterations, s.outlier_sigma, state
        )
        return bg, inliers

    raw = z
    if s.row_method == "none":
        bg, _ = background(raw)
        z = raw - bg
    else:
        # 1. first row alignment (usable pixels outside the pits found in step 0)
        off = offsets(raw, fit)
        # 2. robust background; its inliers are the background (terrace) pixels
        bg, inliers = background(_subtract_offsets(raw, off))
        # 3. row alignment again, on the raw frame minus the background and on the
        #    background pixels only, then the background again; repeated, because a
        #    pit wider than half the frame misleads the first alignment, and that
        #    misleads the first background mask
        for _ in range(_PASSES):
            off = offsets(raw - bg, inliers & fit, residual=True)
            bg, inliers = background(_subtract_offsets(raw, off))
        z = _subtract_offsets(raw, off) - bg
    # 4. scars
    if s.scars:
        z = remove_scars(z)
    if lines.garbage.any():  # interpolated from the lines beside, or left NaN
        z = _fill_lines(z, lines.garbage & ~lines.missing)
    # 5. zero mean
    if s.zero_mean:
        z = zero_mean(z)
    z[nan] = np.nan
    return z.astype(np.float32)


def level_stack(
    stack,
    settings: LevelSettings | None = None,
    *,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Level every frame of a stack with :func:`level_frame`.

    Parameters
    ----------
    stack : array_like, shape (frames, rows, cols)
        Raw heights (nm).
    settings : LevelSettings, optional
        Defaults to ``LevelSettings()``.
    progress : callable, optional
        Called after each frame with ``{"stage": "level", "frame": i, "n_frames": n}``
        (``i`` the 0-based index of the frame just levelled).
    stop : callable or threading.Event, optional
        Checked before each frame; when it returns True (or the event is set) the function
        raises :class:`~napari_calcite_afm.errors.Cancelled`.
    workers : int or None
        Threads levelling frames side by side (None: one per available CPU core; 1: in
        the calling thread). The result does not depend on it.

    Returns
    -------
    numpy.ndarray, shape (frames, rows, cols), float32
        The levelled stack (nm).

    Raises
    ------
    Cancelled
        If ``stop`` asked to stop.

    Examples
    --------
    >>> out = level_stack(np.random.default_rng(0).normal(size=(2, 16, 16)))
    >>> out.shape, out.dtype.name
    ((2, 16, 16), 'float32')
    """
    a = _as_stack(stack)
    settings = LevelSettings() if settings is None else settings
    n = a.shape[0]
    out = np.empty(a.shape, np.float32)
    levelled = thread_map(lambda f: level_frame(f, settings), a, workers)
    try:
        for i in range(n):
            if _should_stop(stop):
                raise Cancelled(f"levelling stopped after {i} of {n} frames")
            out[i] = next(levelled)
            if progress is not None:
                progress({"stage": "level", "frame": i, "n_frames": n})
    finally:
        levelled.close()
    return out
