"""Tests of napari_calcite_afm.level.settings: LevelSettings and its validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_calcite_afm.level import (
    ROW_METHODS,
    LevelError,
    LevelSettings,
    polynomial_background,
    remove_background,
    row_offsets,
)
from napari_calcite_afm.level.settings import MAX_ORDER


def test_settings_roundtrip_json():
    s = LevelSettings(background_order=3, row_method="polynomial", row_order=2, scars=False)
    d = json.loads(json.dumps(s.to_dict()))
    assert LevelSettings.from_dict(d) == s
    assert LevelSettings.from_dict({}) == LevelSettings()
    assert LevelSettings.from_dict({"outlier_sigma": 3}).outlier_sigma == 3.0


def test_settings_unknown_key_named():
    with pytest.raises(LevelError, match="row_metod"):
        LevelSettings.from_dict({"row_metod": "median"})
    assert issubclass(LevelError, ValueError)


@pytest.mark.parametrize(
    "kw",
    [
        {"row_method": "mean"},
        {"background_order": -1},
        {"background_order": 1.5},
        {"robust_iterations": True},
        {"outlier_sigma": 0},
        {"outlier_sigma": "x"},
    ],
)
def test_settings_bad_values(kw):
    with pytest.raises(LevelError):
        LevelSettings(**kw)


def test_settings_accept_every_row_method():
    for method in ROW_METHODS:
        assert LevelSettings(row_method=method).row_method == method


def test_orders_no_scanner_needs_are_refused():
    """``background_order=99`` ran for minutes and overflowed to +-inf; 8 is the bound."""
    assert MAX_ORDER == 8
    assert LevelSettings(background_order=8, row_method="polynomial", row_order=8).row_order == 8
    for kw in ({"background_order": 9}, {"row_order": 99}):
        with pytest.raises(LevelError, match=r"must be at most 8 .* got 9"):
            LevelSettings(**kw)
    z = np.random.default_rng(0).normal(size=(32, 32))
    for call in (
        lambda: polynomial_background(z, order=9),
        lambda: remove_background(z, order=99),
        lambda: row_offsets(z, "polynomial", order=9),
    ):
        with pytest.raises(LevelError, match="order must be at most 8"):
            call()
    assert np.isfinite(remove_background(z, order=8)).all()
