"""Sample statistics of a frame and the binned samples behind histograms, KS and EM.

- :func:`fluctuation`: the zero-mean fluctuation ``Z' = Z - <Z>`` (nm);
- :func:`increments`: the increments ``Z(x + s) - Z(x)`` at a lag ``s`` (pixels), as a
  flat sample (nm);
- :func:`pair_fractions`: the fractions ``p_ij(s)`` of pairs ``(x, x + s)`` by class;
- :func:`histogram`: a density histogram (1/nm) with robust, Freedman-Diaconis bins.

:class:`_Binned` assigns a sample once to fine uniform buckets; that one pass serves the
histogram, the exact KS distance (:mod:`.goodness`) and the binned EM (:mod:`.em`).

Examples
--------
>>> z = np.array([[0.0, 1.0, 3.0], [1.0, 2.0, 5.0]])
>>> fluctuation(z).tolist()
[[-2.0, -1.0, 1.0], [-1.0, 0.0, 3.0]]
>>> increments(z, 1, "x").tolist()
[1.0, 2.0, 1.0, 3.0]
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import StatsError
from ._checks import _as_frame, _check_axis, _check_lag, _check_n_classes, _class_codes
from ._workspace import _Workspace
from .results import Histogram

_N_FINE = 65536  # fine buckets of a binned sample (histogram bins, exact KS)
_BLOCK = 16  # fine buckets per level-0 group (about 4 000 groups: KS bounds, binned EM)
_N_QUANTILE = 20_000  # subsample used only to place the histogram range and bin width
_MIN_BINS, _MAX_BINS = 50, 200


def fluctuation(z, labels=None) -> np.ndarray:
    """Zero-mean fluctuation ``Z' = Z - <Z>``.

    Parameters
    ----------
    z : array_like
        One frame ``(rows, cols)`` of heights, nm; NaN marks missing pixels.
    labels : array_like, optional
        Labels of the frame (0 unlabelled). When given, the mean runs over the finite
        *labelled* pixels (as in :func:`fit_frame`) and unlabelled pixels come back NaN.

    Returns
    -------
    numpy.ndarray
        ``float64`` frame of ``Z'`` in nm, NaN where ``z`` is NaN (or unlabelled).

    Examples
    --------
    >>> fluctuation(np.array([[1.0, 2.0], [3.0, np.nan]])).tolist()
    [[-1.0, 0.0], [1.0, nan]]
    """
    z = _as_frame(z)
    valid = np.isfinite(z)
    if labels is not None:
        valid &= _class_codes(labels, z.shape, 2) < 2
    if not valid.any():
        return np.full(z.shape, np.nan)
    z -= z[valid].mean()
    z[~valid] = np.nan
    return z


def _pair_slices(shape: tuple[int, int], lag: int, axis: str):
    """(first-end, second-end) slices of the pairs ``(x, x + s)`` along each direction."""
    rows, cols = shape
    out = []
    if axis in ("x", "both") and lag < cols:
        out.append(((slice(None), slice(None, cols - lag)), (slice(None), slice(lag, None))))
    if axis in ("y", "both") and lag < rows:
        out.append(((slice(None, rows - lag), slice(None)), (slice(lag, None), slice(None))))
    return out


def increments(z, lag: int, axis: str = "x", labels=None) -> np.ndarray:
    """Height increments ``dZ(x; s) = Z(x + s) - Z(x)`` at a lag, as a flat sample.

    Parameters
    ----------
    z : array_like
        One frame ``(rows, cols)``, nm.
    lag : int
        Lag ``s`` in pixels (>= 1).
    axis : {"x", "y", "both"}
        ``"x"``: pairs along a row, ``(r, c)`` and ``(r, c + s)``; ``"y"``: along a column,
        ``(r, c)`` and ``(r + s, c)``; ``"both"``: the x pairs followed by the y pairs.
    labels : array_like, optional
        When given, only pairs with both ends labelled (non-zero) are kept.

    Returns
    -------
    numpy.ndarray
        1D ``float64`` increments in nm over the pairs with both ends finite (and labelled);
        empty when the lag is not shorter than the frame.

    Examples
    --------
    >>> increments(np.array([[0.0, 1.0, 3.0]]), 1).tolist()
    [1.0, 2.0]
    """
    z = _as_frame(z)
    s = _check_lag(lag)
    _check_axis(axis)
    if labels is not None:
        z[_class_codes(labels, z.shape, 2) >= 2] = np.nan
    parts = [(z[b] - z[a]).ravel() for a, b in _pair_slices(z.shape, s, axis)]
    d = np.concatenate(parts) if parts else np.empty(0)
    return d[np.isfinite(d)]


def pair_fractions(labels, lag: int, axis: str = "x", n_classes: int = 2, valid=None):
    """Pair-type fractions ``p_ij(s)`` of a segmentation, by direct counting.

    Parameters
    ----------
    labels : array_like
        ``(rows, cols)`` labels (0 unlabelled, 1 A, 2 B, 3 M).
    lag : int
        Lag in pixels.
    axis : {"x", "y", "both"}
        Direction(s) of the pairs.
    n_classes : {2, 3}
        With 2, label 3 counts as B.
    valid : array_like of bool, optional
        Extra mask of usable pixels (e.g. ``np.isfinite(z)``).

    Returns
    -------
    p : numpy.ndarray
        ``(k, k)`` fractions of pairs ``(x, x + s)`` with ``x`` in class ``i`` and ``x + s``
        in class ``j`` (order A, B[, M]); they sum to 1; NaN when there is no valid pair.
    n_pairs : int
        Number of pairs with both ends usable and labelled.

    Examples
    --------
    >>> lab = np.array([[1, 1, 2, 2]])
    >>> p, n = pair_fractions(lab, 1)
    >>> p.tolist(), n
    ([[0.3333333333333333, 0.3333333333333333], [0.0, 0.3333333333333333]], 3)
    """
    k = _check_n_classes(n_classes)
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise StatsError(f"labels must be one frame (rows, cols), got shape {lab.shape}")
    code = _class_codes(lab, lab.shape, k).astype(np.intp)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != lab.shape:
            raise StatsError(f"valid shape {v.shape} does not match labels shape {lab.shape}")
        code[~v] = k
    s = _check_lag(lag)
    counts = np.zeros((k + 1) * (k + 1), dtype=np.int64)
    for a, b in _pair_slices(lab.shape, s, _check_axis(axis)):
        pc = code[a] * (k + 1) + code[b]
        counts += np.bincount(pc.ravel(), minlength=(k + 1) ** 2)
    n_ij = counts.reshape(k + 1, k + 1)[:k, :k]
    n = int(n_ij.sum())
    p = n_ij / n if n else np.full((k, k), np.nan)
    return p, n


# ----------------------------------------------------------------------------- binned sample
def _robust_edges(x: np.ndarray, xmin: float, xmax: float, bins) -> np.ndarray:
    """Uniform bin edges: robust range and Freedman-Diaconis width, 50-200 bins."""
    n = x.size
    if xmax <= xmin:  # constant sample: 1 nm wide window around the value
        nb = _MIN_BINS if bins is None else int(bins)
        return xmin + np.linspace(-0.5, 0.5, nb + 1)
    sub = x[:: n // _N_QUANTILE] if n >= 2 * _N_QUANTILE else x  # every k-th value
    q0, q1, q3, q4 = np.quantile(sub, [0.001, 0.25, 0.75, 0.999])
    span = q4 - q0
    lo = max(xmin, q0 - 0.1 * span)
    hi = min(xmax, q4 + 0.1 * span)
    if not hi > lo:
        lo, hi = xmin, xmax
    if hi >= xmax:  # keep the maximum inside the last bin
        hi = xmax + 1e-9 * (hi - lo)
    if bins is None:
        iqr = q3 - q1
        if iqr > 0:
            width = 2.0 * iqr / n ** (1.0 / 3.0)
            nb = int(np.clip(math.ceil((hi - lo) / width), _MIN_BINS, _MAX_BINS))
        else:
            nb = _MAX_BINS
    else:
        nb = int(bins)
        if nb < 1:
            raise StatsError(f"bins must be >= 1, got {bins!r}")
    return np.linspace(lo, hi, nb + 1)


class _Binned:
    """A 1D finite sample assigned to fine uniform buckets, grouped in coarse blocks.

    Bucket 0 holds the values below the histogram range, bucket ``nf + 1`` those above it,
    buckets ``1..nf`` split the range uniformly (``m`` per histogram bin, about 65 000 in
    all). Level-0 groups are blocks of ``_BLOCK`` fine buckets (about 4 000 groups), plus
    the two outer buckets. Assignment is monotone in x, and bucket ``j`` holds the points
    of its nominal interval ``[a[j], b[j])`` up to rounding (``eps``).

    One pass over the sample serves the histogram (sums of ``m`` buckets), the exact
    Kolmogorov-Smirnov distance (bounds per group, refined on the counts only where the
    maximum can lie: :func:`.goodness._binned_ks`) and the binned EM (sufficient
    statistics per level-0 group).

    ``x`` must be a non-empty 1D array of finite values; the scratch arrays come from
    ``work`` (``x`` itself is kept, not copied).
    """

    def __init__(self, x: np.ndarray, *, bins=None, work: _Workspace | None = None):
        work = work if work is not None else _Workspace()
        self.work = work
        self.x = x
        self.n = x.size
        self.xmin = xmin = float(x.min())
        self.xmax = xmax = float(x.max())
        edges = _robust_edges(x, xmin, xmax, bins)
        nb = edges.size - 1
        lo, hi = float(edges[0]), float(edges[-1])
        m = _BLOCK * max(1, math.ceil(_N_FINE / (nb * _BLOCK)))
        nf = nb * m
        scale = nf / (hi - lo)
        t = np.multiply(x, scale, out=work.get("t", x.size, np.float64))
        t += 1.0 - lo * scale
        np.clip(t, 0.0, nf + 1.0, out=t)
        self.idx = work.get("idx", x.size, np.int32)
        np.copyto(self.idx, t, casting="unsafe")  # truncation = floor, t >= 0
        self.counts = np.bincount(self.idx, minlength=nf + 2)
        self.cum = np.concatenate(([0], np.cumsum(self.counts)))
        fe = lo + np.arange(nf + 1) / scale
        fe[-1] = hi
        self.a = np.concatenate(([min(xmin, lo)], fe))
        self.b = np.concatenate((fe, [max(xmax, hi)]))
        self.eps = 1e-12 * (abs(xmin) + abs(xmax) + (xmax - xmin) + abs(lo) + abs(hi)) + 1e-300
        self.nf = nf
        self.edges = fe[::m].copy()
        self.edges[-1] = hi
        self.hist_counts = self.counts[1:-1].reshape(nb, m).sum(axis=1)
        inner = np.arange(1, nf + 1, _BLOCK)
        self.g0_start = np.concatenate(([0], inner, [nf + 1]))
        self.g0_end = np.concatenate(([1], inner + _BLOCK, [nf + 2]))

    def histogram(self) -> Histogram:
        """The density histogram of the sample (see :func:`histogram`)."""
        widths = np.diff(self.edges)
        density = self.hist_counts / (self.n * widths)
        outside = (self.counts[0] + self.counts[-1]) / self.n
        return Histogram(density=density, edges=self.edges, n=self.n, outside=float(outside))

    def group_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, sums of x and sums of x^2 per level-0 group.

        In-range fine buckets (about 1.5e-5 of the range wide) contribute their centre and
        the uniform within-bucket variance ``h^2 / 12``; the two outer buckets use the
        exact values of their points.
        """
        nf, block = self.nf, _BLOCK
        c = self.counts.astype(np.float64)
        inner = c[1:-1]
        centre = 0.5 * (self.a[1:-1] + self.b[1:-1])
        h2 = (self.b[1] - self.a[1]) ** 2 / 12.0
        s1 = inner * centre
        s2 = s1 * centre
        s2 += inner * h2
        cnt = np.concatenate(([c[0]], inner.reshape(-1, block).sum(axis=1), [c[-1]]))
        sx = np.concatenate(([0.0], s1.reshape(-1, block).sum(axis=1), [0.0]))
        sxx = np.concatenate(([0.0], s2.reshape(-1, block).sum(axis=1), [0.0]))
        for j, g in ((0, 0), (nf + 1, -1)):
            if self.counts[j]:
                xo = self.x[self.idx == j]
                sx[g] = xo.sum()
                sxx[g] = float((xo * xo).sum())
        return cnt, sx, sxx


def _finite_1d(values) -> np.ndarray:
    """The finite values of ``values`` as a flat ``float64`` array."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        x = x[np.isfinite(x)]
    return x


def histogram(values, bins: int | None = None) -> Histogram:
    """Density histogram with robust shared edges.

    The range runs from the 0.1 % to the 99.9 % quantile, widened by 10 % of that span on
    each side and clipped to the data range (far outliers fall outside and are reported in
    ``outside``); the bin width follows Freedman-Diaconis (``2 IQR n^(-1/3)``), capped to
    50-200 bins. Quantiles come from every k-th value (about 20 000 of them) when the
    sample is larger (they only place the edges; the counts use every value).

    Parameters
    ----------
    values : array_like
        Sample, nm (NaN ignored).
    bins : int, optional
        Number of bins instead of Freedman-Diaconis.

    Returns
    -------
    Histogram
        ``density`` in 1/nm normalised by the whole sample size.

    Examples
    --------
    >>> h = histogram(np.random.default_rng(0).normal(size=10_000))
    >>> 50 <= h.density.size <= 200, abs(float(np.sum(h.density * h.widths)) - 1) < 1e-3
    (True, True)
    """
    x = _finite_1d(values)
    if x.size == 0:
        raise StatsError("histogram of an empty sample (no finite value)")
    return _Binned(x, bins=bins).histogram()
