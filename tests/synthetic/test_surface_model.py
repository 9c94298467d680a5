"""Tests of napari_calcite_afm.synthetic.surface_model: the random model of a series."""

from __future__ import annotations

import json

import numpy as np

from napari_calcite_afm.synthetic import SeriesParams
from napari_calcite_afm.synthetic.surface_model import _build_model


def test_build_model_is_deterministic_and_records_what_it_drew():
    params = SeriesParams(size=64, n_multilayer=2, roughness=0.02, orientation_deg=10.0)
    m1, d1 = _build_model(np.random.default_rng(4), params, duration_s=900.0, pad=12)
    m2, d2 = _build_model(np.random.default_rng(4), params, duration_s=900.0, pad=12)
    assert d1 == d2
    np.testing.assert_array_equal(m1.waviness_nm, m2.waviness_nm)
    np.testing.assert_array_equal(m1.mono.t0, m2.mono.t0)
    assert m1.canvas_size == 64 + 24 and m1.waviness_nm.shape == (88, 88)
    assert d1["n_multilayer"] == 2 and m1.multi.x.size == 2
    assert d1["orientation_deg"] == 10.0 and m1.rough_terrace_nm == 0.02
    json.dumps(d1)
