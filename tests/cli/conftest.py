"""Fixtures of the ``calcite-afm`` command-line tests: small input files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_calcite_afm.io import write_tiff

STEP = 0.31  # nm, calcite monolayer step


@pytest.fixture
def small_stack(tmp_path) -> Path:
    """A 3-frame synthetic movie of 64 x 64 pixels (11.7 nm) as an ImageJ TIFF."""
    from napari_calcite_afm.synthetic import make_series

    s = make_series(3, 64, seed=101)
    path = tmp_path / "small.tif"
    write_tiff(path, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    return path


def _pit_covered_frame(seed=0, shape=(128, 160), terrace_cols=32, depth=10.0):
    """A frame almost covered by one coalesced pit: a flat floor ``depth`` nm below the
    terrace over most of it, walls, and the terrace along the left columns (every scan
    line crosses both); tilt and noise (the generator of the levelling tests).

    Returns (raw, truth) with truth the heights relative to the terrace (nm)."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    truth = np.full(shape, -depth)
    wall = 12  # pixels from the terrace edge down to the floor
    truth = np.where(xx < terrace_cols, 0.0, truth)
    slope = (xx >= terrace_cols) & (xx < terrace_cols + wall)
    truth[slope] = -depth * (xx[slope] - terrace_cols + 1) / wall
    truth = np.round(truth / STEP) * STEP  # monolayer steps
    raw = truth + 0.02 * xx - 0.01 * yy + 3.0 + rng.normal(0, 0.03, shape)
    return raw, truth


@pytest.fixture
def pit_covered_frame():
    """``pit_covered_frame(seed)`` -> (raw, truth): a frame mostly covered by one pit."""
    return _pit_covered_frame
