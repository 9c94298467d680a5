"""Tests of napari_calcite_afm.synthetic.generators: make_series, make_frame, make_frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.synthetic import (
    STEP_HEIGHT_NM,
    add_artifacts,
    make_frame,
    make_frames,
    make_series,
)

# 128 pixels of 40 nm: a 5 µm frame, the physics of a full frame at a fraction of the cost
BIG_PX = dict(pixel_size_nm=40.0)


def test_shapes_and_dtypes(series):
    n, size = 6, 128
    for name in ("raw", "clean"):
        arr = getattr(series, name)
        assert arr.shape == (n, size, size) and arr.dtype == np.float32
        assert np.isfinite(arr).all()
    for name in ("labels", "labels_raw"):
        arr = getattr(series, name)
        assert arr.shape == (n, size, size) and arr.dtype == np.uint8
    assert series.drift_px.shape == (n, 2)
    assert series.pixel_size_nm == 40.0
    assert series.n_frames == n
    json.dumps(series.params)  # JSON-friendly
    assert series.params["seed"] == 11 and "drawn" in series.params


def test_frame_times(series):
    t = series.frame_times_s
    assert t.shape == (6,)
    assert np.allclose(np.diff(t), series.frame_interval_s)
    assert t[0] == 0.0 and series.frame_interval_s == 300.0


def test_deterministic_and_seed_dependent():
    a = make_series(3, 64, seed=3)
    b = make_series(3, 64, seed=3)
    c = make_series(3, 64, seed=4)
    for name in ("raw", "clean", "labels", "labels_raw", "drift_px"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.params == b.params
    assert not np.array_equal(a.clean, c.clean)
    assert not np.array_equal(a.raw, c.raw)


def test_seeds_give_diverse_surfaces():
    drawn = [make_series(1, 32, seed=s).params["drawn"] for s in range(6)]
    for key in ("orientation_deg", "step_density_per_um", "monolayer_density_per_um2"):
        values = [d[key] for d in drawn]
        assert np.ptp(values) > 0.2 * np.mean(values), key
    depths = [make_frame(96, seed=s, **BIG_PX)[1].min() for s in range(4)]
    assert np.ptp(depths) > 1.0


def test_drift_pairs_raw_and_labels_raw():
    s = make_series(4, 96, seed=2, artifacts=False, drift_px_per_frame=3.0, **BIG_PX)
    assert np.array_equal(s.labels_raw[0], s.labels[0])
    assert np.array_equal(s.raw[0], s.clean[0])
    for k in range(1, 4):
        d = s.drift_px[k]
        assert np.abs(d).max() > 0.5
        # undo the drift on the clean labels (integer part): they match labels_raw
        moved = ndimage.shift(s.labels[k], np.round(d), order=0, mode="nearest")
        m = 8 + int(np.abs(d).max())
        inner = (slice(m, -m), slice(m, -m))
        assert np.mean(moved[inner] == s.labels_raw[k][inner]) > 0.95
        # and the raw surface is the clean one moved by drift_px
        shifted = ndimage.shift(s.clean[k].astype(np.float64), d, order=1, mode="nearest")
        err = np.abs(shifted - s.raw[k])[inner]
        assert np.median(err) < 0.05


def test_no_drift_no_artifacts_gives_clean():
    s = make_series(2, 48, seed=1, artifacts=False, drift=False)
    assert np.array_equal(s.raw, s.clean)
    assert np.array_equal(s.labels_raw, s.labels)
    assert not s.drift_px.any()


def test_make_frame():
    raw, clean, labels = make_frame(96, seed=4, time_s=900.0, **BIG_PX)
    assert raw.shape == clean.shape == labels.shape == (96, 96)
    assert raw.dtype == clean.dtype == np.float32 and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {1, 2, 3}
    assert not np.array_equal(raw, clean)
    r2, c2, l2 = make_frame(96, seed=4, time_s=900.0, **BIG_PX)
    assert np.array_equal(r2, raw) and np.array_equal(c2, clean) and np.array_equal(l2, labels)
    # another seed, another surface
    other = make_frame(96, seed=5, **BIG_PX)[1]
    assert not np.array_equal(other, clean)
    _, flat, _ = make_frame(64, seed=1, artifacts=False, roughness=0.0)
    k = flat / STEP_HEIGHT_NM
    assert np.allclose(k, np.round(k), atol=1e-3)


def test_make_frame_ignores_drift_options():
    a = make_frame(48, seed=6)
    b = make_frame(48, seed=6, drift=True, drift_px_per_frame=4.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_stop_and_progress():
    seen = []
    s = make_series(4, 32, seed=0, progress=seen.append, stop=lambda: len(seen) >= 2)
    assert s.n_frames == 2 and s.raw.shape[0] == 2
    assert [d["frame"] for d in seen] == [0, 1]
    assert s.drift_px.shape == (2, 2) and s.params["drawn"]["n_frames_generated"] == 2


def test_bad_arguments():
    with pytest.raises(CalciteAFMError):
        make_series(0, 64)
    with pytest.raises(CalciteAFMError):
        make_series(2, 64, pixel_size_nm=-1.0)
    with pytest.raises(CalciteAFMError):
        make_frame(64, bogus=1)
    with pytest.raises(CalciteAFMError):
        add_artifacts(np.zeros((2, 3, 4)), 0)
    with pytest.raises(TypeError):  # an unknown keyword of make_series, as before
        make_series(2, 64, bogus=1)


def test_make_frames_equals_make_frame_on_any_number_of_jobs():
    raw1, lab1 = make_frames(3, 40, seed0=11)
    raw2, lab2 = make_frames(3, 40, seed0=11, jobs=2)
    np.testing.assert_array_equal(raw1, raw2)
    np.testing.assert_array_equal(lab1, lab2)
    raw, _clean, lab = make_frame(40, seed=12)
    np.testing.assert_array_equal(raw1[1], raw)
    np.testing.assert_array_equal(lab1[1], lab)
    assert make_frames(0, 16)[0].shape == (0, 16, 16)


def test_hidden_pit_pixels():
    raw, _clean, labels, hidden = make_frame(256, seed=5, return_hidden=True)
    assert hidden.dtype == bool and hidden.shape == labels.shape
    # part of the pit's footprint, and present here (monolayer pits overlap the pit)
    assert hidden.any() and np.all(labels[hidden] == 1)
    assert hidden.sum() < (labels == 1).sum()
    # the same frame with or without the mask
    r2, _c2, l2 = make_frame(256, seed=5)
    assert np.array_equal(r2, raw) and np.array_equal(l2, labels)
    # without monolayer pits nothing can hide the multilayer pit
    *_, lab0, hid0 = make_frame(256, seed=5, monolayer_density_per_um2=0.0, return_hidden=True)
    assert (lab0 == 1).any() and not hid0.any()
    raw3, lab3, hid3 = make_frames(2, 256, seed0=5, return_hidden=True)
    np.testing.assert_array_equal(raw3[0], raw)
    np.testing.assert_array_equal(lab3[0], labels)
    np.testing.assert_array_equal(hid3[0], hidden)
    assert make_frames(0, 16, return_hidden=True)[2].shape == (0, 16, 16)
