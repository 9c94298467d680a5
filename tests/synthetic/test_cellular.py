"""The cellular generator: a lattice simulation of step retreat (small frames)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.synthetic import (
    CellularParams,
    make_cellular_frame,
    make_cellular_frames,
    make_cellular_series,
)
from napari_calcite_afm.synthetic.cellular_params import _draw_cellular
from napari_calcite_afm.synthetic.crystal import STEP_HEIGHT_NM
from napari_calcite_afm.synthetic.lattice import (
    _lattice_axes,
    _q_for_velocity,
    _step_velocity_cells,
)

FLAT = dict(roughness_nm=0.0, artifacts=False, drift=False)


@pytest.fixture(scope="module")
def movie():
    return make_cellular_series(4, 96, seed=8, pixel_size_nm=12.0)


def test_series_shapes_types_and_record(movie):
    s = movie
    assert s.raw.shape == s.clean.shape == s.labels.shape == s.labels_raw.shape == (4, 96, 96)
    assert s.raw.dtype == s.clean.dtype == np.float32 and s.labels.dtype == np.uint8
    assert set(np.unique(s.labels)) <= {1, 2, 3}
    assert s.pixel_size_nm == 12.0 and s.frame_interval_s == 300.0
    assert s.drift_px.shape == (4, 2) and np.all(s.drift_px[0] == 0)
    assert s.params["generator"] == "cellular"
    json.dumps(s.params)
    drawn = s.params["drawn"]
    for key in ("step_density_per_um", "kink_probability", "history_s", "scan", "roughness"):
        assert key in drawn, key


def test_reproducible_by_seed_and_by_record(movie):
    again = make_cellular_series(params=CellularParams.from_dict(movie.params))
    for name in ("raw", "clean", "labels", "labels_raw", "drift_px"):
        np.testing.assert_array_equal(getattr(again, name), getattr(movie, name), err_msg=name)
    other = make_cellular_series(4, 96, seed=9, pixel_size_nm=12.0)
    assert not np.array_equal(other.clean, movie.clean)


def test_the_surface_dissolves_over_time(movie):
    # the clean frames share frame 0's height reference: the surface goes down
    means = movie.clean.mean(axis=(1, 2))
    assert means[-1] < means[0]


def test_drawn_settings_span_their_ranges():
    draws = [_draw_cellular(np.random.default_rng(s), CellularParams(seed=s)) for s in range(100)]
    px = np.array([d["pixel_size_nm"] for d in draws])
    assert px.min() >= 2.0 and px.max() <= 20.0 and px.min() < 2.5 and px.max() > 16.0
    dens = np.array([d["step_density_per_um"] for d in draws])
    assert dens.min() < 0.4 and dens.max() > 8.0
    assert all(d["n_multilayer"] >= 1 for d in draws)
    given = _draw_cellular(np.random.default_rng(0), CellularParams(pixel_size_nm=3.0))
    assert given["pixel_size_nm"] == 3.0


def _ring(mask: np.ndarray) -> np.ndarray:
    return ndimage.binary_dilation(mask) & ~mask


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_labels_are_consistent_with_heights(seed):
    """Whole steps; a monolayer pit is lower than every pixel around it (but multilayer
    pits); a multilayer pit is two steps or more below its rim."""
    _raw, clean, labels = make_cellular_frame(
        128, seed=seed, pixel_size_nm=10.0, monolayer_density_per_um2=3.0, **FLAT
    )
    steps = clean / STEP_HEIGHT_NM
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    comp, n = ndimage.label(labels == 3)
    assert n > 0
    for k in range(1, n + 1):
        inside = comp == k
        ring = _ring(inside) & (labels != 1)
        if ring.any():
            assert clean[ring].min() >= clean[inside].max() + STEP_HEIGHT_NM - 1e-4
    comp, n = ndimage.label(labels == 1)
    deep = 0
    for k in range(1, n + 1):
        inside = comp == k
        ring = _ring(inside)
        if ring.any() and inside.sum() > 20:
            deep += clean[ring].max() - clean[inside].min() >= 2 * STEP_HEIGHT_NM - 1e-4
    assert deep >= 1


def _edge_speeds(series) -> np.ndarray:
    """Speeds (pixels per frame, along the lattice axes) of the four sides of the
    multilayer pit: obtuse +e1, acute -e1, obtuse +e2, acute -e2."""
    e1, e2 = _lattice_axes(series.params["drawn"]["orientation_deg"])
    m = np.linalg.inv(np.array([e1, e2]).T)
    rows = []
    for k in range(series.n_frames):
        r, c = np.nonzero(series.labels[k] == 1)
        edge = series.labels[k] == 1
        if r.size < 20:
            continue
        if edge[[0, -1]].any() or edge[:, [0, -1]].any():
            break  # the pit reached the frame's edge
        u = m[0, 0] * c + m[0, 1] * r
        v = m[1, 0] * c + m[1, 1] * r
        rows.append((k, u.max(), -u.min(), v.max(), -v.min()))
    e = np.array(rows)
    if len(e) < 3:
        return np.full(4, np.nan)
    return np.array([np.polyfit(e[:, 0], e[:, j], 1)[0] for j in range(1, 5)])


def test_rhombic_anisotropy_obtuse_steps_retreat_faster():
    """The pit's obtuse sides retreat about 2.3 times faster than its acute sides, at the
    set velocity in nm/s whatever the pixel size: the shape emerges from the rules."""
    ratios, obtuse = [], []
    for seed, px in ((0, 10.0), (2, 10.0), (3, 10.0), (0, 20.0), (2, 20.0), (3, 20.0)):
        s = make_cellular_series(
            8,
            int(1920 / px),
            seed=seed,
            pixel_size_nm=px,
            step_density_per_um=0.3,
            monolayer_density_per_um2=0.02,
            n_multilayer=1,
            reactivity_sigma=0.1,
            history=0.25,
            kink_probability=1.0,
            step_velocity_nm_s=0.3,
            **FLAT,
        )
        v = _edge_speeds(s)
        if np.isnan(v).any():
            continue
        obtuse.append(0.5 * (v[0] + v[2]) * px / 300.0 * np.sin(np.radians(78.0)))
        ratios.append((v[0] + v[2]) / (v[1] + v[3]))
    assert len(ratios) >= 3
    assert 0.22 < np.median(obtuse) < 0.36  # set: 0.3 nm/s
    assert 1.8 < np.median(ratios) < 3.0  # set: 2.3


def test_velocity_calibration_inverts():
    for pk in (0.5, 0.8, 1.0):
        v = _step_velocity_cells(0.1, pk)
        assert _q_for_velocity(v, pk) == pytest.approx(0.1, rel=1e-3)
        assert _step_velocity_cells(0.02, pk) < v


def test_frames_any_jobs_and_pixel_sizes():
    one = make_cellular_frames(2, 32, seed0=60, return_pixel_size=True)
    two = make_cellular_frames(2, 32, seed0=60, jobs=2, return_pixel_size=True)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert one[0].shape == (2, 32, 32) and np.all((one[2] >= 2) & (one[2] <= 20))
    raw, _clean, _labels = make_cellular_frame(32, seed=60)
    np.testing.assert_array_equal(raw, one[0][0])


def test_progress_and_stop():
    seen = []
    s = make_cellular_series(3, 32, seed=1, progress=seen.append)
    assert [d["frame"] for d in seen] == [0, 1, 2] and s.n_frames == 3
    flag = threading.Event()
    flag.set()
    assert make_cellular_series(3, 32, seed=1, stop=flag).n_frames == 0


def test_bad_settings():
    with pytest.raises(CalciteAFMError, match="unknown option"):
        make_cellular_series(1, 32, bogus=1)
    with pytest.raises(CalciteAFMError, match="cell_px"):
        make_cellular_series(1, 32, cell_px=10.0)
    with pytest.raises(CalciteAFMError, match="size"):
        make_cellular_series(1, 8)
    with pytest.raises(CalciteAFMError, match="not both"):
        make_cellular_series(2, params=CellularParams(n_frames=1, size=32))
    with pytest.raises(CalciteAFMError, match="n_frames"):
        make_cellular_frame(32, n_frames=2)
    with pytest.raises(CalciteAFMError, match="bogus"):
        CellularParams.from_dict({"bogus": 1})
    with pytest.raises(CalciteAFMError, match="pit_labels must be one of basin, footprint"):
        make_cellular_series(1, 32, pit_labels="outline")


def test_footprint_labels_cover_the_whole_pit_and_leave_the_heights_alone():
    from napari_calcite_afm.synthetic.lattice import VISITED
    from napari_calcite_afm.synthetic.lattice_render import _footprint_labels

    opts = dict(n_frames=3, size=128, seed=5, pixel_size_nm=10.0, step_density_per_um=4.0)
    basin = make_cellular_series(**opts)
    foot = make_cellular_series(**opts, pit_labels="footprint")
    np.testing.assert_array_equal(basin.raw, foot.raw)
    np.testing.assert_array_equal(basin.clean, foot.clean)
    assert foot.params["pit_labels"] == "footprint"
    for b, f in zip(basin.labels, foot.labels):
        assert np.all(f[b == 1] == 1)  # every basin pixel stays pit; only pit is added
        assert np.all((f == b) | (f == 1))
    assert (foot.labels == 1).sum() > (basin.labels == 1).sum()  # opened flanks count
    # the rule itself: a visited area that holds a multilayer pixel becomes pit, whole
    flags = np.zeros((6, 6), np.uint8)
    flags[1:5, 1:3] = VISITED  # one pit's loops dissolved this area
    flags[1:3, 4:6] = VISITED  # another area, no multilayer pixel in it
    labels = np.full((6, 6), 2, np.uint8)
    labels[2, 1] = 1
    labels[3, 2] = 3  # a monolayer pit inside the footprint
    out = _footprint_labels(labels, flags)
    assert (out[1:5, 1:3] == 1).all() and (out[1:3, 4:6] == 2).all() and out.sum() < labels.sum()
