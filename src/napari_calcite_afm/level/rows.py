"""Scan-line (row) alignment, and the depressions along rows found before it.

:func:`row_offsets` estimates the offset of each scan line (``"median"``,
``"median_diff"``, ``"polynomial"`` or ``"none"``) and :func:`align_rows` subtracts it.
:func:`_row_depressions` marks the pixels deep in a pit crossed by their own row,
whatever the offsets, so that :func:`~napari_calcite_afm.level.level_frame` can keep
them out of every fit.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from ..errors import LevelError
from ._input import MAX_ORDER, _as_frame, _check_order, _usable
from .robust import _MAX_FIT_POINTS, _norm_coords, _row_clipped_median, _row_nanmedian
from .settings import ROW_METHODS

__all__ = ["align_rows", "row_offsets"]


def _fill_offsets(off: np.ndarray, data_rows: np.ndarray) -> np.ndarray:
    """Interpolate NaN offsets of rows that hold data from the rows that have an offset."""
    have = np.isfinite(off)
    need = data_rows & ~have
    if need.any():
        if have.any():
            r = np.arange(off.size)
            off[need] = np.interp(r[need], r[have], off[have])
        else:
            off[need] = 0.0
    return off


def _offsets_median(z, used, data_rows):
    off = _row_nanmedian(np.where(used, z, np.nan))
    off = _fill_offsets(off, data_rows)
    off[~data_rows] = np.nan
    if data_rows.any():
        off -= off[data_rows].mean()
    return off


def _row_slopes(z: np.ndarray, span: int = 4, window: int = 9) -> np.ndarray | None:
    """Local slope along the rows, for :func:`_flat_along_rows` (None: rows too short).

    The absolute difference over ``span`` pixels, less each row's median (tilt),
    averaged over ``window`` pixels, edge values repeated to the full width; inf where
    ``z`` is NaN. Row offsets do not change it.
    """
    cols = z.shape[1]
    if cols <= 2 * span + window:
        return None
    d = z[:, span:] - z[:, :-span]
    finite = np.isfinite(d)
    if finite.all():
        d -= np.median(d, axis=1, keepdims=True)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows without data
            d -= np.nan_to_num(np.nanmedian(d, axis=1, keepdims=True))
        d[~finite] = 0.0
    np.abs(d, out=d)
    h = span // 2
    g = np.empty(z.shape)  # the filtered slopes, edge values repeated to the full width
    ndimage.uniform_filter1d(d, window, axis=1, mode="nearest", output=g[:, h : cols - span + h])
    g[:, :h] = g[:, h : h + 1]
    g[:, cols - span + h :] = g[:, cols - span + h - 1 : cols - span + h]
    g[~np.isfinite(z)] = np.inf
    return g


def _flat_along_rows(z, used, factor: float = 3.0, slopes: np.ndarray | None = None):
    """``used`` restricted to pixels on flat ground along the fast scan axis.

    Row offsets do not change slopes along a row, so the local slope along the row
    (:func:`_row_slopes`, or ``slopes`` computed once for several calls) tells terraces
    from the stepped walls of pits whatever the offsets. Pixels whose slope exceeds
    ``factor`` times the median over the usable pixels are dropped: where a deep pit
    covers much of a row, its wall pixels share one row-to-row difference (the wall's
    slope across the rows) and can otherwise outvote the terrace and turn into a ramp
    of offsets. Rows left with fewer than a tenth of their pixels keep ``used`` as it
    was.
    """
    cols = z.shape[1]
    if not used.any():
        return used
    g = _row_slopes(z) if slopes is None else slopes
    if g is None:
        return used
    values = g.ravel() if used.all() else g[used]
    if values.size > 4 * _MAX_FIT_POINTS:  # an even sample is plenty for a median
        values = values[:: -(-values.size // (4 * _MAX_FIT_POINTS))]
    thr = factor * float(np.median(values))
    flat = used & (g <= thr)
    enough = flat.sum(axis=1) >= 0.1 * cols
    return np.where(enough[:, None], flat, used)


#: Residual row alignment (:func:`.level_frame`): a pair of rows sharing fewer usable
#: pixels than this fraction of a row keeps its offset (increment 0).
_MIN_COMMON = 0.1


def _offsets_median_diff(
    z, used, data_rows, gap_min: float | None = None, slopes: np.ndarray | None = None
):
    """Offsets by the median of row-to-row differences (see :func:`row_offsets`).

    ``gap_min`` (a fraction of the row) is for residual alignment, where ``z`` is a
    frame whose background has already been taken off: a pair of rows sharing fewer
    usable pixels than that gets increment 0 (the row keeps the offset of the row
    before it) instead of the default fall-back to all finite pixels. Where a pit
    covers most of a band of rows, that fall-back follows the pit's walls and turns
    them into a ramp of offsets that the next background fit cannot undo. ``slopes``:
    :func:`_row_slopes`, when computed once for several calls.
    """
    rows = z.shape[0]
    off = np.full(rows, np.nan)
    dr = np.flatnonzero(data_rows)
    if dr.size == 0:
        return off
    if dr.size == 1:
        off[dr] = 0.0
        return off
    a, b = dr[:-1], dr[1:]
    diff = z[b] - z[a]
    used = _flat_along_rows(z, used, slopes=slopes)
    common = used[a] & used[b]
    if gap_min is not None:
        common[common.sum(axis=1) < gap_min * z.shape[1]] = False
    med = _row_clipped_median(np.where(common, diff, np.nan))
    bad = ~np.isfinite(med)
    if bad.any() and gap_min is not None:
        med[bad] = 0.0
    elif bad.any():  # no common usable pixel: fall back to common finite pixels ...
        med[bad] = _row_nanmedian(diff[bad])
        bad = ~np.isfinite(med)
        if bad.any():  # ... then to the difference of the two rows' medians
            rmed = _row_nanmedian(z)
            med[bad] = rmed[b[bad]] - rmed[a[bad]]
    cum = np.concatenate([[0.0], np.cumsum(med)])
    # remove the linear trend: a tilt along the slow axis stays for the plane fit
    t = dr.astype(float)
    coef = np.polyfit(t, cum, 1)
    off[dr] = cum - np.polyval(coef, t)
    return off


def _offsets_polynomial(z, used, data_rows, order):
    rows, cols = z.shape
    x = _norm_coords(cols)
    basis = x[:, None] ** np.arange(order + 1)[None, :]  # (cols, k)
    k = order + 1
    w = used.astype(np.float64)
    z0 = np.where(used, z, 0.0)
    gram = np.einsum("rc,ci,cj->rij", w, basis, basis)
    rhs = (z0 @ basis).reshape(rows, k)
    n_used = used.sum(axis=1)
    good = n_used >= k
    coef = np.full((rows, k), np.nan)
    if good.any():
        g = gram[good]
        # tiny ridge keeps near-singular rows (clustered points) solvable
        g = g + 1e-12 * np.trace(g, axis1=1, axis2=2)[:, None, None] * np.eye(k)[None]
        coef[good] = np.linalg.solve(g, rhs[good][..., None])[..., 0]
    for i in range(k):
        coef[:, i] = _fill_offsets(coef[:, i], data_rows)
    corr = coef @ basis.T  # (rows, cols)
    corr[~data_rows] = np.nan
    if data_rows.any():
        corr -= coef[data_rows, 0].mean()
    return corr


def row_offsets(image, method: str = "median", mask=None, *, order: int = 1) -> np.ndarray:
    """The per-row correction that :func:`align_rows` subtracts.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm); NaN pixels are ignored.
    method : {"median", "median_diff", "polynomial", "none"}
        ``"median"``: each row's median. ``"median_diff"``: Gwyddion's median of
        differences, the cumulative sum of the median of row-to-row differences with its
        linear trend removed (so a tilt along the slow scan axis is left for the
        background fit); the median of differences ignores the few pixels where a row
        crosses a pit wall or a step, so pits and steps do not shift the rows. Made
        more robust here: for each pair of rows the densest cluster of differences is
        found first (shortest window holding a quarter of them) and the median is
        taken over the differences within 3 robust sigma of it, which removes the
        small bias (turned into a drift by the cumulative sum) that pit walls put on a
        plain median, and survives a pit covering more than half the row. Rows
        separated by rows without data are differenced directly.
        ``"polynomial"``: a least-squares polynomial of ``order`` fitted to each row.
    mask : array_like of bool, optional
        True marks the pixels the estimate may use (for ``"median_diff"`` a difference is
        used when both its pixels are usable).
    order : int
        Polynomial order for ``method="polynomial"`` (0 to 8).

    Returns
    -------
    numpy.ndarray
        Shape (rows,) for ``"median"``, ``"median_diff"`` and ``"none"``; shape
        (rows, cols) for ``"polynomial"``. Heights in nm, centred on zero over the rows.
        Rows without any finite pixel get NaN; rows with data but no usable pixel get an
        offset interpolated from their neighbours.

    Examples
    --------
    >>> z = np.zeros((4, 6))
    >>> z[2] += 1.0                     # one scan line offset by 1 nm
    >>> row_offsets(z, "median")
    array([-0.25, -0.25,  0.75, -0.25])
    """
    z = _as_frame(image)
    if method not in ROW_METHODS:
        raise LevelError(f"unknown row alignment method {method!r}; use one of {ROW_METHODS}")
    order = _check_order(order, maximum=MAX_ORDER)
    used = _usable(z, mask)
    data_rows = np.isfinite(z).any(axis=1)
    if method == "none":
        return np.where(data_rows, 0.0, np.nan)
    if method == "median":
        return _offsets_median(z, used, data_rows)
    if method == "median_diff":
        return _offsets_median_diff(z, used, data_rows)
    return _offsets_polynomial(z, used, data_rows, order)


def _subtract_offsets(z: np.ndarray, off: np.ndarray) -> np.ndarray:
    off = np.nan_to_num(off, nan=0.0)  # rows with NaN offsets hold only NaN pixels
    return z - (off[:, None] if off.ndim == 1 else off)


def align_rows(image, method: str = "median", mask=None, *, order: int = 1) -> np.ndarray:
    """Remove scan-line offsets: subtract :func:`row_offsets` from each row.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm); NaN pixels are ignored and stay NaN.
    method : {"median", "median_diff", "polynomial", "none"}
        See :func:`row_offsets`. Prefer ``"median_diff"`` on frames with pits: a row
        crossing a deep pit has a shifted median, so ``"median"`` moves it.
    mask : array_like of bool, optional
        True marks pixels the estimate may use.
    order : int
        Polynomial order for ``method="polynomial"`` (0 to 8).

    Returns
    -------
    numpy.ndarray, shape (rows, cols), float64
        The aligned frame (nm).

    Examples
    --------
    >>> z = np.tile(np.arange(6.0), (5, 1))     # a slope along the rows
    >>> z[1::2] += 2.0                           # scan-line offsets on rows 1 and 3
    >>> out = align_rows(z, "median_diff")
    >>> np.allclose(out - out[0], 0)
    True
    """
    z = _as_frame(image)
    return _subtract_offsets(z, row_offsets(z, method, mask, order=order))


#: Depressions along rows (:func:`.level_frame`): closing window (pixels) and depth (nm).
_DEPRESSION_WIDTH = 257
_DEPRESSION_DEPTH_NM = 1.0
#: ... or this many times the surface's own depth below the closing (its 25th
#: percentile over the frame), whichever is larger: on a rough film every valley
#: between grains lies 1 nm below the closing.
_DEPRESSION_ROUGH = 3.0


def _below_closing(zx: np.ndarray, width: int) -> np.ndarray:
    """Depth (nm) of each pixel below the closing of its row over ``width`` pixels."""
    high = np.where(np.isfinite(zx), zx, -np.inf)
    closed = ndimage.minimum_filter1d(
        ndimage.maximum_filter1d(high, width, axis=1, mode="nearest"), width, axis=1
    )
    return closed - zx


def _row_depressions(zx: np.ndarray, zr: np.ndarray | None = None) -> np.ndarray:
    """Pixels lying deep in a depression along their row (pits), whatever the offsets.

    ``zx`` is the frame less :func:`.background._x_background`. It is closed along each
    row (running maximum then minimum over ``_DEPRESSION_WIDTH`` pixels); pixels more than
    ``_DEPRESSION_DEPTH_NM`` below the closing (about three monolayer steps) lie in a
    pit crossed by the row. Each row is handled on its own, so scan-line offsets do
    not matter, and the steep walls of a pit that covers most of a band of rows are
    found before any row is aligned.

    On a rough surface (a grainy film, not calcite terraces) most pixels lie more than
    1 nm below the closing, and taking them all for pits leaves too few pixels for the
    fits. So the depth is at least ``_DEPRESSION_ROUGH`` times the surface's own depth
    below the closing, its 25th percentile over the frame (0.04-0.27 nm on synthetic
    calcite frames, pit-dominated ones included, hence 1 nm there; 0.1-99 nm on the
    real files). It is measured on ``zr`` when given: the frame less an along-row
    background of order 2 at least, for a ``zx`` whose own background left the bow.
    """
    cols = zx.shape[1]
    width = min(_DEPRESSION_WIDTH, cols if cols % 2 else cols - 1)
    if width < 3:
        return np.zeros(zx.shape, bool)
    below = _below_closing(zx, width)
    rough = below if zr is None else _below_closing(zr, width)
    v = rough.ravel()[:: max(rough.size // 65536, 1)]
    v = v[np.isfinite(v)]
    depth = _DEPRESSION_DEPTH_NM
    if v.size:
        depth = max(depth, _DEPRESSION_ROUGH * float(np.percentile(v, 25)))
    with np.errstate(invalid="ignore"):
        return below > depth
