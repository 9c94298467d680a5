"""Faulty scan lines: lines offset as a whole far beyond the surface, and garbage lines.

A scan line (row) can fail as a whole: the scanner settling at the start of a frame, a
feedback glitch, a lost line, the z scanner saturating. Each line is compared with its
neighbours through their pixel-by-pixel differences:

- a line **offset as a whole** agrees with its neighbour up to a constant almost
  everywhere, but the constant lies far beyond the heights met along the scan lines of
  the frame. No pit or step explains that: a pit's walls cross lines, so its depth lies
  within those heights. Such lines are aligned (the constant is subtracted);
- a **garbage** line does not follow the surface: its differences with both neighbours
  are many times wider than those of neighbouring lines over most of its length. A
  short run of them inside the frame is recognised when the lines on either side agree
  with each other across it (it is interpolated later); at the start or end of the scan
  when it lies far outside the surface's heights (settling: set to NaN, nothing lies
  beyond it to interpolate from). Lines stuck at the frame's extreme value (the z
  scanner saturated) are set to NaN too.

:func:`find_bad_lines` returns them (a :class:`BadLines`);
:func:`~napari_calcite_afm.level.level_frame` runs it first, so that neither kind
disturbs the fits. docs/reading-and-levelling.md explains the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._input import MAX_ORDER, _as_frame, _check_order
from .background import _x_background
from .robust import _row_clipped_median, _row_nanmedian, _row_shorth

__all__ = ["BadLines", "find_bad_lines"]

#: Columns sampled for the line statistics (evenly spread); enough for medians.
_SAMPLE_COLS = 128
#: A boundary between two lines is *broken* when the low spread (25th percentile) of
#: their differences exceeds this many times the frame's typical low spread ...
_BROKEN = 5.0
#: ... and *intact* (the lines agree up to a constant) when the high spread (75th
#: percentile) is at most this many times the typical high spread.
_INTACT = 3.0
#: The lines on either side of a garbage run agree this many times better with each
#: other than with the run.
_BRIDGE = 2.0
#: Percentiles of the heights along the scan lines (each line less its median) that
#: give the surface's height range; an offset or an out-of-range run must exceed it
_RANGE_PCT = (1.0, 99.0)
#: ... by this factor.
_FAR = 2.0
#: Longest run of garbage lines, as a fraction of the rows (at least 4 lines).
_MAX_RUN_FRACTION = 1 / 32


@dataclass
class BadLines:
    """Result of :func:`find_bad_lines`.

    Attributes
    ----------
    garbage : numpy.ndarray of bool, shape (rows,)
        Lines that do not follow the surface (to repair or to set to NaN).
    missing : numpy.ndarray of bool, shape (rows,)
        The garbage lines with nothing to interpolate them from: at the start or end of
        the scan, or stuck at the instrument's range limit (usually many).
        :func:`~napari_calcite_afm.level.level_frame` sets them to NaN and interpolates
        the other garbage lines from the lines above and below.
    offsets : numpy.ndarray of float, shape (rows,)
        Offset of each line (nm) to subtract: nonzero only on lines offset as a whole
        far beyond the surface's height range; 0 on the others (NaN-free).
    height_range : float
        The surface's height range along the scan lines (nm), the scale the offsets are
        compared with.

    Examples
    --------
    >>> bad = find_bad_lines(np.zeros((4, 8)))
    >>> bad.garbage.tolist(), bad.offsets.tolist()
    ([False, False, False, False], [0.0, 0.0, 0.0, 0.0])
    """

    garbage: np.ndarray
    missing: np.ndarray
    offsets: np.ndarray
    height_range: float

    @property
    def found(self) -> bool:
        """True when some line is garbage or offset."""
        return bool(self.garbage.any() or np.any(self.offsets != 0))


def _pair_stats(zs: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Centre and spreads of the differences ``zs[b] - zs[a]`` (one pair per row).

    The centre is the middle of the densest quarter of the differences; the spreads are
    the 25th and 75th percentiles of their distances from it: the first stays small
    unless three quarters of the line disagree (a scar or a pit wall does not break a
    boundary), the second unless a quarter does (an intact boundary agrees almost
    everywhere). NaN for pairs sharing fewer than a tenth of the sampled columns.
    """
    d = np.sort(zs[b] - zs[a], axis=1)  # NaN last
    n = np.isfinite(d).sum(axis=1)
    centre = _row_shorth(d, n)
    dist = np.sort(np.abs(d - centre[:, None]), axis=1)
    rows = np.arange(d.shape[0])
    few = n < max(0.1 * zs.shape[1], 4)
    nn = np.maximum(n, 1) - 1
    low = dist[rows, (nn * 0.25).astype(int)]
    high = dist[rows, np.ceil(nn * 0.75).astype(int)]
    for v in (centre, low, high):
        v[few] = np.nan
    return centre, low, high


def _height_range(zs: np.ndarray) -> float:
    """The surface's height range along the scan lines (nm), whatever their offsets."""
    along = zs - _row_nanmedian(zs)[:, None]
    v = along[np.isfinite(along)]
    if v.size == 0:
        return 0.0
    lo, hi = np.percentile(v, _RANGE_PCT)
    return float(hi - lo)


def _interior_runs(dr, centre, low, typical, far, max_run, zs):
    """Garbage runs inside the frame: two broken boundaries bridged by the lines beside.

    ``centre`` and ``low`` are those of the boundaries between the lines ``dr``; a
    boundary is broken when ``low`` exceeds ``_BROKEN * typical``. The run between two
    broken boundaries (at most ``max_run`` lines) is garbage when the lines just before
    and just after it agree with each other (their low spread is not broken and at most
    ``1 / _BRIDGE`` of either boundary's) and, for a run of several lines, when the run
    lies far from the surface (a boundary's centre beyond ``far``) or its own lines do
    not follow each other either (every boundary inside it broken): several
    consistent lines that only differ from their neighbours are a streak that still
    shows the surface, left to the rest of the pipeline.
    """
    garbage = np.zeros(zs.shape[0], bool)
    broken = low > _BROKEN * typical
    ends = np.flatnonzero(broken)
    k = 0
    while k < ends.size:
        k1, found = ends[k], None
        for k2 in ends[k + 1 :]:
            if k2 - k1 > max_run:
                break
            # the run is rows dr[k1 + 1 .. k2]; the bridge joins dr[k1] and dr[k2 + 1]
            bridge = _pair_stats(zs, dr[[k1]], dr[[k2 + 1]])[1][0]
            if not bridge <= min(min(low[k1], low[k2]) / _BRIDGE, _BROKEN * typical):
                continue
            if k2 - k1 == 1 or max(abs(centre[k1]), abs(centre[k2])) > far:
                found = k2
            elif broken[k1 + 1 : k2].all():
                found = k2
            break
        if found is None:
            k += 1
            continue
        garbage[dr[k1 + 1 : found + 1]] = True
        k = int(np.searchsorted(ends, found, side="right"))
    return garbage


def _edge_runs(good, centre, high, typical, max_run, far, rows):
    """Garbage runs at the start or end of the scan, far outside the surface's heights.

    ``centre`` and ``high`` are those of the boundaries between the lines ``good``. The
    innermost boundary within ``max_run`` lines of either end that is not intact
    (``high`` over ``_INTACT * typical``) and whose centre exceeds ``far`` ends the run.
    """
    garbage = np.zeros(rows, bool)
    bad = (np.abs(centre) > far) & ~(high <= _INTACT * typical)  # NaN: not intact
    n = centre.size
    for k in range(min(max_run, n) - 1, -1, -1):  # from the start, innermost first
        if bad[k]:
            garbage[good[: k + 1]] = True
            break
    for k in range(max(n - max_run, 0), n):  # from the end, innermost first
        if bad[k]:
            garbage[good[k + 1 :]] = True
            break
    return garbage


def _stuck_rows(z: np.ndarray) -> np.ndarray:
    """Rows whose every finite pixel holds the frame's lowest or highest value.

    A scan line stuck at the limit of the instrument's range (the tip lost the surface
    and the z scanner saturated) records one value; measured lines are never that flat.
    """
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(z, axis=1), np.nanmax(z, axis=1)
        flat = lo == hi
        if not flat.any():
            return flat
        return flat & ((lo == np.nanmin(lo)) | (hi == np.nanmax(hi)))


def _typical(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else 0.0


def _bad_lines(z: np.ndarray, zx: np.ndarray) -> BadLines:
    """:func:`find_bad_lines` on ``z`` and ``zx``, ``z`` less its variation along rows."""
    rows, cols = zx.shape
    found = BadLines(np.zeros(rows, bool), np.zeros(rows, bool), np.zeros(rows), 0.0)
    zs = zx[:, :: max(cols // _SAMPLE_COLS, 1)]
    data = np.isfinite(zs).any(axis=1)
    if data.sum() < 3 or cols < 8:
        return found
    stuck = np.zeros(rows, bool)
    stuck[data] = _stuck_rows(z[data])
    dr = np.flatnonzero(data & ~stuck)
    if dr.size < 3:
        return found
    hrange = found.height_range = _height_range(zs[dr])
    centre, low, high = _pair_stats(zs, dr[:-1], dr[1:])
    t_low, t_high = _typical(low), _typical(high)
    if not (hrange > 0 and t_low > 0):  # a noise-free frame: nothing to compare with
        return found
    t_low, t_high = max(t_low, 1e-3 * hrange), max(t_high, 1e-3 * hrange)
    far = _FAR * hrange
    max_run = max(4, int(rows * _MAX_RUN_FRACTION))
    garbage = _interior_runs(dr, centre, low, t_low, far, max_run, zs)
    good = dr[~garbage[dr]]
    if garbage.any():  # the boundaries between the lines that are left
        centre, low, high = _pair_stats(zs, good[:-1], good[1:])
    missing = _edge_runs(good, centre, high, t_high, max_run, far, rows)
    if missing[good].all():  # nothing would be left to level: too small a frame
        return found
    if missing.any():
        keep = ~missing[good]
        pairs = keep[:-1] & keep[1:]
        good, centre, high = good[keep], centre[pairs], high[pairs]
    jump = (np.abs(centre) > far) & (high <= _INTACT * t_high)
    if jump.any():
        k = np.flatnonzero(jump)
        inc = np.zeros(good.size - 1)
        inc[k] = _row_clipped_median(zx[good[k + 1]] - zx[good[k]])
        cum = np.concatenate([[0.0], np.cumsum(inc)])
        found.offsets[good] = cum - np.median(cum)
    found.missing = missing | stuck
    found.garbage = garbage | found.missing
    return found


def _fill_lines(z: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``z`` with the rows ``lines`` interpolated along the columns (nm).

    Each row is interpolated linearly between the nearest rows above and below that
    are not in ``lines`` and hold data; where one of the two is NaN or missing the
    other is copied, where both are the pixel is NaN.
    """
    z = z.copy()
    rows = np.flatnonzero(lines)
    source = np.flatnonzero(~lines & np.isfinite(z).any(axis=1))
    if rows.size == 0 or source.size == 0:
        return z
    nxt = np.searchsorted(source, rows)
    above = source[np.maximum(nxt - 1, 0)]
    below = source[np.minimum(nxt, source.size - 1)]
    za = np.where((nxt > 0)[:, None], z[above], np.nan)
    zb = np.where((nxt < source.size)[:, None], z[below], np.nan)
    t = ((rows - above) / np.maximum(below - above, 1))[:, None]
    both = np.isfinite(za) & np.isfinite(zb)
    with np.errstate(invalid="ignore"):
        z[rows] = np.where(both, za + t * (zb - za), np.where(np.isfinite(za), za, zb))
    return z


def find_bad_lines(image, background_order: int = 2) -> BadLines:
    """Find scan lines offset as a whole far beyond the surface, and garbage lines.

    Each line is compared with the next line holding data through their differences,
    pixel by pixel, on the frame less its variation along the rows (tilt and bow along
    the fast axis, measured from slopes so that offsets and pits do not bias it; 128
    evenly spread columns are enough). For each pair of neighbouring lines, the
    *centre* of the differences is the middle of their densest quarter, the *low* and
    *high spreads* are the 25th and 75th percentiles of their distances from it; the
    frame's typical spreads are the medians over all pairs. The *height range* is the
    1st to 99th percentile of the heights along the lines (each line less its median):
    it holds the depth of any pit, whose walls cross lines, whatever the offsets.

    - **Offset lines**: a pair whose high spread is at most 3 typical (the lines agree
      up to a constant almost everywhere: no wall, no step, no pit edge inside) and
      whose centre exceeds twice the height range. The lines after it are offset by
      the precise constant (a clipped median over all columns). A pit spanning whole
      rows is not taken for one: its depth lies within the height range.
    - **Garbage lines**, inside the frame: a run of at most ``max(4, rows // 32)``
      lines between two *broken* boundaries (low spread over 5 typical: three
      quarters of the line disagree, which a scar or a pit wall crossing part of the
      line does not do), when the lines on either side agree with each other across
      it (their low spread at most half of either boundary's and not broken). A run
      of several lines must also lie beyond twice the height range, or have every
      boundary inside it broken too: consistent lines that only differ from their
      neighbours are a streak that still shows the surface.
    - **Garbage lines** at the start or end of the scan (settling): the lines beyond
      the innermost boundary, within ``max(4, rows // 32)`` lines of the end, whose
      centre exceeds twice the height range and which is not intact (high spread over
      3 typical). They are ``missing``: nothing lies beyond them to interpolate from.
    - **Stuck lines**: every pixel at the frame's lowest or highest value (the z
      scanner saturated after the tip lost the surface), also ``missing``; only on a
      frame with noise (a noise-free synthetic pattern can have flat lines).

    Noise-free frames (typical low spread 0) and frames of fewer than 3 lines or 8
    columns are left alone.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        Heights (nm); NaN pixels are ignored, rows without data are skipped over.
    background_order : int
        Order (0 to 8) of the background whose variation along the rows is removed
        first.

    Returns
    -------
    BadLines
        The garbage lines (and which of them are at the edges) and the offsets (nm).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[0:64, 0:96] / 8.0
    >>> z = np.sin(x) * np.cos(0.7 * y) + rng.normal(0, 0.05, (64, 96))  # nm
    >>> z[:2] = rng.normal(-140.0, 3.0, (2, 96))    # settling: garbage, far below
    >>> z[30] = rng.normal(0.0, 1.0, 96)             # a lost line
    >>> z[48:] += 200.0                              # the rest offset as a whole
    >>> bad = find_bad_lines(z)
    >>> np.flatnonzero(bad.garbage).tolist(), np.flatnonzero(bad.missing).tolist()
    ([0, 1, 30], [0, 1])
    >>> round(float(bad.offsets[48] - bad.offsets[47]), 1)
    200.0
    """
    z = _as_frame(image)
    order = _check_order(background_order, "background_order", maximum=MAX_ORDER)
    z[~np.isfinite(z)] = np.nan
    return _bad_lines(z, z - _x_background(z, order))
