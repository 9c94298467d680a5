"""Random generators, smooth random fields and resampling of the padded canvas.

Every random property of a synthetic series is drawn from generators made by
:func:`_spawn`, so a seed gives the same series bit for bit. The surface model keeps its
fields (step waviness, pit-edge noise, roughness) on a *canvas*: the frame plus ``pad``
pixels on every side, in the frame of reference of frame 0; :func:`_sample_shifted`
reads a canvas on a frame displaced by a sub-pixel drift.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` itself if it is a generator, else a new generator seeded with it."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _spawn(seed: int | None, n: int) -> list[np.random.Generator]:
    """Independent generators for the parts of a series (deterministic for a seed)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One number drawn log-uniformly in ``[lo, hi]``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation (float64).

    Wide kernels are filtered on a coarser grid and interpolated back, which is much
    faster and indistinguishable for a smooth field.
    """
    sigma_px = max(float(sigma_px), 0.3)
    factor = int(max(1, sigma_px // 3))
    if factor == 1:
        noise = rng.standard_normal(shape)
        out = ndimage.gaussian_filter(noise, sigma_px, mode="wrap")
    else:
        small = (shape[0] // factor + 3, shape[1] // factor + 3)
        noise = rng.standard_normal(small)
        low = ndimage.gaussian_filter(noise, sigma_px / factor, mode="wrap")
        rows = np.arange(shape[0]) / factor
        cols = np.arange(shape[1]) / factor
        out = _bilinear_grid(low, rows, cols)
    std = out.std()
    return out / std if std > 0 else out


def _bilinear_grid(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``arr`` on the grid ``rows x cols`` (separable)."""
    r0 = np.clip(np.floor(rows).astype(np.intp), 0, arr.shape[0] - 2)
    c0 = np.clip(np.floor(cols).astype(np.intp), 0, arr.shape[1] - 2)
    wr = (rows - r0)[:, None]
    wc = (cols - c0)[None, :]
    top = arr[r0][:, c0] * (1 - wc) + arr[r0][:, c0 + 1] * wc
    bot = arr[r0 + 1][:, c0] * (1 - wc) + arr[r0 + 1][:, c0 + 1] * wc
    return top * (1 - wr) + bot * wr


def _sample_shifted(canvas: np.ndarray, pad: int, shift: tuple[float, float], size: int):
    """Values of a padded reference-frame field on a frame displaced by ``shift``.

    ``canvas[i, j]`` is the field at reference pixel ``(i - pad, j - pad)``; the result
    ``out[r, c]`` is the field at reference position ``(r - shift[0], c - shift[1])``
    (bilinear for sub-pixel shifts).
    """
    br = pad - shift[0]
    bc = pad - shift[1]
    i0 = math.floor(br)
    j0 = math.floor(bc)
    wr = br - i0
    wc = bc - j0
    a = canvas[i0 : i0 + size, j0 : j0 + size]
    if wr == 0 and wc == 0:
        return a
    b = canvas[i0 : i0 + size, j0 + 1 : j0 + 1 + size]
    c = canvas[i0 + 1 : i0 + 1 + size, j0 : j0 + size]
    d = canvas[i0 + 1 : i0 + 1 + size, j0 + 1 : j0 + 1 + size]
    return (a * (1 - wc) + b * wc) * (1 - wr) + (c * (1 - wc) + d * wc) * wr


def _map_seeds(worker, seeds, jobs: int, size: int, *rest) -> list:
    """``worker(size, seed, *rest)`` for each seed, in ``jobs`` processes when more than
    one (each frame depends on its seed alone, so the results do not depend on ``jobs``)."""
    seeds = list(seeds)
    if jobs > 1 and len(seeds) > 1:
        from concurrent.futures import ProcessPoolExecutor

        columns = [[size] * len(seeds), seeds, *([r] * len(seeds) for r in rest)]
        with ProcessPoolExecutor(int(jobs)) as pool:
            return list(pool.map(worker, *columns, chunksize=4))
    return [worker(size, s, *rest) for s in seeds]


def _stack_frames(out: list, size: int, index: int, dtype) -> np.ndarray:
    """Item ``index`` of every worker result, stacked (an empty stack for no frames)."""
    if not out:
        return np.zeros((0, size, size), dtype)
    return np.stack([o[index] for o in out])
