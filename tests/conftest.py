"""Fixtures shared by several test packages."""

from __future__ import annotations

import numpy as np
import pytest

STEP = 0.31  # nm, one calcite monolayer step


def _pit_covered_frame(seed=0, shape=(128, 160), terrace_cols=32, depth=10.0):
    """A frame almost covered by one coalesced pit: a flat floor ``depth`` nm below the
    terrace over most of it, walls, and the terrace along the left columns (every scan
    line crosses both); tilt and noise.

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


@pytest.fixture(scope="session")
def pit_covered_frame():
    """``pit_covered_frame(seed)`` -> (raw, truth): a frame mostly covered by one pit
    (the hard case of the levelling, used by the level and CLI tests)."""
    return _pit_covered_frame
