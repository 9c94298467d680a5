"""Tests of napari_calcite_afm.synthetic.truth: the true multilayer pits of a movie."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.synthetic import (
    OBTUSE_TO_ACUTE_VELOCITY,
    RHOMB_ACUTE_ANGLE_DEG,
    make_series,
)
from napari_calcite_afm.synthetic.truth import pit_truth


def test_footprints_rebuild_the_multilayer_labels(series):
    truth = pit_truth(series)
    assert len(truth.pits) == series.params["drawn"]["n_multilayer"] == 2
    assert truth.footprints.shape == series.labels.shape
    assert np.array_equal(truth.footprints > 0, series.labels == 1)
    p2 = series.pixel_size_nm**2
    for pit in truth.pits:
        owned = (truth.footprints == pit.index + 1).sum(axis=(1, 2)) * p2
        np.testing.assert_array_equal(pit.owned_area_nm2, owned)
        assert np.all(pit.area_nm2 >= pit.owned_area_nm2)
        np.testing.assert_array_equal(pit.visible, pit.area_nm2 > 0)


def test_pits_match_the_generator_record(series):
    truth = pit_truth(series)
    drawn = series.params["drawn"]
    for pit, rec in zip(truth.pits, drawn["multilayer_pits"]):
        assert (pit.x_nm, pit.y_nm, pit.t0_s) == (rec["x_nm"], rec["y_nm"], rec["t0_s"])
        assert pit.loop_interval_s == rec["loop_interval_s"]
        speed = rec["speed_factor"]
        assert pit.obtuse_velocity_nm_s == pytest.approx(drawn["obtuse_step_velocity_nm_s"] * speed)
        assert pit.obtuse_velocity_nm_s / pit.acute_velocity_nm_s == pytest.approx(
            OBTUSE_TO_ACUTE_VELOCITY
        )
        assert pit.deepening_nm_s == pytest.approx(0.31 / rec["loop_interval_s"])
    assert truth.velocity_ratio == pytest.approx(OBTUSE_TO_ACUTE_VELOCITY)
    np.testing.assert_array_equal(truth.frame_times_s, series.frame_times_s)


def test_normals_of_obtuse_and_acute_sides(series):
    truth = pit_truth(series)
    o1, o2 = truth.obtuse_normals_deg
    a1, a2 = truth.acute_normals_deg
    # acute sides face away from the obtuse ones; the obtuse normals are 180 - 78 apart
    assert (a1 - o1) % 360 == pytest.approx(180.0) and (a2 - o2) % 360 == pytest.approx(180.0)
    gap = abs((o1 - o2 + 180) % 360 - 180)
    assert gap == pytest.approx(180.0 - RHOMB_ACUTE_ANGLE_DEG)
    # one rhombus side runs along the recorded orientation: perpendicular to a normal
    side = truth.orientation_deg
    assert max(abs((side - o + 90) % 180 - 90) for o in (o1, o2)) == pytest.approx(90.0)


def test_area_of_a_pit_inside_the_frame_follows_the_rhombus():
    s = make_series(
        4,
        96,
        seed=3,
        n_multilayer=1,
        pixel_size_nm=20.0,
        artifacts=False,
        drift=False,
        monolayer_density_per_um2=0.5,
    )
    truth = pit_truth(s)
    pit = truth.pits[0]
    inside = pit.visible & ~pit.touches_border
    if not inside.any():  # pragma: no cover - depends on where the seed puts the pit
        pytest.skip("the pit reaches the frame's edge")
    # the footprint is the rhombus, give or take the wavy edges (a few nm) and pixels
    ratio = pit.area_nm2[inside] / pit.full_area_nm2[inside]
    assert np.all(np.abs(ratio - 1) < 0.25)
    grows = np.diff(pit.area_nm2[pit.visible])
    assert np.all(grows >= 0)


def test_pit_truth_changes_nothing_and_needs_a_seeded_series(series):
    again = make_series(
        6, 128, seed=11, n_multilayer=2, monolayer_density_per_um2=2.0, pixel_size_nm=40.0
    )
    pit_truth(series)
    assert np.array_equal(again.raw, series.raw)
    unseeded = make_series(2, 32, seed=None, n_multilayer=1)
    with pytest.raises(CalciteAFMError, match="seed"):
        pit_truth(unseeded)
    bare = make_series(2, 32, seed=1, n_multilayer=1)
    bare.params = {}
    with pytest.raises(CalciteAFMError, match="make_series"):
        pit_truth(bare)
    assert not math.isnan(pit_truth(make_series(2, 32, seed=1)).velocity_ratio)
