"""Robust statistics and least-squares polynomial surfaces, the levelling's building blocks.

- robust locations and spreads that ignore NaN and outliers: :func:`_robust_sigma` (MAD),
  :func:`_row_nanmedian`, :func:`_row_shorth` and :func:`_row_clipped_median` (per row
  of a difference image), :func:`_centre_spread` (the densest part of a residual
  distribution);
- polynomial surfaces ``sum C[j, i] y**j x**i`` in coordinates normalised to [-1, 1]:
  :func:`_fit_poly` (fitted on at most ``_MAX_FIT_POINTS`` evenly spread pixels) and
  :func:`_eval_poly`, with the design matrix, term list and solver they share.

Heights are in nm and coordinates in pixels unless a docstring says otherwise.
"""

from __future__ import annotations

import numpy as np

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this = its standard deviation
_MAX_FIT_POINTS = 16384  # polynomial fits use at most this many (evenly spread) pixels


def _row_nanmedian(a: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN; NaN for rows without finite values (no warning)."""
    s = np.sort(a, axis=1)  # NaN sorts last
    n = np.isfinite(s).sum(axis=1)
    out = np.full(a.shape[0], np.nan)
    ok = n > 0
    rows = np.flatnonzero(ok)
    lo = (n[ok] - 1) // 2
    hi = n[ok] // 2
    out[ok] = 0.5 * (s[rows, lo] + s[rows, hi])
    return out


_CLIP_K = 3.0  # row_offsets: clipping of the differences, in pooled robust sigma


def _row_shorth(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Middle of the shortest window holding a quarter of each row's values.

    ``s`` is sorted along rows with NaN last, ``n`` the number of finite values per
    row. NaN for empty rows.
    """
    rows, cols = s.shape
    h = np.maximum(n // 4, 1)
    lo = np.arange(cols)[None, :]
    hi = lo + h[:, None]
    ok = hi < n[:, None]
    with np.errstate(invalid="ignore"):
        widths = np.take_along_axis(s, np.minimum(hi, cols - 1), axis=1) - s
    widths = np.where(ok, widths, np.inf)
    i = np.argmin(widths, axis=1)
    mid = np.minimum(i + h // 2, cols - 1)
    out = s[np.arange(rows), mid].astype(np.float64)
    out[n == 0] = np.nan
    single = (n > 0) & ~ok.any(axis=1)  # too few values for a window: their median
    if single.any():
        out[single] = _row_nanmedian(s[single])
    return out


def _row_clipped_median(d: np.ndarray) -> np.ndarray:
    """Robust per-row location of a row-to-row difference image.

    A difference image is mostly noise around the true offset step (terraces), plus
    values spread away from it where the rows cross pit walls, steps or scars. The
    plain median is pulled toward that spread by a fraction of the noise on every row
    (and the cumulative sum turns the bias into a drift), and is lost when a pit covers
    half the row. So each row's densest cluster is found first (the middle of the
    shortest window holding a quarter of the values), then the median of the values
    within _CLIP_K pooled robust sigma of it is taken (efficient on the noise).
    """
    d = d.astype(np.float32)  # faster sorts; ample precision for a difference image
    s = np.sort(d, axis=1)  # NaN last
    n = np.isfinite(s).sum(axis=1)
    centre = _row_shorth(s, n)
    sigma = max(_robust_sigma(d - centre[:, None]), 1e-9)
    with np.errstate(invalid="ignore"):
        near = np.abs(d - centre[:, None]) <= _CLIP_K * sigma
    med = _row_nanmedian(np.where(near, d, np.nan))
    med = np.where(np.isfinite(med), med, centre)
    return med.astype(np.float64)


def _robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (finite values)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0
    if v.size > _MAX_FIT_POINTS:  # an even sample is plenty for a spread estimate
        v = v[:: -(-v.size // _MAX_FIT_POINTS)]
    return float(_MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


_SHORTH_FRACTION = 0.25
# half-width of the shortest interval holding a fraction f of a normal sample is
# sigma * z((1 + f) / 2); for f = 0.25, z(0.625) = 0.3186
_SHORTH_Z = 0.3186


def _centre_spread(res: np.ndarray) -> tuple[float, float]:
    """Robust centre and standard deviation of the residuals of a background fit.

    The centre is the middle of the *shortest interval holding a quarter of the values*
    (a "shorth", i.e. the densest part of the height distribution) and the spread follows
    from that interval's width. Unlike the median and the MAD it stays on the terraces
    when a deep pit (a broad spread of heights, all below the terraces) covers up to half
    of the frame or more: the terraces are the densest population of heights.
    """
    r = np.sort(res)
    h = max(int(_SHORTH_FRACTION * r.size), 1)
    if r.size <= h:
        return float(np.median(r)), 0.0
    widths = r[h:] - r[:-h]
    i = int(np.argmin(widths))
    centre = float(np.median(r[i : i + h + 1]))
    return centre, float(widths[i]) / (2 * _SHORTH_Z)


def _norm_coords(n: int) -> np.ndarray:
    """Pixel indices 0..n-1 mapped onto [-1, 1] (well-conditioned polynomial fits)."""
    if n == 1:
        return np.zeros(1)
    return np.linspace(-1.0, 1.0, n)


def _poly_terms(order: int) -> list[tuple[int, int]]:
    """Exponents (j, i) of y**j * x**i with j + i <= order."""
    return [(j, i) for total in range(order + 1) for j in range(total + 1) for i in [total - j]]


def _sample(used: np.ndarray) -> np.ndarray:
    """Flat indices of at most ``_MAX_FIT_POINTS`` evenly spread usable pixels."""
    idx = np.flatnonzero(used)
    if idx.size > _MAX_FIT_POINTS:
        step = -(-idx.size // _MAX_FIT_POINTS)
        cols = used.shape[-1]
        while np.gcd(step, cols) != 1:  # spread the sample over all columns
            step += 1
        idx = idx[::step]
    return idx


def _design(shape, idx: np.ndarray, order: int) -> np.ndarray:
    """Design matrix of the monomials y**j x**i (normalised coordinates) at flat indices."""
    rows, cols = shape
    r, c = np.divmod(idx, cols)
    y = _norm_coords(rows)[r]
    x = _norm_coords(cols)[c]
    terms = _poly_terms(order)
    a = np.empty((idx.size, len(terms)))
    for k, (j, i) in enumerate(terms):
        a[:, k] = y**j * x**i
    return a


def _lstsq(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Least squares through the normal equations (columns equilibrated).

    ``einsum`` avoids multithreaded BLAS, whose start-up costs more than a fit of a few
    terms on a busy machine; the monomials of normalised coordinates keep the system
    well conditioned for the orders used here.
    """
    g = np.einsum("ni,nj->ij", a, a)
    b = np.einsum("ni,n->i", a, v)
    d = np.sqrt(np.diag(g))
    d[d == 0] = 1.0
    g = g / d[:, None] / d[None, :]
    try:
        x = np.linalg.solve(g, b / d)
    except np.linalg.LinAlgError:  # singular (e.g. all points on one line)
        x = np.linalg.lstsq(g, b / d, rcond=None)[0]
    return x / d


def _coef_matrix(coef: np.ndarray, order: int) -> np.ndarray:
    cmat = np.zeros((order + 1, order + 1))
    for k, (j, i) in enumerate(_poly_terms(order)):
        cmat[j, i] = coef[k]
    return cmat


def _fit_poly(z: np.ndarray, used: np.ndarray, order: int):
    """Least-squares polynomial surface through the ``used`` pixels.

    Returns the coefficient matrix ``C`` (order+1, order+1) with ``C[j, i]`` the
    coefficient of y**j x**i in normalised coordinates, or None if nothing is usable.
    """
    idx = _sample(used)
    if idx.size == 0:
        return None
    coef = _lstsq(_design(z.shape, idx, order), z.ravel()[idx])
    return _coef_matrix(coef, order)


def _eval_poly(cmat, shape) -> np.ndarray:
    rows, cols = shape
    if cmat is None:
        return np.zeros(shape)
    n = cmat.shape[0]
    y = _norm_coords(rows)
    xpow = _norm_coords(cols)[None, :] ** np.arange(n)[:, None]  # (n, cols)
    rowpoly = cmat @ xpow  # (n, cols): the coefficient of y**j as a function of x
    # Horner in y with broadcasting (no large matrix product: BLAS threads cost more
    # than they save here)
    out = np.broadcast_to(rowpoly[n - 1], shape).copy()
    for j in range(n - 2, -1, -1):
        out *= y[:, None]
        out += rowpoly[j]
    return out
