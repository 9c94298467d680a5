"""Tests of napari_calcite_afm.kinetics.registration: drift.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.kinetics import (
    DRIFT_COLUMNS,
    KineticsError,
    read_drift_csv,
    register_stack,
    write_drift_csv,
)


def _drifting(seed=0, shifts=((0, 0), (2.5, -1.5), (4.0, -3.25)), size=96):
    rng = np.random.default_rng(seed)
    big = ndimage.gaussian_filter(rng.normal(size=(size + 40, size + 40)), 3)
    big += 0.1 * ndimage.gaussian_filter(rng.normal(size=big.shape), 0.8)
    out = [
        ndimage.shift(big, -np.asarray(s, float), order=3, mode="nearest")[20:-20, 20:-20]
        for s in shifts
    ]
    return np.stack(out), np.asarray(shifts, float)


def test_drift_csv_columns_values_and_sign(tmp_path):
    stack, true = _drifting()
    reg = register_stack(stack)
    out = write_drift_csv(tmp_path / "drift.csv", reg)
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == DRIFT_COLUMNS == ("frame", "shift_y_px", "shift_x_px", "confidence")
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    shifts, conf = read_drift_csv(out)
    np.testing.assert_allclose(shifts, reg.shifts, atol=5e-4)
    np.testing.assert_allclose(conf, reg.confidence, atol=5e-4)
    assert np.abs(shifts - true).max() < 0.3
    # the sign: applying the shift to frame t with scipy aligns it with frame 0
    inner = (slice(10, -10), slice(10, -10))
    for t in (1, 2):
        moved = ndimage.shift(stack[t], shifts[t], order=1)
        assert (
            np.abs(moved - stack[0])[inner].mean() < 0.2 * np.abs(stack[t] - stack[0])[inner].mean()
        )


def test_read_drift_csv_names_the_file_on_bad_content(tmp_path):
    bad = tmp_path / "drift.csv"
    bad.write_text("frame,dy,dx\n0,0,0\n")
    with pytest.raises(KineticsError, match=r"drift\.csv: a drift table needs the columns"):
        read_drift_csv(bad)
    bad.write_text("frame,shift_y_px,shift_x_px,confidence\n0,a,0,1\n")
    with pytest.raises(KineticsError, match="not numbers"):
        read_drift_csv(bad)
    with pytest.raises(KineticsError, match="cannot read"):
        read_drift_csv(tmp_path / "missing.csv")


def test_write_drift_csv_is_atomic(tmp_path):
    stack, _ = _drifting(seed=1)
    reg = register_stack(stack)
    out = write_drift_csv(tmp_path / "sub" / "drift.csv", reg)
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["drift.csv"]
