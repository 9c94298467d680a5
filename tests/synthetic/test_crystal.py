"""Tests of napari_calcite_afm.synthetic.crystal: rhombus geometry and vicinal steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm import synthetic
from napari_calcite_afm.synthetic import STEP_HEIGHT_NM
from napari_calcite_afm.synthetic.crystal import _crystal_axes, _draw_crystal


def test_rhombus_geometry():
    n1, n2, m1, m2 = synthetic._crystal_axes(30.0)
    # m1, m2 run along the rhombus sides (n1, n2 are their normals) ...
    assert np.dot(n1, m2) == pytest.approx(0.0, abs=1e-12)
    assert np.dot(n2, m1) == pytest.approx(0.0, abs=1e-12)
    # ... and meet at 78 degrees (the acute corner; the other corners are 102 degrees)
    cos = np.dot(m1, m2) / (np.linalg.norm(m1) * np.linalg.norm(m2))
    assert math.degrees(math.acos(cos)) == pytest.approx(synthetic.RHOMB_ACUTE_ANGLE_DEG)
    assert synthetic.RHOMB_ACUTE_ANGLE_DEG == pytest.approx(78.0)


def test_crystal_axes_are_dual():
    n1, n2, m1, m2 = _crystal_axes(-47.0)
    assert np.linalg.norm(n1) == pytest.approx(1.0) and np.linalg.norm(n2) == pytest.approx(1.0)
    assert np.dot(n1, m1) == pytest.approx(1.0) and np.dot(n2, m2) == pytest.approx(1.0)


def test_draw_crystal_records_and_keeps_given_values():
    drawn = {}
    out = _draw_crystal(np.random.default_rng(0), 12.0, 0.3, drawn)
    assert out["v_obtuse"] == 0.3
    assert out["v_acute"] == pytest.approx(0.3 / synthetic.OBTUSE_TO_ACUTE_VELOCITY)
    assert drawn["orientation_deg"] == 12.0 and drawn["obtuse_step_velocity_nm_s"] == 0.3


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


def test_surface_retreats(series):
    mean = series.clean.mean(axis=(1, 2))
    assert mean[-1] < mean[0]
