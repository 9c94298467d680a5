"""Tests of napari_calcite_afm.kinetics.velocities: orientation and step velocities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.kinetics import (
    RhombOrientation,
    fit_orientation,
    obtuse_sides,
    rhomb_fill,
    robust_slope,
    side_distances,
    side_velocities,
    track_pits,
    velocity_ratio,
)
from napari_calcite_afm.synthetic import OBTUSE_TO_ACUTE_VELOCITY, _crystal_axes


def rhombus(shape, source_rc, orientation_deg, d_obtuse, d_acute):
    """A calcite pit as the generator defines it: obtuse sides (normals n1, n2) at
    ``d_obtuse`` pixels from the source, acute sides (-n1, -n2) at ``d_acute``."""
    n1, n2, _, _ = _crystal_axes(orientation_deg)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    dx, dy = xx - source_rc[1], yy - source_rc[0]
    p1 = dx * n1[0] + dy * n1[1]
    p2 = dx * n2[0] + dy * n2[1]
    return (p1 <= d_obtuse) & (-p1 <= d_acute) & (p2 <= d_obtuse) & (-p2 <= d_acute)


def _angles_mod180(orientation_deg):
    n1, n2, _, _ = _crystal_axes(orientation_deg)
    return sorted(math.degrees(math.atan2(n[1], n[0])) % 180 for n in (n1, n2))


def _angle_diff(a, b):
    return abs((a - b + 90) % 180 - 90)


@pytest.mark.parametrize("orientation", [10.0, 47.0, 133.0, 260.0])
def test_fit_orientation_recovers_the_rhombus_sides(orientation):
    masks = [
        rhombus((90, 90), (45, 45), orientation, d, d / OBTUSE_TO_ACUTE_VELOCITY)
        for d in (12.0, 20.0, 28.0)
    ]
    o = fit_orientation(masks)
    assert o.n_pits == 3 and o.fill > 0.9
    fitted = sorted(a % 180 for a in o.normal_angles_deg()[:2])
    true = _angles_mod180(orientation)
    assert max(_angle_diff(a, b) for a, b in zip(fitted, true)) < 1.0


def test_fit_orientation_without_large_pits_is_nan():
    o = fit_orientation([np.ones((3, 3), bool)])
    assert math.isnan(o.normal_deg) and o.n_pits == 0
    assert np.isnan(side_distances(np.ones((4, 4), bool), o, 1.0)).all()
    assert math.isnan(rhomb_fill(np.ones((4, 4), bool), o))


def _growing(orientation, v_obtuse, pixel_nm, times, source_rc, shape=(128, 128), age0=600.0):
    v_acute = v_obtuse / OBTUSE_TO_ACUTE_VELOCITY
    return [
        rhombus(
            shape,
            source_rc,
            orientation,
            v_obtuse * (t + age0) / pixel_nm,
            v_acute * (t + age0) / pixel_nm,
        )
        for t in times
    ]


def test_velocities_of_an_analytically_growing_rhombus():
    times = np.arange(8) * 300.0
    v_obtuse, p, orientation = 0.25, 20.0, 35.0
    masks = _growing(orientation, v_obtuse, p, times, (70, 55))
    o = fit_orientation(masks)
    src = (70 * p, 55 * p)
    d = np.array([side_distances(m, o, p, source_nm=src) for m in masks])
    v = side_velocities(d, times)
    pair = obtuse_sides([v])
    acute = [k for k in range(4) if k not in pair]
    # the obtuse sides are the generator's n1 and n2
    normals = o.normal_angles_deg() % 180
    assert (
        sorted(_angle_diff(normals[k], a) < 1.5 for k in pair for a in _angles_mod180(35.0)).count(
            True
        )
        == 2
    )
    assert v[list(pair)] == pytest.approx([v_obtuse, v_obtuse], rel=0.05)
    v_acute = v_obtuse / OBTUSE_TO_ACUTE_VELOCITY
    assert v[acute] == pytest.approx([v_acute, v_acute], rel=0.08)
    ratio = velocity_ratio([v[list(pair)].mean()], [v[acute].mean()])
    assert ratio == pytest.approx(OBTUSE_TO_ACUTE_VELOCITY, rel=0.08)


def test_track_pits_reports_obtuse_and_acute_velocities():
    times = np.arange(8) * 300.0
    p = 20.0
    a = _growing(110.0, 0.25, p, times, (40, 45), shape=(160, 160))
    b = _growing(110.0, 0.18, p, times, (110, 115), shape=(160, 160), age0=900.0)
    lab = np.full((8, 160, 160), 2, np.uint8)
    for k in range(8):
        lab[k][a[k] | b[k]] = 1
    z = np.where(lab == 1, -3.0, 0.0)
    res = track_pits(z, lab, p, times)
    rows = {r["track_id"]: r for r in res.tracks}
    assert sorted(rows) == [1, 2]
    for tid, v in ((1, 0.25), (2, 0.18)):
        assert rows[tid]["obtuse_velocity_nm_s"] == pytest.approx(v, rel=0.06)
        assert rows[tid]["acute_velocity_nm_s"] == pytest.approx(
            v / OBTUSE_TO_ACUTE_VELOCITY, rel=0.1
        )
        assert rows[tid]["rhomb_fill"] > 0.9
    assert res.velocity_ratio == pytest.approx(OBTUSE_TO_ACUTE_VELOCITY, rel=0.08)
    assert res.velocity_ratio_by_class[1] == res.velocity_ratio


def test_sides_touching_the_border_are_not_measured():
    o = RhombOrientation(0.0, 90.0)  # normals +x, +y, -x, -y
    m = np.zeros((20, 20), bool)
    m[5:10, 4:16] = True
    border = np.zeros_like(m)
    border[:, 16] = True  # data end right of the pit
    d = side_distances(m, o, 1.0, source_nm=(7.0, 10.0), border=border)
    assert np.isnan(d[0]) and np.isfinite(d[1:]).all()
    # an offset crop gives the same distances
    d2 = side_distances(m[3:, 2:], o, 1.0, source_nm=(7.0, 10.0), offset_px=(3, 2))
    np.testing.assert_allclose(d2, side_distances(m, o, 1.0, source_nm=(7.0, 10.0)))


def test_rhomb_fill_separates_rhombi_from_merged_pits():
    o = fit_orientation([rhombus((80, 80), (40, 40), 20.0, 20.0, 9.0)])
    one = rhombus((80, 80), (40, 40), 20.0, 20.0, 9.0)
    two = one | rhombus((80, 80), (15, 62), 20.0, 12.0, 5.0)
    assert rhomb_fill(one, o) > 0.9
    assert rhomb_fill(two, o) < 0.7


def test_robust_slope_and_ratio_edge_cases():
    assert robust_slope([0, 1, 2], [1.0, np.nan, 5.0]) == pytest.approx(2.0)
    assert math.isnan(robust_slope([0, 1, 2], [1.0, np.nan, 5.0], min_points=3))
    assert math.isnan(robust_slope([1, 1, 1], [1.0, 2.0, 3.0]))
    assert math.isnan(velocity_ratio([np.nan, 0.3], [0.1, -0.1]))
    assert velocity_ratio([0.3, 0.2, np.nan], [0.1, 0.1, 0.1], [1, 3, 1]) == pytest.approx(
        0.9 / 0.4
    )
    # weights decide between two tracks that disagree
    v = [[0.3, 0.3, 0.1, 0.1], [0.1, 0.1, 0.3, 0.3]]
    assert obtuse_sides(v, [5, 1]) == (0, 1)
    assert obtuse_sides(v, [1, 5]) == (2, 3)
    assert obtuse_sides([[np.nan, 1, 1, 1]]) == (0, 1)
    with pytest.raises(ValueError, match="times"):
        side_velocities(np.zeros((3, 4)), [0.0, 1.0])
