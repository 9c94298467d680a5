"""Drift measured on what does not move: the fine texture of the terraces.

Between two frames of a dissolving surface, steps retreat and pits widen by several
pixels; a correlation of the whole frame follows that motion (the retreat of a vicinal
staircase looks exactly like drift across it). What stays in place is the fine texture
*on* the terraces and pit floors (roughness, defects): :func:`_texture` isolates it
(the frame less its 5 x 5 running median, which follows straight step edges, lightly
smoothed), and weights out the step edges (a large slope of the median-filtered frame,
grown by 2 pixels), whatever the median leaves of corners and thin slivers (Tukey
weights beyond 3 robust standard deviations) and NaN.

Two frames' textures are compared by a *masked, normalised* correlation: the weighted
correlation divided by the correlation of the weights themselves, so that the moving
masks (they follow the steps) cannot pull the peak. :func:`_z_surface` evaluates it on a
small grid of offsets around a given shift (the shift enters through a phase ramp, so
the grid is centred on it to a fraction of a pixel) as robust z-scores;
:func:`_refine` finds the subpixel peak, re-centring until the peak sits on the grid's
middle (a parabola through a peak off the grid points is biased toward them).
:func:`_bias_posterior` pools weak evidence over successive frame pairs: the offset
between the whole-frame correlation and the texture's (the motion of the steps) changes
slowly from pair to pair, with occasional jumps.

Coordinates: shifts in pixels, ``scipy.ndimage.shift`` convention (see
:mod:`.drift`); the spectra are ``numpy.fft.rfft2`` of float64 images, kept as
complex64 to halve their memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_MEDIAN_PX = 5  # running median that follows straight step edges
_SMOOTH_PX = 0.7  # Gaussian smoothing of the texture (matched to roughness of ~1 px)
_EDGE_FACTOR = 2.0  # an edge: slope of the median-filtered frame above this x its median
_EDGE_GROW_PX = 2  # edges are grown by this many pixels
_TUKEY = 3.0  # texture beyond this many robust sigma gets no weight
_MIN_OVERLAP = 0.3  # offsets whose weight overlap is below this fraction are not scored
_TEX_WEAK = 5.0  # below this the texture is not found: the whole-frame shift is kept
_TEX_STRONG = 6.5  # a pair's own texture peak this strong is used as it is


@dataclass
class _TextureSpectra:
    """rfft2 of a frame's weighted texture and of its weights (complex64)."""

    tex: np.ndarray
    wgt: np.ndarray

    @property
    def empty(self) -> bool:
        """True when no pixel carries texture (no data, or a featureless frame)."""
        return not bool(np.abs(self.wgt[0, 0]) > 0)


def _texture(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture (nm) and weights in [0, 1] of one frame (see the module docstring)."""
    z = np.asarray(frame, np.float64)
    finite = np.isfinite(z)
    if finite.sum() < 16:
        return np.zeros(z.shape), np.zeros(z.shape)
    z = np.where(finite, z, np.median(z[finite]))
    # separable running median (rows, then columns): it follows straight step edges
    # like a 5 x 5 median and costs a fifth of it
    med = ndimage.median_filter(z, size=_MEDIAN_PX, mode="nearest")
    tex = ndimage.gaussian_filter(z - med, _SMOOTH_PX)
    slope = np.hypot(*np.gradient(ndimage.gaussian_filter(med, 1.0)))
    keep = ~ndimage.binary_dilation(~finite, iterations=_MEDIAN_PX)
    slope_scale = float(np.median(slope[keep])) if keep.any() else 0.0
    if slope_scale > 0:
        edge = ndimage.binary_dilation(slope > _EDGE_FACTOR * slope_scale, iterations=_EDGE_GROW_PX)
        keep &= ~edge
    if not keep.any():
        return np.zeros(z.shape), np.zeros(z.shape)
    sigma = 1.4826 * float(np.median(np.abs(tex[keep])))
    if not sigma > 0:
        return np.zeros(z.shape), np.zeros(z.shape)
    u = tex / (_TUKEY * sigma)
    weight = np.where(keep & (np.abs(u) < 1), (1 - u**2) ** 2, 0.0)
    rows, cols = z.shape
    if min(rows, cols) > 2:
        weight *= np.outer(np.hanning(rows), np.hanning(cols))
    return tex, weight


def _texture_spectra(frame: np.ndarray) -> _TextureSpectra:
    """The spectra :func:`_z_surface` correlates, for one frame."""
    tex, weight = _texture(frame)
    return _TextureSpectra(
        np.fft.rfft2(tex * weight).astype(np.complex64),
        np.fft.rfft2(weight).astype(np.complex64),
    )


def _freqs(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column frequencies (cycles per pixel) of an rfft2 spectrum."""
    return np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :]


def _z_surface(
    a: _TextureSpectra,
    b: _TextureSpectra,
    centre,
    radius: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """Robust z-scores of the normalised texture correlation around ``centre``.

    Returns a ``(2 radius + 1, 2 radius + 1)`` grid whose element ``[radius + i,
    radius + j]`` scores the shift ``centre + (i, j)`` applied to frame ``b`` to align
    it with frame ``a``; 0 where the weights overlap too little (or nothing to score).
    """
    size = 2 * radius + 1
    if a.empty or b.empty:
        return np.zeros((size, size))
    fy, fx = _freqs(shape)
    ramp = np.exp(2j * np.pi * (fy * centre[0] + fx * centre[1]))
    num = np.fft.irfft2(a.tex * np.conj(b.tex) * ramp, s=shape)
    den = np.fft.irfft2(a.wgt * np.conj(b.wgt) * ramp, s=shape)
    idx_r = np.r_[-radius : radius + 1] % shape[0]
    idx_c = np.r_[-radius : radius + 1] % shape[1]
    num = num[np.ix_(idx_r, idx_c)]
    den = den[np.ix_(idx_r, idx_c)]
    top = float(den.max())
    ok = den > _MIN_OVERLAP * top if top > 0 else np.zeros(den.shape, bool)
    if ok.sum() < 9:
        return np.zeros((size, size))
    score = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    vals = score[ok]
    centre_v = float(np.median(vals))
    spread = 1.4826 * float(np.median(np.abs(vals - centre_v)))
    if not spread > 0:
        return np.zeros((size, size))
    return np.where(ok, (score - centre_v) / spread, 0.0)


def _parabolic(grid: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """Subpixel offset (rows, cols) of a grid maximum by a parabola through 3 points."""
    off = np.zeros(2)
    for ax in range(2):
        if not 0 < peak[ax] < grid.shape[ax] - 1:
            continue
        lo, hi = list(peak), list(peak)
        lo[ax] -= 1
        hi[ax] += 1
        ym, y0, yp = grid[tuple(lo)], grid[peak], grid[tuple(hi)]
        den = ym - 2 * y0 + yp
        if den < 0:
            off[ax] = float(np.clip(0.5 * (ym - yp) / den, -0.5, 0.5))
    return off


_REFINE_RADIUS = 8  # grid of the refinement (its z-scores need some background)


def _refine(a: _TextureSpectra, b: _TextureSpectra, start, shape, iters: int = 3):
    """Subpixel texture peak near ``start`` (within 1 px); returns ``(shift, z)``.

    The grid is re-centred on each estimate until it moves by less than 0.02 px.
    """
    shift = np.asarray(start, float).copy()
    z_peak = 0.0
    r = _REFINE_RADIUS
    for _ in range(iters):
        grid = _z_surface(a, b, shift, r, shape)
        inner = grid[r - 1 : r + 2, r - 1 : r + 2]
        k = np.unravel_index(int(np.argmax(inner)), inner.shape)
        peak = (int(k[0]) + r - 1, int(k[1]) + r - 1)
        step = np.array([peak[0] - r, peak[1] - r], float) + _parabolic(grid, peak)
        shift = shift + step
        z_peak = float(grid[peak])
        if np.abs(step).max() < 0.02:
            break
    return shift, z_peak


def _bias_posterior(
    grids: list[np.ndarray],
    *,
    weight: float = 1.5,
    sigma_px: float = 1.0,
    jump: float = 0.1,
    prior_px: float = 8.0,
) -> list[np.ndarray]:
    """Posterior of the texture offset of each successive pair (forward-backward).

    ``grids`` are :func:`_z_surface` grids (same size) centred on each pair's
    whole-frame shift; the offset between the two estimates changes from one pair to the
    next by a Gaussian step of ``sigma_px`` or, with probability ``jump``, anywhere; a
    Gaussian prior of ``prior_px`` keeps it near 0 where the texture says nothing. The
    likelihood of an offset is ``exp(weight * z)``. The prior enters every pair, so it
    is kept wide (8 px): at 4 px, four successive pairs whose weak peaks (z 3.5-4.8)
    agreed on an offset of 9 px lost to it, and the shifts followed the retreating steps
    (a development 256 px movie, 20 px off after 8 frames).
    """
    n = len(grids)
    if n == 0:
        return []
    r = grids[0].shape[0] // 2
    g = np.arange(-r, r + 1, dtype=float)
    prior = -0.5 * (g[:, None] ** 2 + g[None, :] ** 2) / prior_px**2
    lik = []
    for z in grids:
        ll = weight * z + prior
        lik.append(np.exp(ll - ll.max()))

    def step(p):
        return (1 - jump) * ndimage.gaussian_filter(p, sigma_px, mode="constant") + jump / p.size

    fwd, prev = [], None
    for k in range(n):
        cur = lik[k] * (1.0 if prev is None else step(prev))
        cur /= cur.sum()
        fwd.append(cur)
        prev = cur
    post: list[np.ndarray] = [np.empty(0)] * n
    nxt = None
    for k in range(n - 1, -1, -1):
        back = np.ones_like(lik[k]) if nxt is None else step(nxt)
        p = fwd[k] * back
        post[k] = p / p.sum()
        nxt = back * lik[k]
        nxt /= nxt.sum()
    return post
