"""Tests of the synthetic calcite AFM generator (small frames, fast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm import synthetic
from napari_calcite_afm.synthetic import (
    STEP_HEIGHT_NM,
    SyntheticSeries,
    add_artifacts,
    make_frame,
    make_series,
)

# 128 pixels of 40 nm: a 5 µm frame, the physics of a full frame at a fraction of the cost
BIG_PX = dict(pixel_size_nm=40.0)


@pytest.fixture(scope="module")
def series() -> SyntheticSeries:
    return make_series(6, 128, seed=11, n_multilayer=2, monolayer_density_per_um2=2.0, **BIG_PX)


@pytest.fixture(scope="module")
def flat_series() -> SyntheticSeries:
    """No roughness, no artifacts: heights are whole steps."""
    return make_series(
        5,
        128,
        seed=5,
        n_multilayer=1,
        monolayer_density_per_um2=2.0,
        roughness=0.0,
        artifacts=False,
        drift=False,
        **BIG_PX,
    )


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


def test_label_values_and_presence(series):
    assert set(np.unique(series.labels)) <= {1, 2, 3}
    assert set(np.unique(series.labels_raw)) <= {1, 2, 3}
    present = set(np.unique(series.labels[-1]))
    assert present == {1, 2, 3}


def test_multilayer_pits_widen_and_deepen(series):
    area = (series.labels == synthetic.LABEL_MULTILAYER).sum(axis=(1, 2))
    assert area[-1] > area[0]
    assert np.mean(np.diff(area) >= 0) >= 0.8
    lowest = series.clean.reshape(series.n_frames, -1).min(axis=1)
    assert lowest[-1] < lowest[0] - 1.0  # deeper by more than 3 steps
    # the multilayer pits are deep: many steps below the terrace around them
    pit = series.labels[-1] == synthetic.LABEL_MULTILAYER
    assert np.median(series.clean[-1][~pit]) - series.clean[-1][pit].min() > 10 * STEP_HEIGHT_NM


def test_surface_retreats(series):
    mean = series.clean.mean(axis=(1, 2))
    assert mean[-1] < mean[0]


def test_steps_are_whole_monolayers_without_roughness(flat_series):
    z = flat_series.clean.astype(np.float64)
    k = z / STEP_HEIGHT_NM
    assert np.allclose(k, np.round(k), atol=1e-3)
    # vicinal steps and pit edges: height differences of neighbours are whole steps,
    # mostly one step
    d = np.diff(z, axis=2)
    steps = np.abs(d[np.abs(d) > 1e-4])
    assert steps.size > 100
    assert np.mean(np.isclose(steps, STEP_HEIGHT_NM, atol=1e-4)) > 0.8


def test_monolayer_pits_are_one_step_deep(flat_series):
    z = flat_series.clean.astype(np.float64)
    lab = flat_series.labels
    diffs = []
    for axis in (1, 2):
        for a, b in (
            ((slice(None, -1),), (slice(1, None),)),
            ((slice(1, None),), (slice(None, -1),)),
        ):
            sa = [slice(None)] * 3
            sb = [slice(None)] * 3
            sa[axis], sb[axis] = a[0], b[0]
            pit = lab[tuple(sa)] == synthetic.LABEL_MONOLAYER
            ter = lab[tuple(sb)] == synthetic.LABEL_TERRACE
            m = pit & ter
            diffs.append(z[tuple(sb)][m] - z[tuple(sa)][m])
    diffs = np.concatenate(diffs)
    assert diffs.size > 50
    # a monolayer pit is lower than every terrace pixel around it ...
    assert diffs.min() > STEP_HEIGHT_NM - 1e-4
    # ... by exactly one step almost everywhere (two where its edge meets an up-step)
    assert np.mean(np.isclose(diffs, STEP_HEIGHT_NM, atol=1e-4)) > 0.8
    # and each pit is flat: one level
    comp, n = ndimage.label(lab[-1] == synthetic.LABEL_MONOLAYER)
    assert n > 0
    for i in range(1, min(n, 20) + 1):
        vals = np.unique(np.round(z[-1][comp == i] / STEP_HEIGHT_NM))
        assert vals.size <= 3  # (younger pits may sit inside an older one)


def test_monolayer_pits_nucleate_over_time(series):
    counts = [ndimage.label(f == synthetic.LABEL_MONOLAYER)[1] for f in series.labels]
    assert min(counts) > 0
    # new pits appear: frame k has pits where frame k - 1 had none
    new = [
        ndimage.label((series.labels[k] == 3) & (series.labels[k - 1] == 2))[1]
        for k in range(1, series.n_frames)
    ]
    assert min(new) > 0


def test_raw_is_clean_plus_artifacts(series):
    diff = series.raw.astype(np.float64) - series.clean
    assert np.abs(diff).max() > 5.0  # tilt of tens of nm
    assert series.drift_px[0].tolist() == [0.0, 0.0]
    assert np.abs(series.drift_px[1:]).max() > 0.1
    # subtracting a plane from raw - clean of frame 0 (no drift) leaves the bow, row
    # offsets, scars and noise: small next to the tilt
    d0 = diff[0]
    yy, xx = np.mgrid[: d0.shape[0], : d0.shape[1]]
    a = np.c_[np.ones(d0.size), xx.ravel(), yy.ravel()]
    resid = d0.ravel() - a @ np.linalg.lstsq(a, d0.ravel(), rcond=None)[0]
    assert np.std(resid) < 0.5 * np.std(d0)
    assert np.std(resid) > 0.03  # but there are artifacts beyond the plane


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


def test_noise_and_scars_options():
    s0 = make_series(1, 64, seed=9, scars=False, noise_nm=0.0, drift=False)
    s1 = make_series(1, 64, seed=9, scars=True, noise_nm=0.08, drift=False)
    assert np.array_equal(s0.clean, s1.clean)
    assert not np.array_equal(s0.raw, s1.raw)
    assert s1.params["noise_nm"] == 0.08


def test_add_artifacts():
    flat = np.zeros((64, 80), np.float32)
    out = add_artifacts(
        flat, 0, tilt_nm=20.0, bow_nm=0.0, row_offset_nm=0.0, n_scars=0, noise_nm=0.0
    )
    assert out.dtype == np.float32 and out.shape == flat.shape
    span = float(out.max() - out.min())
    assert 20.0 - 1e-3 <= span <= 20.0 * math.sqrt(2) + 1e-3
    # row offsets are constant along each row
    rows = add_artifacts(flat, 1, tilt_nm=0, bow_nm=0, row_offset_nm=1.0, n_scars=0, noise_nm=0)
    assert np.allclose(rows, rows[:, :1])
    assert np.ptp(rows[:, 0]) > 0.1
    # scars: short streaks along rows
    sc = add_artifacts(flat, 2, tilt_nm=0, bow_nm=0, row_offset_nm=0, n_scars=5, noise_nm=0)
    assert (np.abs(sc) > 0.5).any()
    assert (np.abs(sc) > 0.5).sum(axis=1).max() <= 110
    # noise level
    nz = add_artifacts(flat, 3, tilt_nm=0, bow_nm=0, row_offset_nm=0, n_scars=0, noise_nm=0.05)
    assert abs(float(nz.std()) - 0.05) < 0.01
    # same seed, same artifacts; NaN stays NaN
    assert np.array_equal(add_artifacts(flat, 7), add_artifacts(flat, 7))
    hole = flat.copy()
    hole[3, 4] = np.nan
    out = add_artifacts(hole, np.random.default_rng(0))
    assert np.isnan(out[3, 4]) and np.isfinite(out).sum() == out.size - 1


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


def test_rhombus_geometry():
    n1, n2, m1, m2 = synthetic._crystal_axes(30.0)
    # m1, m2 run along the rhombus sides (n1, n2 are their normals) ...
    assert np.dot(n1, m2) == pytest.approx(0.0, abs=1e-12)
    assert np.dot(n2, m1) == pytest.approx(0.0, abs=1e-12)
    # ... and meet at 78 degrees (the acute corner; the other corners are 102 degrees)
    cos = np.dot(m1, m2) / (np.linalg.norm(m1) * np.linalg.norm(m2))
    assert math.degrees(math.acos(cos)) == pytest.approx(synthetic.RHOMB_ACUTE_ANGLE_DEG)
    assert synthetic.RHOMB_ACUTE_ANGLE_DEG == pytest.approx(78.0)


def test_pit_source_sits_toward_acute_corner():
    s = make_series(
        1,
        96,
        seed=8,
        n_multilayer=1,
        monolayer_density_per_um2=0.0,
        roughness=0.0,
        artifacts=False,
        drift=False,
        orientation_deg=0.0,
        **BIG_PX,
    )
    z, lab = s.clean[0], s.labels[0]
    pit = lab == synthetic.LABEL_MULTILAYER
    if pit[0].any() or pit[-1].any() or pit[:, 0].any() or pit[:, -1].any():
        pytest.skip("pit touches the frame edge")
    centroid = np.array(ndimage.center_of_mass(pit))  # (row, col)
    deepest = np.array(np.unravel_index(np.argmin(np.where(pit, z, np.inf)), z.shape))
    _, _, m1, m2 = synthetic._crystal_axes(0.0)
    acute = -(np.asarray(m1) + np.asarray(m2))  # (x, y) toward the acute corner
    offset = (deepest - centroid)[::-1]  # (x, y)
    assert np.dot(offset, acute) > 0.3 * np.linalg.norm(offset) * np.linalg.norm(acute)


def test_stop_and_progress():
    seen = []
    s = make_series(4, 32, seed=0, progress=seen.append, stop=lambda: len(seen) >= 2)
    assert s.n_frames == 2 and s.raw.shape[0] == 2
    assert [d["frame"] for d in seen] == [0, 1]


def test_bad_arguments():
    from napari_calcite_afm.io import CalciteAFMError

    with pytest.raises(CalciteAFMError):
        make_series(0, 64)
    with pytest.raises(CalciteAFMError):
        make_series(2, 64, pixel_size_nm=-1.0)
    with pytest.raises(CalciteAFMError):
        make_frame(64, bogus=1)
    with pytest.raises(CalciteAFMError):
        add_artifacts(np.zeros((2, 3, 4)), 0)


def test_make_frames_equals_make_frame_on_any_number_of_jobs():
    from napari_calcite_afm.synthetic import make_frame, make_frames

    raw1, lab1 = make_frames(3, 40, seed0=11)
    raw2, lab2 = make_frames(3, 40, seed0=11, jobs=2)
    np.testing.assert_array_equal(raw1, raw2)
    np.testing.assert_array_equal(lab1, lab2)
    raw, _clean, lab = make_frame(40, seed=12)
    np.testing.assert_array_equal(raw1[1], raw)
    np.testing.assert_array_equal(lab1[1], lab)
    assert make_frames(0, 16)[0].shape == (0, 16, 16)


def test_hidden_pit_pixels():
    from napari_calcite_afm.synthetic import make_frame, make_frames

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
