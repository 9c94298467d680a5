"""Polynomial backgrounds (tilt, bow): plain and robust fits, and the along-row part.

:func:`polynomial_background` is a least-squares fit; :func:`remove_background` a robust
one that pits, islands and scars do not bias (:func:`_robust_background` does the work
and can be warm-started, as :func:`~napari_calcite_afm.level.level_frame` does).
:func:`_x_background` measures only the background's variation along the rows, from
slopes, so that neither scan-line offsets nor pits bias it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import LevelError
from ._input import MAX_ORDER, _as_frame, _check_order, _usable
from .robust import (
    _centre_spread,
    _coef_matrix,
    _design,
    _eval_poly,
    _fit_poly,
    _lstsq,
    _norm_coords,
    _poly_terms,
    _sample,
)

__all__ = ["polynomial_background", "remove_background"]


def polynomial_background(image, order: int = 1, mask=None) -> np.ndarray:
    """Least-squares polynomial surface of a frame.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm); NaN pixels are ignored.
    order : int
        Total polynomial order: 0 constant, 1 plane, 2 quadratic (bow), ... up to 8.
    mask : array_like of bool, optional
        True marks the pixels used in the fit (default: all finite pixels).

    Returns
    -------
    numpy.ndarray, shape (rows, cols), float64
        The fitted surface (nm), defined everywhere (also on NaN pixels). Zero if no pixel
        is usable. Fits use at most 16 384 evenly spread pixels.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:4, 0:5]
    >>> plane = 0.5 * xx - 0.25 * yy + 3.0
    >>> np.allclose(polynomial_background(plane, order=1), plane)
    True
    """
    z = _as_frame(image)
    order = _check_order(order, maximum=MAX_ORDER)
    return _eval_poly(_fit_poly(z, _usable(z, mask), order), z.shape)


_SLOPE_SMOOTH = 5  # pixels: box smoothing before the slopes are taken


def _slopes(z: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes (nm per pixel, along rows and columns) of the box-smoothed frame at idx.

    NaN pixels are left out of the smoothing (normalised convolution); slopes next to
    missing data are NaN.
    """
    finite = np.isfinite(z)
    size = _SLOPE_SMOOTH
    # float32: half the memory traffic; slopes need no more precision
    sm = ndimage.uniform_filter(np.where(finite, z, 0.0).astype(np.float32), size)
    if not finite.all():
        w = ndimage.uniform_filter(finite.astype(np.float32), size)
        with np.errstate(invalid="ignore", divide="ignore"):
            sm = np.where(w > 0.999, sm / w, np.nan)
    rows, cols = z.shape
    r, c = np.divmod(idx, cols)
    rp, rm = np.minimum(r + 1, rows - 1), np.maximum(r - 1, 0)
    cp, cm = np.minimum(c + 1, cols - 1), np.maximum(c - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gy = (sm[rp, c] - sm[rm, c]) / np.maximum(rp - rm, 1)
        gx = (sm[r, cp] - sm[r, cm]) / np.maximum(cp - cm, 1)
    return gy, gx


def _design_slopes(shape, idx: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """d/drow and d/dcol (per pixel) of the monomials of :func:`.robust._design` at idx."""
    rows, cols = shape
    r, c = np.divmod(idx, cols)
    y = _norm_coords(rows)[r]
    x = _norm_coords(cols)[c]
    sy = 2.0 / (rows - 1) if rows > 1 else 0.0
    sx = 2.0 / (cols - 1) if cols > 1 else 0.0
    terms = _poly_terms(order)
    ay = np.zeros((idx.size, len(terms)))
    ax = np.zeros((idx.size, len(terms)))
    for k, (j, i) in enumerate(terms):
        if j:
            ay[:, k] = j * y ** (j - 1) * x**i * sy
        if i:
            ax[:, k] = i * x ** (i - 1) * y**j * sx
    return ay, ax


def _robust_background(z, order, used, iterations, outlier_sigma, state=None):
    """Iterative robust polynomial fit; returns (background, inlier mask, state).

    Fit, keep the pixels within ``outlier_sigma`` robust standard deviations of the
    densest part of the residuals (:func:`.robust._centre_spread`) *and* whose slope,
    once the fitted background's slope is taken off, is not an outlier either (pit walls
    are steep, terraces are flat), refit. A plane is fitted first, then each higher order
    starts from the pixels the lower one kept. The iterations run on an even sample of
    the usable pixels (fast); the inlier mask returned covers the full frame (heights
    only).

    ``state`` (returned by a previous call on the same frame, slightly changed, e.g.
    re-aligned rows) warm-starts the fit: same sample and slopes, and the iterations
    start from the pixels kept last time.
    """
    if state is None:
        idx = _sample(used)
        if idx.size == 0:
            return np.zeros(z.shape), used.copy(), None
        state = {"idx": idx, "a": _design(z.shape, idx, order), "keep": None}
        if iterations > 0:
            gy, gx = _slopes(z, idx)
            ay, ax = _design_slopes(z.shape, idx, order)
            state.update(gy=gy, gx=gx, ay=ay, ax=ax, known=np.isfinite(gy) & np.isfinite(gx))
    idx, a_full = state["idx"], state["a"]
    v = z.ravel()[idx]
    warm = state["keep"] is not None
    keep = state["keep"] if warm else np.ones(idx.size, bool)
    # graduated: a robust plane first, then each higher order starting from the pixels
    # the lower order kept (a bow fitted to all pixels bends into a large pit)
    stages = list(range(min(order, 1), order + 1)) if iterations > 0 and not warm else [order]
    # spreads are estimated on a quarter of the sample (sorting is the cost)
    sub = slice(None, None, 4) if idx.size > 4096 else slice(None)
    for stage in stages:
        nterms = len(_poly_terms(stage))  # terms are ordered by total order
        a = a_full[:, :nterms]
        coef = _lstsq(a[keep], v[keep])
        for _ in range(iterations):
            res = v - a @ coef
            centre, sigma = _centre_spread(res[sub])
            # floor: a noise-free frame can have zero spread (most pixels on the surface)
            new = np.abs(res - centre) <= outlier_sigma * max(sigma, 1e-6)
            g = np.hypot(
                state["gy"] - state["ay"][:, :nterms] @ coef,
                state["gx"] - state["ax"][:, :nterms] @ coef,
            )
            known = state["known"]
            gc, gs = _centre_spread(g[sub][known[sub]])
            new &= ~known | (g <= gc + outlier_sigma * max(gs, 1e-6))
            if new.sum() <= a.shape[1]:
                break
            if np.array_equal(new, keep):
                break  # converged
            keep = new
            coef = _lstsq(a[keep], v[keep])
    coef = np.concatenate([coef, np.zeros(a_full.shape[1] - coef.size)])
    background = _eval_poly(_coef_matrix(coef, order), z.shape)
    if iterations == 0:
        return background, used.copy(), state
    state["keep"] = keep
    centre, sigma = _centre_spread((v - a_full @ coef)[sub])
    res = z - background
    res -= centre
    np.abs(res, out=res)
    with np.errstate(invalid="ignore"):
        inliers = res <= outlier_sigma * max(sigma, 1e-6)
    inliers &= used
    return background, inliers, state


def remove_background(
    image,
    order: int = 1,
    mask=None,
    *,
    iterations: int = 3,
    outlier_sigma: float = 2.5,
) -> np.ndarray:
    """Subtract a robust polynomial background (tilt, bow).

    Fits a polynomial surface, keeps the pixels whose residual lies within
    ``outlier_sigma`` robust standard deviations of the densest part of the residuals
    (the middle and width of the shortest interval holding a quarter of them: the
    terraces) and whose slope, less the background's, is not an outlier either, and
    refits, ``iterations`` times (a plane first, then the higher orders from the
    pixels the plane kept). Deep pits (even one covering half the frame), islands and
    scars are thereby excluded and do not bias the background.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm); NaN pixels are ignored and stay NaN.
    order : int
        Polynomial order (0 offset, 1 plane, 2 bow, ... up to 8).
    mask : array_like of bool, optional
        True marks pixels the fit may use (default: all finite pixels).
    iterations : int
        Number of refits after the first fit (0: plain least squares).
    outlier_sigma : float
        Outlier threshold in robust standard deviations.

    Returns
    -------
    numpy.ndarray, shape (rows, cols), float64
        ``image`` minus the background (nm).

    Examples
    --------
    >>> yy, xx = np.mgrid[0:32, 0:32].astype(float)
    >>> z = 0.1 * xx + 0.05 * yy
    >>> z[10:20, 10:20] -= 20.0        # a deep pit
    >>> flat = remove_background(z, order=1)
    >>> bool(abs(flat[0, 0] - flat[31, 31]) < 1e-6)   # tilt gone, pit did not bias it
    True
    """
    z = _as_frame(image)
    order = _check_order(order, maximum=MAX_ORDER)
    iterations = _check_order(iterations, "iterations")
    if not outlier_sigma > 0:
        raise LevelError(f"outlier_sigma must be > 0, got {outlier_sigma!r}")
    bg, _, _ = _robust_background(z, order, _usable(z, mask), iterations, float(outlier_sigma))
    return z - bg


def _x_background(z: np.ndarray, order: int, iterations: int = 4, k: float = 3.0):
    """The part of a polynomial background that varies along the rows, from slopes.

    Fits the derivative along the rows (fast scan axis) of the monomials with a power of
    x of at least 1 to the slopes between neighbouring pixels of a row, keeping the
    slopes within ``k`` robust sigma of the densest part of the residuals (flat
    pixels). Scan-line offsets do not change slopes along a row, and flat pixels give
    the background's slope whatever their level, on a terrace or on the terraced wall
    of a pit, so neither offsets nor pits, however large, bias it. Returns the
    background (nm, ``z.shape``) up to a function of the row alone.
    """
    rows, cols = z.shape
    terms = [(j, i) for (j, i) in _poly_terms(max(int(order), 1)) if i > 0]
    if cols < 3:
        return np.zeros(z.shape)
    idx = _sample(np.isfinite(z[:, 1:]) & np.isfinite(z[:, :-1]))
    if idx.size <= len(terms):
        return np.zeros(z.shape)
    r, c = np.divmod(idx, cols - 1)
    v = z[r, c + 1] - z[r, c]  # slopes, nm per pixel
    xc = _norm_coords(cols)
    x = 0.5 * (xc[c] + xc[c + 1])
    y = _norm_coords(rows)[r]
    sx = 2.0 / (cols - 1)
    a = np.stack([i * x ** (i - 1) * y**j * sx for (j, i) in terms], axis=1)
    centre, sigma = _centre_spread(v[::4])
    keep = np.abs(v - centre) <= k * max(sigma, 1e-9)
    coef = np.zeros(len(terms))
    for _ in range(iterations):
        if keep.sum() <= len(terms):
            break
        coef = _lstsq(a[keep], v[keep])
        res = v - a @ coef
        centre, sigma = _centre_spread(res[::4])
        new = np.abs(res - centre) <= k * max(sigma, 1e-9)
        if np.array_equal(new, keep):
            break
        keep = new
    order = max(int(order), 1)
    cmat = np.zeros((order + 1, order + 1))
    for cf, (j, i) in zip(coef, terms):
        cmat[j, i] = cf
    return _eval_poly(cmat, z.shape)
