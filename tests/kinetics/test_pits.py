"""Tests of napari_calcite_afm.kinetics.pits: the pits of one frame, measured in nm."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.kinetics import PitSettings, find_pits, measure_components


def _frame(size=64):
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 0.02, (size, size))
    lab = np.full((size, size), 2, np.uint8)
    return z, lab


def test_depth_volume_and_area_of_a_pit_of_known_depth():
    z, lab = _frame()
    yy, xx = np.mgrid[0:64, 0:64]
    cone = np.hypot(yy - 30.0, xx - 25.0)
    pit = cone <= 10
    z[pit] = -4.0 + 0.4 * cone[pit]  # a cone 4 nm deep at its centre, 0 at its rim
    lab[pit] = 1
    out = find_pits(z, lab, 5.0, settings=PitSettings(bottom_percentile=0.0))
    assert out.n == 1
    row = out.rows[0]
    # the surrounding terrace is at 0 (noise 0.02 nm): depth = 4 nm, to the noise
    assert row["depth_nm"] == pytest.approx(4.0, abs=0.05)
    assert row["area_nm2"] == pit.sum() * 25.0
    expected_volume = np.clip(0.0 - z[pit], 0, None).sum() * 25.0
    assert row["volume_nm3"] == pytest.approx(expected_volume, rel=0.05)
    assert row["y_nm"] == pytest.approx(30.0 * 5.0) and row["x_nm"] == pytest.approx(25.0 * 5.0)
    assert row["bottom_y_nm"] == pytest.approx(150.0, abs=5.0)
    assert row["bottom_x_nm"] == pytest.approx(125.0, abs=5.0)
    assert row["class"] == 1 and row["touches_border"] is False
    assert (out.components == 1).sum() == pit.sum()


def test_depth_is_below_the_surrounding_terrace_not_the_frame():
    z, lab = _frame()
    z += 10.0  # the whole surface is 10 nm higher
    z[:, 40:] -= 3.0  # a step far from the pit
    lab[20:30, 10:20] = 1
    z[20:30, 10:20] = 10.0 - 2.0
    row = find_pits(z, lab, 1.0).rows[0]
    assert row["depth_nm"] == pytest.approx(2.0, abs=0.1)


def test_ring_ignores_other_pits_and_falls_back_without_terrace():
    z, lab = _frame()
    lab[10:20, 10:20] = 1
    z[10:20, 10:20] = -2.0
    lab[10:20, 20:40] = 3  # a monolayer pit right next to it, 0.3 nm deep
    z[10:20, 20:40] = -0.3
    out = find_pits(z, lab, 1.0)
    assert [r["class"] for r in out.rows] == [1, 3]
    assert out.rows[0]["depth_nm"] == pytest.approx(2.0, abs=0.1)
    assert out.rows[1]["depth_nm"] == pytest.approx(0.3, abs=0.1)
    # a pit surrounded only by another pit class: the non-pit ring is used
    z2 = np.full((30, 30), -1.0)
    lab2 = np.full((30, 30), 3, np.uint8)
    lab2[10:20, 10:20] = 1
    z2[10:20, 10:20] = -3.0
    row = find_pits(z2, lab2, 1.0, settings=PitSettings(classes=(1,))).rows[0]
    assert row["depth_nm"] == pytest.approx(2.0)


def test_small_components_and_unlisted_classes_are_left_out():
    z, lab = _frame()
    lab[5:7, 5:7] = 1  # 4 pixels
    lab[30:40, 30:40] = 3
    out = find_pits(z, lab, 1.0, settings=PitSettings(min_area_px=5))
    assert [r["n_px"] for r in out.rows] == [100]
    out = find_pits(z, lab, 1.0, settings=PitSettings(min_area_px=4, classes=(1,)))
    assert [r["n_px"] for r in out.rows] == [4]
    assert set(np.unique(out.components).tolist()) == {0, 1}


def test_connectivity_of_diagonal_pixels():
    z, lab = _frame(16)
    lab[4:8, 4:8] = 1
    lab[8:12, 8:12] = 1  # touches the first one by a corner only
    assert find_pits(z, lab, 1.0, settings=PitSettings(min_area_px=1)).n == 2
    assert find_pits(z, lab, 1.0, settings=PitSettings(min_area_px=1, connectivity=2)).n == 1


@pytest.mark.parametrize(
    ("where", "touches"),
    [
        ((slice(0, 8), slice(20, 30)), True),  # on the frame's first row
        ((slice(1, 8), slice(20, 30)), False),  # one row inside: its extent is known
        ((slice(20, 30), slice(54, 64)), True),  # on the last column
        ((slice(20, 30), slice(10, 20)), True),  # next to the NaN columns
        ((slice(20, 30), slice(11, 20)), False),  # one column away from them
        ((slice(40, 50), slice(30, 40)), True),  # next to unlabelled pixels
    ],
)
def test_pits_touching_the_border_of_the_data_are_flagged(where, touches):
    z, lab = _frame()
    z[:, :10] = np.nan
    lab[:, :10] = 0
    lab[50:52, 30:40] = 0
    lab[where] = 1
    z[where] = -1.0
    row = find_pits(z, lab, 1.0).rows[0]
    assert row["touches_border"] is touches


def test_measure_components_matches_find_pits():
    z, lab = _frame()
    lab[10:20, 10:30] = 1
    z[10:20, 10:30] = -1.5
    a = find_pits(z, lab, 2.0)
    b = measure_components(z, lab, a.components, [1], 2.0, PitSettings())
    assert a.rows == b.rows


def test_bad_input_gives_one_line_errors():
    z, lab = _frame()
    with pytest.raises(CalciteAFMError, match="do not match"):
        find_pits(z, lab[:-1], 1.0)
    with pytest.raises(CalciteAFMError, match="pixel_size_nm"):
        find_pits(z, lab, 0.0)
    with pytest.raises(CalciteAFMError, match="2D"):
        find_pits(z[None], lab[None], 1.0)
    with pytest.raises(CalciteAFMError, match=r"1\.\.3"):
        find_pits(z, lab + 5, 1.0)


def test_settings_round_trip_and_checks():
    s = PitSettings(classes=[1], min_area_px=4, max_gap=0, separate_classes=[])
    d = s.to_dict()
    assert PitSettings.from_dict(d) == s
    import json

    assert PitSettings.from_dict(json.loads(json.dumps(d))) == s
    for bad in (
        {"classes": (2,)},
        {"min_area_px": 0},
        {"connectivity": 3},
        {"max_gap": -1},
        {"bottom_percentile": 80},
        {"min_overlap": 0},
        {"link_distance_nm": -1},
        {"min_rhomb_fill": 2},
        {"separate_classes": (2,)},
        {"min_keep": 1.5},
        {"new_basin_nm": -1},
    ):
        with pytest.raises(CalciteAFMError):
            PitSettings(**bad)
    with pytest.raises(CalciteAFMError, match="unknown"):
        PitSettings.from_dict({"min_area": 3})
