"""Scars: short bright or dark streaks along a scan line; detection and repair.

:func:`detect_scars` marks them (hysteresis thresholds relative to a robust noise
estimate, with tests that tell scars from pit walls and pit bottoms) and
:func:`remove_scars` fills them from the rows above and below.
"""

from __future__ import annotations

import numpy as np

from ..errors import LevelError
from ._input import _as_frame, _check_order
from .robust import _robust_sigma

__all__ = ["detect_scars", "remove_scars"]

_OUTER_RATIO = 0.5  # scars: largest mean outer gradient / mean jump of a run
_EXT_FACTOR = 0.5  # scars: smallest mean extrapolated jump / mean jump of a run


def _runs_keep(
    cand: np.ndarray,
    seed: np.ndarray,
    min_length: int,
    jump: np.ndarray,
    jump_ext: np.ndarray,
    outer: np.ndarray,
) -> np.ndarray:
    """Runs of ``cand`` along each row that are scars.

    A run is kept when it holds a seed, is at least ``min_length`` long, and is told
    from topography by two run-averaged tests (means over the run's pixels):

    - the vertical gradients just outside the band (``outer``) are at most
      ``_OUTER_RATIO`` times the jump: a scar is recognised on a smooth surface, not on
      a steep pit wall or at the V-shaped bottom line of a pit whose diagonal runs along
      the rows (there the gradients are as large as the "jump");
    - the jump over the neighbours *continued linearly* into the band (``jump_ext``) is
      at least ``_EXT_FACTOR`` times the jump: a V-shaped valley or ridge is where the
      surfaces continued from both sides meet, so its extrapolated jump is about zero.
    """
    rows, cols = cand.shape
    padded = np.zeros((rows, cols + 1), bool)
    padded[:, :cols] = cand
    flat = padded.ravel()
    starts = flat & ~np.concatenate([[False], flat[:-1]])
    label = np.cumsum(starts) * flat
    if label.size == 0 or label.max() == 0:
        return np.zeros_like(cand)

    def per_run(values):
        v = np.zeros((rows, cols + 1))
        v[:, :cols] = np.where(cand, values, 0.0)
        return np.bincount(label, weights=v.ravel())

    length = np.bincount(label)
    keep = (length >= min_length) & (per_run(seed) > 0)
    mean_jump = per_run(jump)
    keep &= per_run(np.nan_to_num(jump_ext, nan=0.0)) >= _EXT_FACTOR * mean_jump
    keep &= per_run(outer) <= _OUTER_RATIO * mean_jump
    keep[0] = False
    return keep[label].reshape(rows, cols + 1)[:, :cols]


_EIGHT_TRUE = np.frombuffer(np.ones(8, bool).tobytes(), np.uint64)[0]


def _rows_with_runs(cand: np.ndarray, min_length: int) -> np.ndarray:
    """Indices of rows that may hold a run of >= min_length True values (a superset).

    Any run of >= 2 b - 1 values contains a whole aligned block of b; blocks of 8 bools
    are tested at once as one 64-bit word.
    """
    n, cols = cand.shape
    block = 8 if min_length >= 15 else max(min_length // 2, 1)
    width = -(-cols // block) * block
    pc = np.zeros((n, width), bool)
    pc[:, :cols] = cand
    if block == 8:
        full = pc.view(np.uint64) == _EIGHT_TRUE
    else:
        full = pc.reshape(n, -1, block).all(axis=2)
    return np.flatnonzero(full.any(axis=1))


def detect_scars(
    image,
    *,
    threshold_high: float = 0.666,
    threshold_low: float = 0.25,
    max_width: int = 4,
    min_length: int = 16,
    min_sigma: float = 0.01,
) -> np.ndarray:
    """Mark scars: short bright or dark streaks along the fast scan axis (rows).

    A band of ``w`` consecutive rows (1 <= w <= ``max_width``) is a scar candidate at a
    column when every pixel of the band lies above both the pixel just above and the pixel
    just below the band (bright scar), or below both (dark scar), by more than
    ``threshold_low * sigma``. Candidates are grown along the row with hysteresis: a run is
    kept if it holds at least one pixel beyond ``threshold_high * sigma`` and is at least
    ``min_length`` pixels long.

    ``sigma`` is a *robust* standard deviation of the vertical (row-to-row) differences,
    1.4826 x MAD, floored at ``min_sigma`` (nm). Gwyddion uses the RMS of the
    differences; on a calcite frame that RMS is dominated by the walls of deep pits and
    would hide real scars, while the MAD measures the noise of the terraces. The floor
    keeps noise-free synthetic frames (MAD about zero) from marking rounding-level
    ripples.

    Telling scars from topography (the departure from Gwyddion's rule): because the band
    must lie beyond *both* neighbours, monotonic features (steps, pit walls) are never
    candidates. Two run-averaged tests then reject the topography that is not monotonic:
    a run is dropped when the vertical gradients just outside the band are more than
    half its jump (a scar is only recognised on a locally smooth surface), or when the
    band does not also stand out from the neighbours *continued linearly* into it by
    half its jump (the V-shaped bottom line of a pit whose diagonal runs along the rows
    meets that continuation). As a consequence, scars crossing steep pit walls are
    partly missed (they are left in place, not invented).

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm), row-aligned (a scan-line offset looks like a scar as long as the
        frame) and preferably levelled. NaN pixels are never marked; rows without any data
        are skipped over (the rows on either side count as neighbours).
    threshold_high, threshold_low : float
        Hysteresis thresholds in units of ``sigma``.
    max_width : int
        Thickest scar, in rows (pixels).
    min_length : int
        Shortest scar, in pixels along the row.
    min_sigma : float
        Floor of ``sigma`` in nm.

    Returns
    -------
    numpy.ndarray of bool, shape (rows, cols)
        True on scar pixels.

    Examples
    --------
    >>> z = np.zeros((8, 40))
    >>> z[4, 5:30] = 1.0                       # a bright scar 25 px long
    >>> m = detect_scars(z)
    >>> int(m.sum()), bool(m[4, 5:30].all())
    (25, True)
    """
    z = _as_frame(image)
    max_width = _check_order(max_width, "max_width")
    min_length = _check_order(min_length, "min_length")
    if not (threshold_high >= threshold_low >= 0):
        raise LevelError(
            "thresholds must satisfy threshold_high >= threshold_low >= 0, "
            f"got {threshold_high!r}, {threshold_low!r}"
        )
    data = np.isfinite(z).any(axis=1)
    if not data.all():  # rows without data are transparent: look across them
        out = np.zeros(z.shape, bool)
        if data.any():
            out[data] = detect_scars(
                z[data],
                threshold_high=threshold_high,
                threshold_low=threshold_low,
                max_width=max_width,
                min_length=min_length,
                min_sigma=min_sigma,
            )
        return out
    rows = z.shape[0]
    out = np.zeros(z.shape, bool)
    if rows < 3:
        return out
    dz = np.diff(z, axis=0)
    sigma = max(_robust_sigma(dz), float(min_sigma))
    lo, hi = threshold_low * sigma, threshold_high * sigma
    z = z.astype(np.float32)  # half the memory traffic; ample precision for a detection

    def extrapolated(i, direction):
        """Row i continued one row toward the band (2 z[i] - z[i - direction]).

        Row i itself where the row beyond it is outside the frame or NaN.
        """
        j = i - direction
        inside = (j >= 0) & (j <= rows - 1)
        zi = z[i]
        zj = z[np.clip(j, 0, rows - 1)]
        return np.where(inside[:, None] & np.isfinite(zj), 2 * zi - zj, zi)

    with np.errstate(invalid="ignore"):
        for w in range(1, min(max_width, rows - 2) + 1):
            n = rows - w - 1  # bands start at rows 1 .. rows - w - 1 (index i = start - 1)
            above = z[0:n]
            below = z[w + 1 : w + 1 + n]
            band_min = z[1 : 1 + n]
            band_max = band_min
            for k in range(1, w):
                band_min = np.minimum(band_min, z[1 + k : 1 + k + n])
                band_max = np.maximum(band_max, z[1 + k : 1 + k + n])
            for bright, jump in (
                (True, band_min - np.maximum(above, below)),  # NaN neighbour: no scar
                (False, np.minimum(above, below) - band_max),
            ):
                cand = jump > lo  # NaN compares False: never a candidate
                todo = _rows_with_runs(cand, min_length)
                if todo.size == 0:
                    continue
                # the neighbours above (row i) and below (row i+w+1) continued linearly
                # into the band
                pa = extrapolated(todo, +1)
                pb = extrapolated(todo + w + 1, -1)
                bmin, bmax = band_min[todo], band_max[todo]
                j = jump[todo]
                if bright:
                    j_ext = bmin - np.maximum(pa, pb)
                else:
                    j_ext = np.minimum(pa, pb) - bmax
                # vertical gradients just outside the band, to tell a scar (on a smooth
                # surface) from steep pit walls and V-shaped pit bottoms
                outer = np.maximum(np.abs(z[todo] - pa), np.abs(z[todo + w + 1] - pb))
                keep = _runs_keep(cand[todo], j > hi, min_length, j, j_ext, outer)
                for k in range(w):
                    out[todo + 1 + k] |= keep
    return out


def remove_scars(image, mask=None) -> np.ndarray:
    """Repair scars by linear interpolation between the rows above and below.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm).
    mask : array_like of bool, optional
        True on the scar pixels to repair; default :func:`detect_scars` ``(image)``.
        (Note: here the mask marks pixels to *replace*, not pixels to use.)

    Returns
    -------
    numpy.ndarray, shape (rows, cols), float64
        The repaired frame. Each vertical run of marked pixels is interpolated linearly
        along its column between the unmarked pixels just above and just below it (rows
        without data are skipped; copied from one side where the other is NaN or beyond
        the frame edge). NaN pixels stay NaN.

    Examples
    --------
    >>> z = np.tile(np.arange(5.0)[:, None], (1, 20))   # a slope along the columns
    >>> z[2] = 9.0                                         # a scar on row 2
    >>> remove_scars(z)[2, :3]
    array([2., 2., 2.])
    """
    z = _as_frame(image)
    if mask is None:
        mask = detect_scars(z)
    mask = np.asarray(mask, bool)
    if mask.shape != z.shape:
        raise LevelError(f"scar mask shape {mask.shape} does not match image shape {z.shape}")
    fill = mask & np.isfinite(z)
    if not fill.any():
        return z
    # rows without data are transparent: interpolate across them
    data = np.flatnonzero(np.isfinite(z).any(axis=1))
    out = z.copy()
    out[data] = _fill_scars(z[data], mask[data], data)
    return out


def _fill_scars(z: np.ndarray, mask: np.ndarray, rowpos: np.ndarray) -> np.ndarray:
    """Interpolate vertical runs of marked pixels; ``rowpos`` are the rows' positions."""
    rows = z.shape[0]
    c, r = np.nonzero(mask.T)  # marked pixels in column-major order
    start = np.ones(r.size, bool)
    start[1:] = (c[1:] != c[:-1]) | (r[1:] != r[:-1] + 1)
    run = np.cumsum(start) - 1
    top = r[start][run] - 1  # unmarked row just above the run (-1: none)
    end = np.flatnonzero(np.r_[start[1:], True])
    bottom = r[end][run] + 1  # unmarked row just below the run (rows: none)
    has_t, has_b = top >= 0, bottom < rows
    top, bottom = np.maximum(top, 0), np.minimum(bottom, rows - 1)
    zt = np.where(has_t, z[top, c], np.nan)
    zb = np.where(has_b, z[bottom, c], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (rowpos[r] - rowpos[top]) / (rowpos[bottom] - rowpos[top])
    value = np.where(
        np.isfinite(zt) & np.isfinite(zb),
        zt + t * (zb - zt),
        np.where(np.isfinite(zt), zt, zb),  # one side only; NaN if neither
    )
    out = z.copy()
    keep = np.isfinite(z[r, c])  # NaN pixels stay NaN
    out[r[keep], c[keep]] = value[keep]
    return out
