"""Tests of napari_calcite_afm.synthetic.params: SeriesParams and make_series(params=...)."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.synthetic import SeriesParams, make_series

SETTINGS = dict(
    n_frames=3,
    size=48,
    seed=21,
    n_multilayer=1,
    monolayer_density_per_um2=1.5,
    roughness=0.03,
    drift_px_per_frame=2.0,
    pixel_size_nm=30.0,
)


def _same(a, b):
    for name in ("raw", "clean", "labels", "labels_raw", "drift_px"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert json.dumps(a.params) == json.dumps(b.params)


def test_params_give_the_same_series_as_keywords():
    _same(make_series(params=SeriesParams(**SETTINGS)), make_series(**SETTINGS))


def test_defaults_are_those_of_make_series():
    sig = inspect.signature(make_series).parameters
    for f in dataclasses.fields(SeriesParams):
        assert sig[f.name].default == f.default, f.name
    assert set(SeriesParams().to_dict()) == set(sig) - {"progress", "stop", "params"}
    # the standard variety's pixel size left to None is 11.7 nm
    assert SeriesParams().to_dict()["pixel_size_nm"] == 11.7


def test_to_dict_from_dict_and_series_record():
    params = SeriesParams(**SETTINGS)
    d = params.to_dict()
    json.dumps(d)
    assert SeriesParams.from_dict(d) == params
    series = make_series(params=params)
    assert {k: v for k, v in series.params.items() if k != "drawn"} == d
    # the record of a series makes it again
    _same(make_series(params=SeriesParams.from_dict(series.params)), series)


def test_bad_params():
    with pytest.raises(CalciteAFMError, match="not both"):
        make_series(4, params=SeriesParams(n_frames=2, size=32))
    with pytest.raises(CalciteAFMError, match="SeriesParams"):
        make_series(params={"n_frames": 2})
    with pytest.raises(CalciteAFMError, match="bogus"):
        SeriesParams.from_dict({"bogus": 1})
    with pytest.raises(CalciteAFMError, match="n_frames"):
        make_series(params=SeriesParams(n_frames=0))
    with pytest.raises(CalciteAFMError, match="size"):
        SeriesParams(size=4).check()
