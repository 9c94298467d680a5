"""Estimators of the GSG parameters of one field or region: moments and maximum likelihood.

Both work on :class:`_Sample` summaries (sizes, second and fourth moments, and a
histogram of ``|x|`` on log-spaced bins) of the values ``Y - mu`` of the region and of its
same-region increments at each lag, so that a frame's sums are taken once.

``"moments"`` (the group's approach): ``sigma^2 = m2 / E[U]`` from the variance; for a
given ``a = 2 - alpha``, ``rho(s)`` follows from the increment variance
``2 sigma^2 (E[U] - E[U^(1/2)]^2 rho)``, and ``a`` minimises the squared differences of
the log-kurtoses of the values and of every lag's increments with their closed forms
(``3 exp(a^2)`` and ``3 E[W^2] / E[W]^2``).

``"ml"`` (default): ``sigma`` from the variance as above (a profile), then ``a`` and, per
lag, ``rho(s)`` (and with steps the crossing fraction ``q(s)``) maximise the composite
binned log-likelihood ``sum_k n_k log P_k`` of the histograms of the values and of the
increments at every lag (each a product over its bins, the histograms multiplied as if
independent). The scale mixtures are laid on a fixed grid of log-variances (steps of
0.05, linear assignment), so one matrix product evaluates the CDF at every bin edge of
every lag for a whole grid of ``rho`` values; ``t = log(1 - rho)`` runs in steps of 0.8,
then 0.2, each time with a parabola through the best three points; ``a`` over 6 points
(evaluated together, one matrix product), then Brent's bounded search (to 0.02; each
profile computed once); ``q`` maximises the (concave) likelihood of the mixture weight
by safeguarded Newton steps from a bracket, to 1e-12, so that the likelihood does not
depend on how the rows are batched. ``alpha`` is kept in [0.2, 2].

Step crossings (:func:`_step_height`) show as a second peak of ``|d|`` at the smallest
lag; a region without one has no step component.

Examples
--------
>>> from napari_calcite_afm.stats.gsg import simulate_gsg_field
>>> y = simulate_gsg_field((128, 128), 1.4, 1.0, 3.0, seed=5)
>>> h, lags = _field_samples(y, np.ones(y.shape, bool), [1, 2], "both")
>>> p = _estimate(h, lags, "ml", steps=False, min_pixels=10)
>>> bool(abs(p.alpha - 1.4) < 0.25), sorted(p.rho)
(True, [1, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import erf

from ._workspace import _Workspace
from .gsg import _D_NODES, _H_HEIGHT, _H_S
from .gsg_results import GSGParams
from .sample import _pair_slices

ALPHA_MIN = 0.2  # the smallest alpha the estimators return
_A_MAX = 2.0 - ALPHA_MIN
_N_BINS = 48  # histogram bins of |x|
_GRID_STEP = 0.05  # log-variance grid of the scale mixtures
_T_COARSE = (math.log(2.0) - 0.8 * np.arange(27))[::-1]  # log(1 - rho), uniform, rho >= -1
_T_FINE = np.array([-0.2, 0.0, 0.2])
_A_SEARCH = np.array([0.0, 0.08, 0.2, 0.45, 0.9, _A_MAX])  # a = 2 - alpha
_A_GRID = np.linspace(0.0, _A_MAX, 10)  # the moments' starting grid of a = 2 - alpha
_MIN_STEP_VALUES = 20
_Q_MAX = 0.95
_Q_TOL = 1e-12  # q to nearly full precision
_Q_GRID = np.array([1e-8, 1e-6, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8])
_SQRT2 = math.sqrt(2.0)


@dataclass
class _Sample:
    """A sample folded about 0: size, mean ``x^2`` and ``x^4``, log-binned ``|x|``.

    ``counts[0]`` holds ``|x| < edges[0]``, ``counts[k]`` ``edges[k-1] <= |x| <
    edges[k]``, the last bin ``|x| >= edges[-1]``. ``step`` is the median of the ``|x|``
    beyond the dip before a second peak of ``|x|`` (:func:`_step_height`; NaN when there
    is no such peak or it was not asked).
    """

    n: int
    m2: float
    m4: float
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(1))
    step: float = math.nan

    @property
    def kurtosis(self) -> float:
        """``m4 / m2^2`` (NaN for an empty or constant sample)."""
        return self.m4 / self.m2**2 if self.n and self.m2 > 0 else math.nan


def _summarise(x: np.ndarray, step: bool = False, work: _Workspace | None = None) -> _Sample:
    """The :class:`_Sample` of a 1-D array of finite values (already centred).

    The bins of ``|x|`` are log-spaced by the bit patterns of the floats (an IEEE double
    read as an integer grows monotonically, and nearly linearly, with its logarithm), so
    binning costs integer arithmetic only; the edges are the exact floats of those bit
    patterns. Scratch arrays come from ``work`` (fresh arrays cost page faults).
    """
    n = int(x.size)
    if n == 0:
        return _Sample(0, math.nan, math.nan)
    work = work if work is not None else _Workspace()
    ax = np.abs(x, out=work.get("gsg_abs", n, np.float64))
    sq = np.multiply(ax, ax, out=work.get("gsg_sq", n, np.float64))
    m2 = float(sq.sum()) / n
    m4 = float(np.dot(sq, sq)) / n
    top = float(ax.max())
    if top == 0.0:
        return _Sample(n, 0.0, 0.0, np.empty(0), np.array([n]))
    med = float(np.median(ax[:: max(1, n // 20_000)]))
    e0 = min(med / 20.0 if med > 0 else top * 1e-6, top / 2.0)
    b0 = int(np.float64(e0).view(np.int64))
    width = (int(np.float64(top * (1.0 + 1e-12)).view(np.int64)) - b0) // (_N_BINS - 2) + 1
    edges = (b0 + width * np.arange(_N_BINS - 1, dtype=np.int64)).view(np.float64)
    idx = np.subtract(ax.view(np.int64), b0, out=work.get("gsg_idx", n, np.int64))
    np.floor_divide(idx, width, out=idx)
    idx += 1
    np.clip(idx, 0, _N_BINS - 1, out=idx)
    counts = np.bincount(idx, minlength=_N_BINS)
    h = _step_height(ax, med, edges, counts) if step else math.nan
    return _Sample(n, m2, m4, edges, counts, h)


def _step_height(ax: np.ndarray, med: float, edges: np.ndarray, counts: np.ndarray) -> float:
    """The height of steps seen as a second peak of ``|x|``, or NaN when there is none.

    A zero-mean Gaussian scale mixture (any GSG increment) has a density of ``|x|`` that
    decreases from 0; step crossings add a peak at the step height. Beyond 3 times the
    median ``|x|``, a bin is a peak when the density (bin counts over bin widths, three
    bins smoothed) is at least twice its lowest value since then, with 20 values or more
    in its three bins; the highest such bin is the peak, and the step height is the
    median of the ``|x|`` beyond the lowest point before it.
    """
    if not med > 0:
        return math.nan
    dens = counts[1:-1] / np.diff(edges)
    smooth = np.convolve(dens, np.ones(3) / 3.0, mode="same")
    first = int(np.searchsorted(edges[1:], 3.0 * med))
    if first >= smooth.size - 1:
        return math.nan
    low = np.minimum.accumulate(smooth[first:])  # the lowest density so far
    near = np.convolve(counts[1:-1], np.ones(3), mode="same")[first:]
    ok = (smooth[first:] >= 2.0 * low) & (near >= _MIN_STEP_VALUES)
    if not ok.any():
        return math.nan
    peak = first + int(np.argmax(np.where(ok, smooth[first:], -1.0)))
    dip = first + int(np.argmin(smooth[first:peak])) if peak > first else first
    big = ax[ax > edges[dip + 1]]
    return float(np.median(big)) if big.size >= _MIN_STEP_VALUES else math.nan


def _field_samples(values, valid, lags, axis, step=False):
    """Samples of one region: values about their mean, same-region increments by lag.

    ``values`` is a 2-D float array, ``valid`` the boolean mask of the region.
    Returns ``(height_sample, {lag: increment_sample})`` (``mean`` kept as attribute).
    """
    v = values[valid]
    mean = float(v.mean()) if v.size else math.nan
    h = _summarise(v - mean)
    h.mean = mean  # type: ignore[attr-defined]
    out = {}
    for s in lags:
        parts = [
            (values[b] - values[a])[valid[a] & valid[b]]
            for a, b in _pair_slices(values.shape, s, axis)
        ]
        d = np.concatenate(parts) if parts else np.empty(0)
        out[s] = _summarise(d, step=step and s == min(lags))
    return h, out


# ----------------------------------------------------------------------------- moments
def _e(k: float, a: float) -> float:
    return math.exp(0.5 * (k * a) ** 2)


def _increment_kurtosis(a: float, rho: float) -> float:
    """``3 E[W^2] / E[W]^2``, ``W = U1 + U2 - 2 rho (U1 U2)^(1/2)``."""
    e05, e1, e15, e2 = _e(0.5, a), _e(1.0, a), _e(1.5, a), _e(2.0, a)
    ew = 2.0 * e1 - 2.0 * rho * e05**2
    ew2 = 2.0 * e2 + 2.0 * e1**2 + 4.0 * rho * rho * e1**2 - 8.0 * rho * e15 * e05
    return 3.0 * ew2 / ew**2 if ew > 0 else math.inf


def _moment_rho(a: float, m2: float, v: float) -> float:
    """``rho(s)`` from the increment variance ``v`` for a given ``a`` (not clipped)."""
    s2 = m2 / _e(1.0, a)
    return (_e(1.0, a) - v / (2.0 * s2)) / _e(0.5, a) ** 2


def _moments_fit(h: _Sample, lags: dict[int, _Sample]) -> tuple[float, dict[int, float]]:
    """``a`` and ``rho`` by lag, by the method of moments (lags with ``m2 > 0`` only)."""
    obs = [math.log(h.kurtosis)] + [math.log(s.kurtosis) for s in lags.values()]

    def loss(a: float) -> float:
        pred = [a * a + math.log(3.0)]
        for s in lags.values():
            r = float(np.clip(_moment_rho(a, h.m2, s.m2), -1.0, 1.0))
            pred.append(math.log(_increment_kurtosis(a, r)))
        return float(np.sum((np.array(pred) - obs) ** 2))

    grid = [loss(a) for a in _A_GRID]
    i = int(np.argmin(grid))
    lo, hi = _A_GRID[max(i - 1, 0)], _A_GRID[min(i + 1, _A_GRID.size - 1)]
    a = float(minimize_scalar(loss, bounds=(lo, hi), method="bounded").x)
    if loss(_A_GRID[i]) < loss(a):
        a = float(_A_GRID[i])
    return a, {s: _moment_rho(a, h.m2, smp.m2) for s, smp in lags.items()}


# ----------------------------------------------------------------------------- likelihood
class _Grid:
    """A uniform grid of log-variances and the folded CDFs of its normals at bin edges."""

    def __init__(self, samples: list[_Sample]) -> None:
        lo = min(2.0 * math.log(s.edges[0]) for s in samples) - 8.0
        hi = max(2.0 * math.log(s.edges[-1]) for s in samples) + 8.0
        self.lo = lo
        self.size = math.ceil((hi - lo) / _GRID_STEP) + 1
        self.sd = np.exp(0.5 * (lo + _GRID_STEP * np.arange(self.size)))

    def assign(self, log_var: np.ndarray, weights: np.ndarray, rows: int = 1) -> np.ndarray:
        """``(rows, size)`` weights of atoms spread linearly over the two nearest cells.

        ``log_var`` and ``weights`` have a leading axis of length ``rows``; linear
        (cloud-in-cell) assignment keeps the density error second order in the step.
        """
        u = np.subtract(log_var, self.lo)
        u *= 1.0 / _GRID_STEP  # finite: 1 - rho >= e^-20
        np.clip(u, 0.0, self.size - 1.000001, out=u)
        i0 = u.astype(np.intp)  # at most size - 2: both cells in the row
        f = np.subtract(u, i0, out=u)
        if rows > 1:
            i0 += (np.arange(rows) * self.size).reshape((rows,) + (1,) * (u.ndim - 1))
        lower = np.subtract(1.0, f)
        lower *= weights
        f *= weights
        n = rows * self.size
        i0 = i0.ravel()
        out = np.bincount(i0, lower.ravel(), minlength=n)
        out[1:] += np.bincount(i0, f.ravel(), minlength=n)[:-1]  # the upper cells, i0 + 1
        return out.reshape(rows, self.size)

    def matrix(self, s: _Sample) -> np.ndarray:
        """``erf(e / (sd sqrt 2))``: ``P(|X| <= e)`` per edge (rows) and grid normal."""
        return erf(s.edges[:, None] / (self.sd[None, :] * _SQRT2))


def _probs(cdf: np.ndarray) -> np.ndarray:
    """Bin probabilities from folded CDFs at the inner edges (last axis)."""
    return np.maximum(np.diff(cdf, axis=-1, prepend=0.0, append=1.0), 1e-300)


def _q_slope(p0, diff, counts, q) -> tuple[np.ndarray, np.ndarray]:
    """First and (minus) second derivative in ``q`` of ``sum n log(p0 + q diff)``, per row."""
    r = diff / np.maximum(p0 + q[:, None] * diff, 1e-150)
    return (r * counts).sum(axis=1), (r * r * counts).sum(axis=1)


def _best_q(p0: np.ndarray, p1: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The mixture weight ``q`` maximising ``sum_b n_b log((1 - q) p0 + q p1)``.

    ``p0``, ``p1``: ``(rows, lags, bins)``; ``counts``: ``(lags, bins)``. The function is
    concave in ``q`` on ``[0, 0.95]``: the ends where its slope says so; otherwise the
    slope on a grid of ``q`` (:data:`_Q_GRID`, log-spaced near 0, where bins the model
    without steps leaves empty make the slope ``~ n / q``) brackets its root, and Newton
    steps inside the bracket (bisection when a step leaves it) converge to ``q`` to
    1e-12, so that ``q`` does not depend on how the rows are batched.
    """
    shape = p0.shape[:2]
    nb = p0.shape[2]
    diff = (p1 - p0).reshape(-1, nb)
    p0 = p0.reshape(-1, nb)
    cnt = np.broadcast_to(counts[None], (*shape, nb)).reshape(-1, nb)
    q = np.zeros(diff.shape[0])
    g0, h0 = _q_slope(p0, diff, cnt, q)
    g1, _ = _q_slope(p0, diff, cnt, np.full_like(q, _Q_MAX))
    q[g1 >= 0] = _Q_MAX
    act = np.flatnonzero((g0 > 0) & (g1 < 0))
    if not act.size:
        return q.reshape(shape)
    pa, da, ca = p0[act], diff[act], cnt[act]
    den = np.maximum(pa[:, None, :] + _Q_GRID[None, :, None] * da[:, None, :], 1e-150)
    j = (np.einsum("rgb,rb->rg", 1.0 / den, da * ca) > 0).sum(axis=1)  # the slope decreases
    edges = np.concatenate([[0.0], _Q_GRID, [_Q_MAX]])
    lo, hi = edges[j], edges[j + 1]
    qa = np.where(j == 0, np.clip(g0[act] / h0[act], 1e-12, _Q_GRID[0]), 0.5 * (lo + hi))
    for _ in range(100):  # rows leave the iteration as they converge
        g, hess = _q_slope(pa, da, ca, qa)
        up = g > 0
        lo = np.where(up, qa, lo)
        hi = np.where(up, hi, qa)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = qa + g / hess
        new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
        done = np.abs(new - qa) < _Q_TOL
        qa = new
        if done.any():
            q[act[done]] = qa[done]
            keep = ~done
            if not keep.any():
                break
            act, pa, da, ca = act[keep], pa[keep], da[keep], ca[keep]
            qa, lo, hi = qa[keep], lo[keep], hi[keep]
    else:
        q[act] = qa
    return q.reshape(shape)


class _RegionLik:
    """Composite binned log-likelihood of one region, profiled over sigma, rho and q.

    Every lag's histogram has the same number of bins, so the lags are evaluated
    together: ``(rows, lags, bins)`` probabilities for ``rows`` values of ``t = log(1 -
    rho)``.
    """

    def __init__(self, h: _Sample, lags: dict[int, _Sample], step_height: float) -> None:
        self.h, self.keys, self.step = h, list(lags), step_height
        self.grid = _Grid([h, *lags.values()])
        self.kh = self.grid.matrix(h)
        if self.keys:
            self.k = np.concatenate([self.grid.matrix(lags[s]) for s in self.keys])
            self.counts = np.stack([lags[s].counts for s in self.keys]).astype(np.float64)
            self.edges = np.stack([lags[s].edges for s in self.keys])

    def log_s2(self, a: float) -> float:
        """``log sigma^2`` of the moment profile ``sigma^2 = m2 / E[U]``."""
        return math.log(self.h.m2) - 0.5 * a * a

    def heights(self, a: float) -> float:
        """Log-likelihood of the values' histogram."""
        x, w = _H_HEIGHT
        wg = self.grid.assign(self.log_s2(a) + a * x, w)[0]
        return float(np.log(_probs(self.kh @ wg)) @ self.h.counts)

    def _log_var(self, a: float, t: np.ndarray) -> np.ndarray:
        """``(len(t), nodes_s, nodes_d)`` log-variances of the increments' scale mixture."""
        rho = 1.0 - np.exp(t)
        c = a / _SQRT2
        dn, _ = _D_NODES
        xs, _ = _H_S
        with np.errstate(divide="ignore"):
            tt = np.log(2.0 * (np.cosh(c * dn)[None, :] - rho[:, None]))
        return self.log_s2(a) + tt[:, None, :] + (c * xs)[None, :, None]

    def weights(self, a_values: list[float], ts: list[np.ndarray]) -> np.ndarray:
        """``(rows, grid)`` scale-mixture weights of the increments for ``rho = 1 - e^t``.

        One block of rows per value of ``a`` (``ts[j]`` the ``t`` of ``a_values[j]``).
        """
        lv = np.concatenate([self._log_var(a, t) for a, t in zip(a_values, ts)])
        _, dw = _D_NODES
        _, ws = _H_S
        return self.grid.assign(lv, (ws[:, None] * dw[None, :])[None], rows=lv.shape[0])

    def _tau(self, a: float, t: np.ndarray) -> np.ndarray:
        """Standard deviation times sqrt 2 of the GSG increments, for each ``t``."""
        rho = 1.0 - np.exp(t)
        ew = np.maximum(2.0 * _e(1.0, a) - 2.0 * rho * _e(0.5, a) ** 2, 1e-300)
        return np.sqrt(math.exp(self.log_s2(a)) * ew) * _SQRT2

    def lags_ll(self, a_values: list[float], ts: list[np.ndarray], own: bool = False):
        """``(rows, lags)`` log-likelihoods and crossing fractions, rows as in :meth:`weights`.

        With ``own``, each ``ts[j]`` is ``(m, lags)``: column ``i`` holds values of ``t``
        for lag ``i`` only, and row ``(j, r)`` of the result holds lag ``i``'s values at
        ``ts[j][r, i]`` (each lag's histogram meets only its own weights).
        """
        n_l, n_e = self.edges.shape
        flat = [np.ravel(t) for t in ts]
        rows = sum(t.size for t in flat)
        cdf = (self.weights(a_values, flat) @ self.k.T).reshape(rows, n_l, n_e)
        if own:  # (the whole product: the same numbers as without ``own``)
            rows //= n_l
            diag = np.arange(n_l)
            cdf = cdf.reshape(rows, n_l, n_l, n_e)[:, diag, diag]
        p0 = _probs(cdf)
        q = np.zeros((rows, n_l))
        if math.isfinite(self.step):
            tau = np.concatenate([self._tau(a, t) for a, t in zip(a_values, flat)])
            tau = tau.reshape(rows, n_l if own else 1, 1)
            e = self.edges[None]
            p1 = _probs(0.5 * (erf((e - self.step) / tau) + erf((e + self.step) / tau)))
            q = _best_q(p0, p1, self.counts)
            p0 = (1.0 - q[..., None]) * p0 + q[..., None] * p1
        return np.einsum("jlb,lb->jl", np.log(p0), self.counts), q

    def profile(self, a_values) -> list[tuple[float, np.ndarray]]:
        """Per ``a``: the log-likelihood maximised over ``rho`` (and ``q``) of each lag, and
        each lag's ``t``, all values of ``a`` evaluated together.

        ``t = log(1 - rho)`` runs over :data:`_T_COARSE`; a parabola through the best
        three points, then through ``t +- 0.2`` around it, gives each lag's maximum.
        """
        a_values = [float(a) for a in a_values]
        totals = [self.heights(a) for a in a_values]
        n_l, n_t = len(self.keys), _T_COARSE.size
        if n_l == 0:
            return [(total, np.empty(0)) for total in totals]
        ll, _ = self.lags_ll(a_values, [_T_COARSE] * len(a_values))
        top = _T_COARSE[-1] - _T_FINE[-1]  # keep the fine points inside the grid
        fines = []  # (3, lags) per a
        for j in range(len(a_values)):
            block = ll[j * n_t : (j + 1) * n_t]
            first = np.array([_parabola(_T_COARSE, block[:, i])[0] for i in range(n_l)])
            fines.append(np.minimum(first, top)[None, :] + _T_FINE[:, None])
        llf, _ = self.lags_ll(a_values, fines, own=True)
        out = []
        for j, (total, fine) in enumerate(zip(totals, fines)):
            block = llf[3 * j : 3 * j + 3]
            best = np.empty(n_l)
            for i in range(n_l):
                best[i], ll_hat = _parabola(fine[:, i], block[:, i])
                total += ll_hat
            out.append((total, best))
        return out


def _parabola(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Maximum of ``y`` over a uniform grid ``x``, refined by a parabola through three points."""
    j = int(np.argmax(y))
    if j == 0 or j == y.size - 1:
        return float(x[j]), float(y[j])
    y0, y1, y2 = float(y[j - 1]), float(y[j]), float(y[j + 1])
    curv = y0 - 2.0 * y1 + y2
    if curv >= 0:
        return float(x[j]), y1
    off = float(np.clip(0.5 * (y0 - y2) / curv, -1.0, 1.0))
    return float(x[j] + off * (x[j + 1] - x[j])), y1 - 0.125 * (y0 - y2) ** 2 / curv


def _maximise(f: Callable[[float], float], grid: np.ndarray, f_grid=None) -> float:
    """The ``x`` maximising ``f`` on ``[grid[0], grid[-1]]``: the grid, then Brent's method.

    Brent's bounded search (to 0.02) runs between the neighbours of the best grid point;
    its result is kept only if it beats that point. ``f_grid`` (optional) evaluates ``f``
    on the whole grid at once.
    """
    ys = list(f_grid(grid)) if f_grid is not None else [f(float(x)) for x in grid]
    i = int(np.argmax(ys))
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
    res = minimize_scalar(lambda x: -f(x), bounds=(lo, hi), method="bounded",
                          options={"xatol": 0.02})  # fmt: skip
    return float(res.x) if -float(res.fun) > ys[i] else float(grid[i])


def _ml_fit(
    h: _Sample, lags: dict[int, _Sample], step_height: float
) -> tuple[float, dict[int, float], dict[int, float], float]:
    """``a``, ``rho`` and ``q`` by lag, and the log-likelihood, by maximum likelihood."""
    lik = _RegionLik(h, lags, step_height)
    seen: dict[float, tuple[float, np.ndarray]] = {}  # profiles by a

    def grid_profiles(grid: np.ndarray) -> list[float]:
        seen.update(zip((float(v) for v in grid), lik.profile(grid)))
        return [seen[float(v)][0] for v in grid]

    def profile(v: float) -> float:
        if float(v) not in seen:
            seen[float(v)] = lik.profile([v])[0]
        return seen[float(v)][0]

    a = _maximise(profile, _A_SEARCH, grid_profiles)
    total, best_t = seen[a] if a in seen else lik.profile([a])[0]
    rho, q = {}, {}
    if lik.keys:
        _, qs = lik.lags_ll([a], [best_t[None, :]], own=True)
        for i, s in enumerate(lik.keys):
            rho[s], q[s] = 1.0 - math.exp(best_t[i]), float(qs[0, i])
    return a, rho, q, total


# ----------------------------------------------------------------------------- both
def _degenerate(
    h: _Sample, lags: dict[int, _Sample], min_pixels: int, with_steps: bool
) -> str | None:
    """Why the values cannot be fitted (None when they can).

    Kurtosis below 3 in the values and at every lag rules the GSG out, unless step
    crossings are modelled (they can make a sample platykurtic).
    """
    if h.n < min_pixels:
        return f"{h.n} values < min_pixels ({min_pixels})"
    if not h.m2 > 0:
        return "zero variance"
    kurt = [h.kurtosis] + [s.kurtosis for s in lags.values()]
    if not with_steps and all(k < 3.0 for k in kurt if math.isfinite(k)):
        return "kurtosis below 3 (lighter tails than any GSG)"
    return None


def _usable_lags(lags: dict[int, _Sample], min_pixels: int, flags: list[str]):
    """The lags with enough pairs and a non-zero increment variance (flags the others)."""
    out = {}
    for s, smp in lags.items():
        if smp.n < min_pixels:
            flags.append(f"lag {s} px: {smp.n} same-region pairs < min_pixels ({min_pixels})")
        elif not smp.m2 > 0:
            flags.append(f"lag {s} px: zero increment variance, rho undefined")
        else:
            out[s] = smp
    return out


def _estimate(
    h: _Sample,
    lags: dict[int, _Sample],
    method: str,
    *,
    steps: bool,
    min_pixels: int,
    step_height: float | None = None,
) -> GSGParams:
    """GSG parameters of one region from its samples (NaN and a flag when impossible).

    With ``steps`` (maximum likelihood only), step crossings of height ``step_height``
    (default: the one seen in the region's increments at the smallest lag,
    :func:`_step_height`) are a third kind of pair; without a step height there is none.
    """
    mean = float(getattr(h, "mean", 0.0))
    p = GSGParams(math.nan, math.nan, mean, method=method, n=h.n, kurtosis=h.kurtosis)
    p.rho = {s: math.nan for s in lags}
    p.step_fraction = {s: 0.0 for s in lags}
    p.n_pairs = {s: smp.n for s, smp in lags.items()}
    if step_height is None:
        step_height = lags[min(lags)].step if lags else math.nan
    hstep = float(step_height) if steps and method == "ml" else math.nan
    why = _degenerate(h, lags, min_pixels, math.isfinite(hstep))
    if why is not None:
        p.flags.append(f"GSG undefined: {why}")
        return p
    use = _usable_lags(lags, min_pixels, p.flags)
    if method == "moments":
        a, rho = _moments_fit(h, use)
        q: dict[int, float] = {}
        for s, r in rho.items():
            if not -1.0 <= r <= 1.0:
                p.flags.append(f"lag {s} px: moment rho {r:.3g} outside [-1, 1], clipped")
                rho[s] = float(np.clip(r, -1.0, 1.0))
    else:
        a, rho, q, p.loglik = _ml_fit(h, use, hstep)
        if math.isfinite(hstep) and any(v > 0 for v in q.values()):
            p.step_height = hstep
    p.alpha = 2.0 - a
    p.sigma = math.sqrt(h.m2 / _e(1.0, a))
    p.rho.update(rho)
    p.step_fraction.update(q)
    if a >= _A_MAX - 1e-3:
        p.flags.append(f"alpha at the lower bound {ALPHA_MIN}")
    return p
