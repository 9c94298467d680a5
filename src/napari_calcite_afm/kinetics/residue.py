"""What levelling left different between two registered frames.

Each frame is levelled on its own (a polynomial background, scan lines aligned to each
other), and what that takes away depends on what the frame holds: a pit that grows
changes the fitted background and biases the alignment of the lines that cross it. The
difference ``Z_{t+1} - Z_t`` of two levelled frames therefore carries, besides what
dissolved, a smooth surface (up to tens of nm on frames that pits come to cover) and an
offset per scan line that wanders from line to line (the alignment's errors add up down
the frame). One height offset per pair cannot remove either, and the rates of such pairs
are wrong everywhere.

:func:`levelling_residue` fits that difference, on the reference pixels (terrace in both
frames), as a polynomial in the column coordinate plus one offset per row (the row
offsets take every function of the row coordinate, the polynomial's included):

1. five starting surfaces: a level, a plane and a quadratic fitted robustly (Tukey) to
   the heights, a quadratic fitted to the slopes between neighbouring pixels (a swept
   band's sharp edge is an outlier there), and the lines aligned to each other by the
   median step between neighbours (a step of whole monolayers between two lines is
   taken for a step along them, not an offset);
2. dissolution lowers the surface by whole monolayer steps (0.31 nm), so each pixel up
   to two steps below the current surface is counted as swept by that many steps and
   put back up (a swept band must not bend the fit, as it would a plain least-squares
   surface), pixels further off are left out;
3. row offsets and column polynomial are fitted to what is left, in turn, each row kept
   within half a step of its start; 2-3 repeat, twice for every start, then to the end
   for the start that left the most pixels on the unchanged level (among those within
   1 % of it, the one that put fewest back).

**The assumption**: the difference of the two levellings is smooth along the scan lines
(any shape across them) and the unchanged surface is a good share of each part of the
frame. **Where it fails**: a step that runs along the scan lines sweeps whole lines,
which nothing tells from a line offset but its height of whole steps; where such lines
are most of the reference, the pair keeps one offset (:mod:`.reference`). Lines whose
offset differs from their start by more than half a step are not followed.
``docs/kinetics.md`` has the measured gain.
"""

from __future__ import annotations

import numpy as np

from ..surface import CALCITE_STEP_NM

__all__ = ["N_COLUMN_TERMS", "levelling_residue", "residue_surface"]

_ORDER = 2  # polynomial order of the smooth part
_MAX_STEPS = 2  # a pixel at most this many steps below the surface counts as swept
_ITERATIONS = 5  # rounds of steps 2-3
_FIRST_ROUNDS = 2  # rounds for every start before the best one goes on
_INLIER_SIGMAS = 3.0  # within this many noise widths of the surface (swept steps put back)
_TUKEY = 2.5  # Tukey's constant, in robust standard deviations, for the starting surface
_ROW_FREEDOM = 0.45 * CALCITE_STEP_NM  # how far a row may leave the smooth start, nm
_STEP_JUMP_NM = 0.05  # a jump between lines this close to whole steps is a swept step
_MIN_ROW = 10  # a row with fewer reference pixels takes its neighbours' offset
_MAX_COLUMNS = 64  # columns sampled per row for the fit (the rest adds little)
_START_ROWS = 64  # rows sampled for the starting surfaces
_START_SLOPES = 20000  # slopes sampled for the start fitted to them
#: Number of column terms (``u``, ``u v``, ``u**2`` for order 2).
N_COLUMN_TERMS = sum(1 for i in range(1, _ORDER + 1) for _ in range(_ORDER + 1 - i))


def _terms(rows: int, cols: int, col_index: np.ndarray, order: int, with_rows: bool):
    """Polynomial terms on the grid of ``col_index`` columns (coordinates -0.5 to 0.5)."""
    v, u = np.meshgrid(
        np.arange(rows, dtype=float) / rows - 0.5, col_index / cols - 0.5, indexing="ij"
    )
    powers = [(i, j) for i in range(order + 1) for j in range(order + 1 - i) if i + j]
    return [u**i * v**j for i, j in powers if with_rows or i > 0]


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares of a few columns by the normal equations (a tiny ridge keeps a
    column that the pixels do not constrain at 0). Not ``level.robust._lstsq``: its
    einsum products take 1.0 ms on 40,000 x 3 against 0.26 ms here, and a pair's fit
    makes about 200 of them."""
    ata = a.T @ a
    ata[np.diag_indices_from(ata)] += 1e-9 * (np.trace(ata) + 1.0)
    return np.linalg.solve(ata, a.T @ b)


def _robust_surface(d: np.ndarray, use: np.ndarray, terms: list[np.ndarray]) -> np.ndarray:
    """A polynomial surface fitted to ``d[use]`` by iteratively reweighted least squares
    with Tukey's biweight (a swept band or a pit is an outlier, not a bend)."""
    y = d[use]
    a = np.stack([np.ones(y.size)] + [t[use] for t in terms], axis=1)
    coef = np.zeros(a.shape[1])
    coef[0] = np.median(y)  # started from the median: a plain fit would bend to a band
    for _ in range(6):
        r = y - a @ coef
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-9
        x = np.abs(r) / (_TUKEY * scale)
        sw = np.sqrt(np.where(x < 1, (1 - x**2) ** 2, 0.0))
        if np.count_nonzero(sw) < a.shape[1]:
            break
        coef = _lstsq(a * sw[:, None], y * sw)
    return np.full(d.shape, coef[0]) + sum(c * t for c, t in zip(coef[1:], terms))


def _row_values(values: np.ndarray, rows_of: np.ndarray, n_rows: int) -> np.ndarray | None:
    """Mean of ``values`` per row (rows with fewer than ``_MIN_ROW`` take their
    neighbours' by linear interpolation); None when no row has enough."""
    count = np.bincount(rows_of, minlength=n_rows)
    ok = count >= _MIN_ROW
    if not ok.any():
        return None
    mean = np.bincount(rows_of, weights=values, minlength=n_rows)[ok] / count[ok]
    return np.interp(np.arange(n_rows), np.flatnonzero(ok), mean)


def levelling_residue(
    difference: np.ndarray, use: np.ndarray, noise_nm: float
) -> tuple[np.ndarray, np.ndarray]:
    """The smooth and per-row difference that levelling left between two frames.

    Parameters
    ----------
    difference : numpy.ndarray, shape (rows, cols)
        ``Z_{t+1} - Z_t`` of two registered, levelled frames, nm (any value where
        ``use`` is False).
    use : numpy.ndarray of bool, shape (rows, cols)
        The reference pixels: those that may not have changed (terrace in both frames).
    noise_nm : float
        Pixel noise of the difference (of the two frames together), nm.

    Returns
    -------
    column_terms : numpy.ndarray, shape (N_COLUMN_TERMS,)
        Coefficients of the terms ``u, u v, u**2`` (``u``, ``v``: column and row
        coordinates from -0.5 to 0.5; :func:`residue_surface`), nm.
    row_offsets_nm : numpy.ndarray, shape (rows,)
        Offset of each row, nm (all functions of the row coordinate).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows = np.cumsum(rng.normal(0, 0.02, 64))                # line offsets adding up
    >>> d = np.zeros((64, 64)) + rows[:, None] + np.linspace(-1, 1, 64)  # and a tilt
    >>> d[:, :20] -= 0.31                                       # a band a step swept
    >>> terms, offsets = levelling_residue(d, np.ones(d.shape, bool), 0.02)
    >>> left = d - residue_surface(terms, offsets, 64)
    >>> float(np.ptp(left[:, 20:]).round(2)), float(np.median(left[:, :20]).round(2))
    (0.0, -0.31)
    """
    d = np.asarray(difference, np.float64)
    use = np.asarray(use, bool) & np.isfinite(d)
    n_rows, n_cols = d.shape
    cols = np.arange(0, n_cols, max(1, n_cols // _MAX_COLUMNS))
    d, use = d[:, cols], use[:, cols]
    if use.sum() < 2 * _MIN_ROW:
        return np.zeros(N_COLUMN_TERMS), np.zeros(n_rows)
    tolerance = _INLIER_SIGMAS * max(float(noise_nm), 0.01)
    terms = _terms(n_rows, n_cols, cols, _ORDER, with_rows=True)
    sub = use.copy()  # the level and polynomial starts need not be exact: every few rows
    sub[np.arange(n_rows) % max(1, n_rows // _START_ROWS) != 0] = False
    sub = sub if sub.sum() >= 4 * _MIN_ROW else use
    starts = [_robust_surface(d, sub, terms[:k]) for k in (0, 2, len(terms))]
    starts.append(_gradient_surface(d, use, terms))
    column_terms = [t for t, (i, _) in zip(terms, _POWERS) if i > 0]
    starts.append(_line_surface(d, use, column_terms))
    # a level, a plane, a quadratic, the quadratic of the slopes, the lines aligned:
    # each refined a little,
    # the one that leaves the most pixels on the unchanged level refined to the end
    fits = [_refine(d, use, s, s, column_terms, tolerance, _FIRST_ROUNDS) for s in starts]
    bucket = max(1, int(use.sum()) // 100)  # about as many pixels level: fewer put back
    best = max(range(len(fits)), key=lambda i: (fits[i][2] // bucket, -fits[i][4]))
    if fits[best][2] < 0:
        return np.zeros(N_COLUMN_TERMS), np.zeros(n_rows)
    rounds = _ITERATIONS - _FIRST_ROUNDS
    fit = _refine(d, use, fits[best][3], starts[best], column_terms, tolerance, rounds)
    return (fit[0], fit[1]) if fit[2] >= 0 else fits[best][:2]


_POWERS = [(i, j) for i in range(_ORDER + 1) for j in range(_ORDER + 1 - i) if i + j]


def _line_surface(d, use, column_terms):
    """Line offsets aligned from line to line (the median step between neighbouring
    lines, as a levelling's line alignment does, here on the difference), plus a robust
    column polynomial."""
    both = use[1:] & use[:-1]
    g = np.where(both, d[1:] - d[:-1], np.nan)
    count = both.sum(axis=1)
    jumps = np.zeros(g.shape[0])
    enough = count >= _MIN_ROW
    if enough.any():
        jumps[enough] = np.nanmedian(g[enough], axis=1)
    steps = np.round(jumps / CALCITE_STEP_NM)
    along = (steps != 0) & (np.abs(jumps - steps * CALCITE_STEP_NM) < _STEP_JUMP_NM)
    jumps[along] = 0.0  # a whole step between two lines: a step along them, not an offset
    lines = np.concatenate([[0.0], np.cumsum(jumps)])
    rest = _robust_surface(d - lines[:, None], use, column_terms)
    return rest + lines[:, None]


def _gradient_surface(d: np.ndarray, use: np.ndarray, terms: list[np.ndarray]) -> np.ndarray:
    """A polynomial surface fitted to the slopes of ``d`` between neighbouring reference
    pixels (Tukey weights): the sharp edge of a swept band is an outlier there, where
    in the heights the band could be a bow; its level is the median."""
    pairs = []
    for axis in (0, 1):
        n = d.shape[axis] - 1
        lo, hi = (slice(0, n), slice(1, None))
        ix_lo = (lo, slice(None)) if axis == 0 else (slice(None), lo)
        ix_hi = (hi, slice(None)) if axis == 0 else (slice(None), hi)
        ok = use[ix_lo] & use[ix_hi]
        pairs.append(((d[ix_hi] - d[ix_lo])[ok], [(t[ix_hi] - t[ix_lo])[ok] for t in terms]))
    every = max(1, sum(p[0].size for p in pairs) // _START_SLOPES)  # a sample does
    g = np.concatenate([p[0] for p in pairs])[::every]
    a = np.stack(
        [np.concatenate([p[1][k] for p in pairs])[::every] for k in range(len(terms))], axis=1
    )
    sw = np.ones(g.size)
    coef = np.zeros(len(terms))
    for _ in range(4):
        if np.count_nonzero(sw) < len(terms):
            break
        coef = _lstsq(a * sw[:, None], g * sw)
        r = g - a @ coef
        x = np.abs(r) / (_TUKEY * 1.4826 * float(np.median(np.abs(r))) + 1e-9)
        sw = np.sqrt(np.where(x < 1, (1 - x**2) ** 2, 0.0))
    surface = sum(c * t for c, t in zip(coef, terms)) + np.zeros(d.shape)
    return surface + float(np.median((d - surface)[use]))


def _refine(d, use, surface, start, terms, tolerance, rounds):
    """Steps 2-3 of the module's method, ``rounds`` times from ``surface`` (rows kept
    within ``_ROW_FREEDOM`` of ``start``): ``(column_terms, row_offsets, inliers,
    surface, lifted)``, inliers the reference pixels within ``tolerance`` of the surface
    once their swept steps are put back (-1: too few), lifted how many of them were."""
    n_rows = d.shape[0]
    a = np.stack([t[use] for t in terms], axis=1)
    rows_of = np.nonzero(use)[0]
    y = d[use]
    coef, offsets, inliers, lifted = np.zeros(N_COLUMN_TERMS), np.zeros(n_rows), -1, 0
    for _ in range(rounds):
        below = np.clip(np.round((surface[use] - y) / CALCITE_STEP_NM), 0, _MAX_STEPS)
        target = y + below * CALCITE_STEP_NM  # swept steps put back
        inlier = np.abs(target - surface[use]) < tolerance
        inliers = int(inlier.sum())
        lifted = int(np.count_nonzero(below[inlier]))
        if inliers < 2 * _MIN_ROW:
            return coef, offsets, -1, surface, 0
        a_in, t_in, r_in = a[inlier], target[inlier], rows_of[inlier]
        for _ in range(2):
            row_mean = _row_values(t_in - a_in @ coef, r_in, n_rows)
            if row_mean is None:
                return coef, offsets, -1, surface, 0
            offsets = row_mean
            coef = _lstsq(a_in, t_in - offsets[r_in])
        surface = sum(c * t for c, t in zip(coef, terms)) + offsets[:, None]
        # a row may leave the smooth start by less than half a step: more would be a
        # step that ran along it, which no line offset can be told from
        away = (surface - start).mean(axis=1)
        offsets = offsets - (away - np.clip(away, -_ROW_FREEDOM, _ROW_FREEDOM))
        surface = sum(c * t for c, t in zip(coef, terms)) + offsets[:, None]
    return coef, offsets, inliers, surface, lifted


def residue_surface(column_terms: np.ndarray, row_offsets_nm: np.ndarray, cols: int) -> np.ndarray:
    """The map (rows, cols) of :func:`levelling_residue`'s terms and row offsets, nm."""
    offsets = np.asarray(row_offsets_nm, np.float64)
    terms = _terms(offsets.size, cols, np.arange(cols), _ORDER, with_rows=False)
    return sum(c * t for c, t in zip(np.asarray(column_terms, float), terms)) + offsets[:, None]
