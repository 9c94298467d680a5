"""The "wide" variety of the standard generator, and the standard one left unchanged."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.synthetic import (
    SeriesParams,
    make_frame,
    make_frames,
    make_series,
    make_training_frames,
)
from napari_calcite_afm.synthetic.crystal import STEP_HEIGHT_NM
from napari_calcite_afm.synthetic.wide import WALL_KINDS, _draw_wide

# sha256 (first 16 hex digits) of the standard generator's outputs, computed with the
# code BEFORE the wide variety existed (numpy 2.4, scipy 1.17): the switch must not
# change a single number of the standard variety (tests, the shipped models and the
# benchmarks depend on it)
STANDARD_HASHES = {
    "frame0": "136ae70df6740644",
    "frame1": "9f1ad3e4e3e78ab0",
    "frame5": "f4c0a10d490a0bdd",
    "frame42": "03851534a2f013ba",
    "series3": "9c7a9408c4a87236",
    "series17": "8baa13dc7af68aac",
    "frames": "28ba54fce00b2eeb",
    "frame_px5": "08a39ae5f73094d5",
    # the params record of the series, "variety" (the one new key) left out
    "series3_params": "133e9b4c542aa4b4",
    "series17_params": "22349837eae24dae",
}


def _hash(*arrays) -> str:
    m = hashlib.sha256()
    for a in arrays:
        m.update(np.ascontiguousarray(a).tobytes())
    return m.hexdigest()[:16]


def test_standard_variety_is_unchanged_bit_for_bit():
    got = {}
    for s in (0, 1, 5, 42):
        got[f"frame{s}"] = _hash(*make_frame(64, seed=s, return_hidden=True))
    for s in (3, 17):
        ser = make_series(n_frames=3, size=64, seed=s)
        got[f"series{s}"] = _hash(ser.raw, ser.clean, ser.labels, ser.labels_raw, ser.drift_px)
        params = dict(ser.params)
        assert params.pop("variety") == "standard"
        text = json.dumps(params, sort_keys=True).encode()
        got[f"series{s}_params"] = hashlib.sha256(text).hexdigest()[:16]
    got["frames"] = _hash(*make_frames(2, 48, seed0=7))
    got["frame_px5"] = _hash(*make_frame(64, seed=8, pixel_size_nm=5.0))
    assert got == STANDARD_HASHES


def test_wide_draws_span_the_stated_ranges():
    draws = [_draw_wide(SeriesParams(variety="wide", seed=s, size=512)) for s in range(100)]
    px = np.array([w.pixel_size_nm for w in draws])
    assert px.min() >= 2.0 and px.max() <= 20.0
    assert px.min() < 2.5 and px.max() > 16.0
    assert 5.0 < np.median(px) < 8.0  # log-uniform: median about sqrt(2 x 20) = 6.3
    for key, lo, hi in (
        ("step_density_per_um", 0.3, 15.0),
        ("step_velocity_nm_s", 0.06, 1.0),
        ("monolayer_density_per_um2", 0.05, 20.0),
        ("roughness", 0.005, 0.15),
        ("noise_nm", 0.01, 0.3),
    ):
        v = np.array([w.fill[key] for w in draws])
        assert v.min() >= lo and v.max() <= hi, key
        assert v.max() / v.min() > 0.3 * hi / lo, key  # spans most of the range
    n_multi = np.array([w.fill["n_multilayer"] for w in draws])
    assert (n_multi == 0).any() and (n_multi >= 3).any()
    assert {w.corner_rounding_nm == 0 for w in draws} == {True, False}
    assert any(w.aspect < 0.8 for w in draws) and any(w.aspect > 1.3 for w in draws)
    ratio = np.array([w.obtuse_to_acute for w in draws])
    assert ratio.min() < 1.8 and ratio.max() > 3.0
    offsets = np.array([w.scan["row_offset_nm"] for w in draws])
    assert offsets.min() < 0.1 and offsets.max() > 1.5


def test_given_settings_replace_the_draws():
    w = _draw_wide(SeriesParams(variety="wide", seed=3, pixel_size_nm=4.0, roughness=0.0))
    assert w.pixel_size_nm == 4.0 and "roughness" not in w.fill
    assert _draw_wide(SeriesParams(seed=3)) is None  # the standard variety draws nothing


def test_wide_series_records_its_draws_and_remakes_itself():
    s = make_series(3, 64, seed=12, variety="wide")
    drawn = s.params["drawn"]
    assert s.params["variety"] == "wide" and s.params["pixel_size_nm"] is None
    assert drawn["pixel_size_nm"] == s.pixel_size_nm
    assert 2.0 <= s.pixel_size_nm <= 20.0
    wide = drawn["wide"]
    assert set(wide) >= {"walls", "scan", "roughness", "corner_rounding_nm", "aspect"}
    for pit in drawn["multilayer_pits"]:
        assert pit["wall"] in WALL_KINDS
    json.dumps(s.params)
    again = make_series(params=SeriesParams.from_dict(s.params))
    for name in ("raw", "clean", "labels", "labels_raw", "drift_px"):
        np.testing.assert_array_equal(getattr(again, name), getattr(s, name), err_msg=name)


def test_wide_frames_differ_from_standard_and_by_seed():
    a = make_frame(64, seed=4, variety="wide")[0]
    b = make_frame(64, seed=5, variety="wide")[0]
    c = make_frame(64, seed=4)[0]
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_array_equal(a, make_frame(64, seed=4, variety="wide")[0])


def test_pixel_size_is_respected_and_returned():
    *_, px = make_frame(48, seed=2, variety="wide", pixel_size_nm=5.0, return_pixel_size=True)
    assert px == 5.0
    raw, _labels, pxs = make_frames(3, 32, seed0=20, variety="wide", return_pixel_size=True)
    assert raw.shape == (3, 32, 32) and pxs.shape == (3,)
    assert len(set(pxs.tolist())) == 3 and np.all((pxs >= 2) & (pxs <= 20))
    _, _, std_px = make_frames(1, 32, seed0=20, return_pixel_size=True)
    assert std_px.tolist() == [11.7]


@pytest.mark.parametrize("seed", [30, 31, 32, 33])
def test_wide_labels_follow_the_heights(seed):
    """Without roughness and artifacts: whole steps outside smooth-walled pits, labels 1-3,
    multilayer pits deeper than the terrace around them."""
    raw, clean, labels = make_frame(
        96, seed=seed, variety="wide", roughness=0.0, artifacts=False, n_multilayer=2
    )
    assert set(np.unique(labels)) <= {1, 2, 3}
    np.testing.assert_array_equal(raw, clean)
    steps = clean / STEP_HEIGHT_NM
    off_pit = labels != 1
    assert np.allclose(steps[off_pit], np.round(steps[off_pit]), atol=1e-3)
    if (labels == 1).any() and (labels == 2).any():
        assert np.median(clean[labels == 1]) < np.median(clean[labels == 2])


def test_make_frames_any_jobs_same_frames_and_bad_variety():
    one = make_frames(2, 32, seed0=40, variety="wide")
    two = make_frames(2, 32, seed0=40, variety="wide", jobs=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CalciteAFMError, match="variety"):
        make_frames(1, 32, variety="broad")
    with pytest.raises(CalciteAFMError, match="variety"):
        make_series(1, 32, variety="broad")


def test_training_frames_by_generator_name():
    raw, labels, px = make_training_frames("mix", 3, 32, seed0=50, return_pixel_size=True)
    assert raw.shape == (3, 32, 32) and labels.dtype == np.uint8 and px.shape == (3,)
    # even positions: wide frames with seeds 50, 51; odd: cellular with seed 52
    np.testing.assert_array_equal(raw[0], make_frame(32, seed=50, variety="wide")[0])
    np.testing.assert_array_equal(raw[2], make_frame(32, seed=51, variety="wide")[0])
    # "all": standard, wide, cellular in turn, each part on its own block of seeds
    every = make_training_frames("all", 4, 32, seed0=60)
    np.testing.assert_array_equal(every[0][0], make_frame(32, seed=60)[0])
    np.testing.assert_array_equal(every[0][3], make_frame(32, seed=61)[0])
    np.testing.assert_array_equal(every[0][1], make_frame(32, seed=62, variety="wide")[0])
    cell = make_training_frames("cellular", 1, 32, seed0=63)
    np.testing.assert_array_equal(every[0][2], cell[0][0])
    np.testing.assert_array_equal(every[1][2], cell[1][0])
    # frames (almost) wholly inside a pit can be dropped
    full = make_training_frames("wide", 8, 64, seed0=70)
    share = (full[1] == 1).mean(axis=(1, 2))
    kept = make_training_frames("wide", 8, 64, seed0=70, max_pit_fraction=0.5)
    assert 0 < len(kept[0]) == int((share <= 0.5).sum()) < 8
    np.testing.assert_array_equal(kept[0], full[0][share <= 0.5])
    std = make_training_frames("standard", 2, 32, seed0=50)
    np.testing.assert_array_equal(std[0], make_frames(2, 32, seed0=50)[0])
    with pytest.raises(CalciteAFMError, match="generator"):
        make_training_frames("other", 1, 32)
