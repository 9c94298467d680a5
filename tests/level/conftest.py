"""Synthetic calcite frames with known artifacts, for the tests of napari_calcite_afm.level.

A private generator (the project's ``synthetic`` package is tested on its own): terraces
with meandering monolayer steps, terraced rhombic multilayer pits with a pointed bottom
offset toward one corner, monolayer pits, smooth roughness; then the measurement
artifacts on top, each known exactly. Heights in nm, coordinates in pixels.

The tests get the generators through the :func:`synth` fixture (``synth.frame(seed)``,
``synth.rms_error(out, truth)``, ``synth.STEP`` ...): with ``--import-mode=importlib``
a test module cannot import this file.

The real instrument files live in ``shared/data/afm-real`` beside the repository (or
where ``CALCITE_AFM_REAL_DATA`` points): :func:`real_dir` skips the tests that need
them where they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

STEP = 0.31  # nm, calcite monolayer step


def _rhomb(shape, centre, size, angle):
    """Coordinates (s1, s2) of a rhomb with 78 / 102 degree corners (|s| < 1 inside)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    half = np.deg2rad(78.0) / 2
    e = np.array(
        [[np.cos(angle - half), np.cos(angle + half)], [np.sin(angle - half), np.sin(angle + half)]]
    )
    m = np.linalg.inv(e) / size
    p = np.stack([xx - centre[1], yy - centre[0]], -1)
    s = p @ m.T
    return s[..., 0], s[..., 1]


def _asym(s, a):
    return np.where(s >= a, (s - a) / (1 - a), (a - s) / (1 + a))


def pit_depth_map(shape, centre, size, angle, depth, apex=(-0.2, -0.2)):
    """Terraced inverted pyramid (nm, >= 0 inside the pit), and its footprint."""
    s1, s2 = _rhomb(shape, centre, size, angle)
    d = np.maximum(_asym(s1, apex[0]), _asym(s2, apex[1]))
    inside = d < 1
    return np.where(inside, STEP * np.ceil((1 - d) * depth / STEP), 0.0), inside


def calcite_surface(rng, shape=(256, 256), n_deep=None):
    """Clean calcite-like frame (nm) and the mask of its multilayer pits."""
    rows, cols = shape
    scale = max(shape) / 256
    yy, xx = np.mgrid[0:rows, 0:cols].astype(float)
    theta = rng.uniform(0, np.pi)
    width = rng.uniform(30, 70) * scale
    wiggle = ndimage.gaussian_filter(rng.normal(size=shape), 12) * 3 * width
    z = STEP * np.floor((xx * np.cos(theta) + yy * np.sin(theta) + wiggle) / width)
    pits = np.zeros(shape, bool)
    for _ in range(rng.integers(1, 4) if n_deep is None else n_deep):
        depth, inside = pit_depth_map(
            shape,
            (rng.uniform(0.15, 0.85) * rows, rng.uniform(0.15, 0.85) * cols),
            rng.uniform(0.06, 0.16) * min(shape),
            rng.uniform(0, np.pi),
            rng.uniform(5, 30),
            tuple(rng.uniform(-0.4, 0.0, 2)),
        )
        z -= depth
        pits |= inside
    for _ in range(rng.integers(5, 15)):
        s1, s2 = _rhomb(
            shape, (rng.uniform(0, rows), rng.uniform(0, cols)), rng.uniform(3, 12) * scale, 0.3
        )
        z -= STEP * ((np.abs(s1) < 1) & (np.abs(s2) < 1))
    rough = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    z += rough / rough.std() * rng.uniform(0.05, 0.1)
    return z, pits


def add_scars(rng, z, n=8):
    """Bright and dark scars, 1-3 rows thick, 20-100 px long (in place); their mask."""
    rows, cols = z.shape
    mask = np.zeros(z.shape, bool)
    for _ in range(n):
        r, w, length = rng.integers(2, rows - 6), rng.integers(1, 4), rng.integers(20, 101)
        c = rng.integers(0, cols - length)
        z[r : r + w, c : c + length] += rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)
        mask[r : r + w, c : c + length] = True
    return mask


def add_artifacts(rng, z, *, tilt=20.0, bow=3.0, scars=8, noise=0.03, nan_rows=0):
    """Raw frame: clean + tilt + bow + scan-line offsets + scars + noise (+ NaN rows)."""
    rows, cols = z.shape
    y = np.linspace(-1, 1, rows)[:, None]
    x = np.linspace(-1, 1, cols)[None, :]
    phi = rng.uniform(0, 2 * np.pi)
    raw = z + tilt / 2 * (np.cos(phi) * x + np.sin(phi) * y)
    a, b, c = rng.uniform(-1, 1, 3)
    raw = raw + bow * (a * x**2 + b * y**2 + 0.5 * c * x * y)
    jumps = np.where(rng.random(rows) < 8 / rows, rng.choice([-1, 1], rows), 0)
    line = (
        np.cumsum(rng.normal(0, 0.04, rows))  # random walk
        + np.cumsum(jumps * rng.uniform(0.3, 1.0, rows))  # jumps
        + rng.normal(0, 0.1, rows)  # jitter
    )
    raw = raw + line[:, None]
    smask = add_scars(rng, raw, scars)
    raw = raw + rng.normal(0, noise, z.shape)
    if nan_rows:
        raw[rng.choice(rows, nan_rows, replace=False)] = np.nan
    return raw, smask


def rms_error(cleaned, truth):
    """RMS (nm) of cleaned - truth after removing a best-fit plane (and the mean)."""
    d = np.asarray(cleaned, float) - truth
    ok = np.isfinite(d)
    yy, xx = np.nonzero(ok)
    a = np.stack([np.ones(yy.size), xx, yy], 1)
    r = d[ok] - a @ np.linalg.lstsq(a, d[ok], rcond=None)[0]
    return float(np.sqrt(np.mean(r**2)))


def frame(seed, shape=(256, 256), **kw):
    """(clean, raw, scar mask, pit mask) of one frame; ``kw`` go to :func:`add_artifacts`."""
    rng = np.random.default_rng(seed)
    z, pits = calcite_surface(rng, shape)
    raw, smask = add_artifacts(rng, z, **kw)
    return z, raw, smask, pits


@pytest.fixture(scope="session")
def synth(pit_covered_frame) -> SimpleNamespace:
    """The generators above, as attributes (``synth.calcite_surface(rng, shape)`` ...)."""
    return SimpleNamespace(
        STEP=STEP,
        pit_depth_map=pit_depth_map,
        calcite_surface=calcite_surface,
        add_scars=add_scars,
        add_artifacts=add_artifacts,
        rms_error=rms_error,
        frame=frame,
        pit_covered_frame=pit_covered_frame,
    )


def _find_real_data() -> Path | None:
    here = Path(__file__).resolve().parents[3] / "shared" / "data" / "afm-real"
    if here.is_dir():
        return here
    env = os.environ.get("CALCITE_AFM_REAL_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    return None


@pytest.fixture
def real_dir() -> Path:
    """The folder of real instrument files (the test is skipped where it is absent)."""
    found = _find_real_data()
    if found is None:
        pytest.skip("shared/data/afm-real not available")
    return found
