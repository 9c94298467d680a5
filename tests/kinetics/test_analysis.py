"""analyse_kinetics / write_kinetics: the whole kinetic analysis of a segmented movie."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_calcite_afm.kinetics import (
    DRIFT_COLUMNS,
    RATE_COLUMNS,
    RATE_GSG_COLUMNS,
    KineticsError,
    analyse_kinetics,
    shift_labels,
    write_kinetics,
)

PX = 10.0
DT = 300.0


def _growing_pit_movie(n=4, size=64, seed=0):
    """A terrace with one square pit that widens by 2 px and deepens by one step per frame."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 0.02, (n, size, size))
    lab = np.full((n, size, size), 2, np.uint8)
    c = size // 2
    for k in range(n):
        half = 4 + 2 * k
        lab[k, c - half : c + half, c - half : c + half] = 1
        z[k][lab[k] == 1] -= 0.31 * (k + 2)
    return z.astype(np.float32), lab


def test_rates_and_tracks_of_a_growing_pit():
    z, lab = _growing_pit_movie()
    res = analyse_kinetics(z, lab, PX, DT)
    assert res.timed and res.rates.shape == (3, 64, 64)
    assert len(res.tracks.tracks) == 1
    track = res.tracks.tracks[0]
    assert (track["first_frame"], track["last_frame"]) == (0, 3)
    # the side s grows by 4 px a frame: the area by (s + 4)^2 - s^2 = 8 s + 16 px^2
    areas = [r["area_nm2"] for r in res.tracks.pits]
    assert np.allclose(np.diff(areas), [(8 * s + 16) * PX**2 for s in (8, 12, 16)])
    for row in res.rate_table:
        assert row["rate_pits_nm_s"] > 0  # material leaves the pit
        assert abs(row["rate_terrace_nm_s"]) < 1e-4  # the terrace does not move
        # the dissolved volume is the rate integrated over the frame pair and the area
        rk = res.rates[row["frame"]]
        expected = np.nansum(rk.astype(float)) * row["dt_s"] * PX**2
        assert math.isclose(row["dissolved_volume_nm3"], expected, rel_tol=1e-5)
    summary = res.summary()
    assert summary["time_unit"] == "s" and summary["pits"]["n_tracks"] == 1


def test_no_frame_times_uses_frame_numbers_and_says_so():
    z, lab = _growing_pit_movie(3)
    res = analyse_kinetics(z, lab, PX, None)
    assert not res.timed
    assert res.frame_times_s.tolist() == [0.0, 1.0, 2.0]
    assert any("no frame times" in m for m in res.messages)
    assert res.summary()["time_unit"] == "frame"


@pytest.mark.parametrize(
    "heights, labels, match",
    [
        (np.zeros((1, 8, 8)), np.zeros((1, 8, 8), np.uint8), "at least 2 frames"),
        (np.zeros((2, 8, 8)), np.zeros((2, 8, 9), np.uint8), "must match"),
    ],
)
def test_bad_input_is_one_clear_error(heights, labels, match):
    with pytest.raises(KineticsError, match=match):
        analyse_kinetics(heights, labels, PX, DT)


def test_decreasing_times_are_refused():
    z, lab = _growing_pit_movie(3)
    with pytest.raises(KineticsError, match="increase"):
        analyse_kinetics(z, lab, PX, [0.0, 300.0, 200.0])


def test_shift_labels_follows_the_heights():
    lab = np.zeros((2, 16, 16), np.uint8)
    lab[:, 5:9, 6:10] = 1
    shifts = np.array([[0.0, 0.0], [2.0, -3.0]])
    moved = shift_labels(lab, shifts)
    expected = ndimage.shift(lab[1], shifts[1], order=0)
    assert np.array_equal(moved[1], expected)
    assert np.array_equal(moved[0], lab[0])
    assert moved.dtype == np.uint8


def test_register_moves_heights_and_labels_together():
    z, lab = _growing_pit_movie(3, 96, seed=3)
    rng = np.random.default_rng(1)
    texture = ndimage.gaussian_filter(rng.normal(0, 1.0, (96, 96)), 2)
    z = z + texture.astype(np.float32)  # something to register on
    drift = [(0, 0), (2, -1), (4, -3)]
    moved_z = np.stack(
        [ndimage.shift(z[k], d, order=1, mode="nearest") for k, d in enumerate(drift)]
    )
    moved_lab = np.stack([ndimage.shift(lab[k], d, order=0) for k, d in enumerate(drift)])
    res = analyse_kinetics(moved_z, moved_lab, PX, DT, register=True)
    assert res.registration is not None
    assert np.allclose(res.registration.shifts, -np.array(drift, float), atol=0.5)
    # the pit is back in place in every frame (to a pixel at the edges)
    pit = res.tracks.pits
    centres = {(round(r["y_nm"] / PX), round(r["x_nm"] / PX)) for r in pit}
    assert all(abs(y - 48) <= 1 and abs(x - 48) <= 1 for y, x in centres)


def test_write_kinetics_files(tmp_path):
    z, lab = _growing_pit_movie(3)
    res = analyse_kinetics(z, lab, PX, DT, register=True)
    files = write_kinetics(res, tmp_path / "out")
    assert {"drift.csv", "rates.tif", "rates.csv", "pits.csv", "tracks.csv"} <= set(files)
    assert {"kinetics.png", "rates_frames.png"} <= set(files)
    rates = tifffile.imread(files["rates.tif"])
    assert rates.dtype == np.float32 and rates.shape == (2, 64, 64)
    np.testing.assert_array_equal(rates, res.rates)
    with open(files["rates.csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(RATE_COLUMNS) and len(rows) == 2
    with open(files["drift.csv"]) as fh:
        assert next(csv.reader(fh)) == list(DRIFT_COLUMNS)
    with open(files["pits.csv"]) as fh:
        header = next(csv.reader(fh))
    assert header[:9] == [
        "track_id", "frame", "time_s", "y_nm", "x_nm", "area_nm2", "depth_nm", "volume_nm3",
        "class",
    ]  # fmt: skip


def test_gsg_rate_model_adds_the_rate_fits(tmp_path):
    z, lab = _growing_pit_movie(3, 96)
    res = analyse_kinetics(z, lab, PX, DT, rate_model="gsg")
    row = res.rate_table[0]
    assert set(RATE_GSG_COLUMNS) <= set(row)
    assert 0 < row["rate_gsg_alpha"] <= 2 and row["rate_gsg_sigma_nm_s"] > 0
    assert "rate_gsg_alpha" in res.summary()["mean"]
    files = write_kinetics(res, tmp_path, figures=False)
    with open(files["rates.csv"]) as fh:
        header = next(csv.reader(fh))
    assert header == [*RATE_COLUMNS, *RATE_GSG_COLUMNS]
    with pytest.raises(KineticsError, match="rate_model"):
        analyse_kinetics(z, lab, PX, DT, rate_model="levy")
