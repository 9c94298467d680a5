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
then 0.2, each time with a parabola through the best three points; ``a`` over 6 points,
then Brent's bounded search (to 0.02); ``q`` maximises the (concave) likelihood of the
mixture weight by safeguarded Newton steps. ``alpha`` is kept in [0.2, 2].

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
        u = (log_var - self.lo) * (1.0 / _GRID_STEP)  # finite: 1 - rho >= e^-20
        np.clip(u, 0.0, self.size - 1.000001, out=u)
        i0 = u.astype(np.intp)
        f = u - i0
        if rows > 1:
            i0 = i0 + (np.arange(rows) * self.size).reshape((rows,) + (1,) * (u.ndim - 1))
        i0, f, w = i0.ravel(), f.ravel(), np.broadcast_to(weights, u.shape).ravel()
        n = rows * self.size
        out = np.bincount(i0, w * (1.0 - f), minlength=n) + np.bincount(i0 + 1, w * f, minlength=n)
        return out[:n].reshape(rows, self.size)

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
    concave in ``q`` on ``[0, 0.95]``: the ends where its slope says so, otherwise
    Newton steps from 0 inside a bracket of the root of the slope (bisection when a
    step leaves it), to 1e-7.
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
    if act.size:
        pa, da, ca = p0[act], diff[act], cnt[act]
        lo, hi = np.zeros(act.size), np.full(act.size, _Q_MAX)
        qa = np.clip(g0[act] / h0[act], 1e-9, _Q_MAX - 1e-9)  # one Newton step from 0
        for _ in range(40):
            g, hess = _q_slope(pa, da, ca, qa)
            lo = np.where(g > 0, qa, lo)
            hi = np.where(g > 0, hi, qa)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = qa + g / hess
            new = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))
            done = np.abs(new - qa).max() < 1e-7
            qa = new
            if done:
                break
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

    def weights(self, a: float, t: np.ndarray) -> np.ndarray:
        """``(len(t), grid)`` scale-mixture weights of the increments for ``rho = 1 - e^t``."""
        rho = 1.0 - np.exp(t)
        c = a / _SQRT2
        dn, dw = _D_NODES
        xs, ws = _H_S
        with np.errstate(divide="ignore"):
            tt = np.log(2.0 * (np.cosh(c * dn)[None, :] - rho[:, None]))
        lv = self.log_s2(a) + tt[:, None, :] + (c * xs)[None, :, None]
        return self.grid.assign(lv, (ws[:, None] * dw[None, :])[None], rows=t.size)

    def lags_ll(self, a: float, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, lags)`` log-likelihoods and crossing fractions for each ``t``."""
        n_l, n_e = self.edges.shape
        p0 = _probs((self.weights(a, t) @ self.k.T).reshape(t.size, n_l, n_e))
        q = np.zeros((t.size, n_l))
        if math.isfinite(self.step):
            rho = 1.0 - np.exp(t)
            ew = np.maximum(2.0 * _e(1.0, a) - 2.0 * rho * _e(0.5, a) ** 2, 1e-300)
            tau = (np.sqrt(math.exp(self.log_s2(a)) * ew) * _SQRT2)[:, None, None]
            e = self.edges[None]
            p1 = _probs(0.5 * (erf((e - self.step) / tau) + erf((e + self.step) / tau)))
            q = _best_q(p0, p1, self.counts)
            p0 = (1.0 - q[..., None]) * p0 + q[..., None] * p1
        return np.einsum("jlb,lb->jl", np.log(p0), self.counts), q

    def profile(self, a: float) -> tuple[float, np.ndarray]:
        """The log-likelihood maximised over ``rho`` (and ``q``) of each lag; each lag's ``t``.

        ``t = log(1 - rho)`` runs over :data:`_T_COARSE`; a parabola through the best
        three points, then through ``t +- 0.2`` around it, gives each lag's maximum.
        """
        total = self.heights(a)
        n_l = len(self.keys)
        if n_l == 0:
            return total, np.empty(0)
        ll, _ = self.lags_ll(a, _T_COARSE)
        first = [_parabola(_T_COARSE, ll[:, i])[0] for i in range(n_l)]
        top = _T_COARSE[-1] - _T_FINE[-1]  # keep the fine points inside the grid
        fine = np.concatenate([min(f, top) + _T_FINE for f in first])
        llf, _ = self.lags_ll(a, fine)
        best = np.empty(n_l)
        for i in range(n_l):
            sl = slice(3 * i, 3 * i + 3)
            best[i], ll_hat = _parabola(fine[sl], llf[sl, i])
            total += ll_hat
        return total, best


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


def _maximise(f: Callable[[float], float], grid: np.ndarray) -> float:
    """The ``x`` maximising ``f`` on ``[grid[0], grid[-1]]``: the grid, then Brent's method.

    Brent's bounded search (to 0.02) runs between the neighbours of the best grid point;
    its result is kept only if it beats that point.
    """
    ys = [f(float(x)) for x in grid]
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
    a = _maximise(lambda v: lik.profile(v)[0], _A_SEARCH)
    total, best_t = lik.profile(a)
    rho, q = {}, {}
    if lik.keys:
        _, qs = lik.lags_ll(a, best_t)
        for i, s in enumerate(lik.keys):
            rho[s], q[s] = 1.0 - math.exp(best_t[i]), float(qs[i, i])
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
