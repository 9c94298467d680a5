"""Tests of napari_calcite_afm.kinetics.rates: rate maps, height reference, table, TIFF."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_calcite_afm.kinetics import (
    NM_S_TO_MOL_M2_S,
    RATE_COLUMNS,
    KineticsError,
    height_reference,
    rate_maps,
    rate_table,
    write_rates_tif,
)

STEP = 0.31


def _pair(seed=0, size=64, noise=0.02, offset=1.7, swept=(slice(0, 16), slice(None))):
    """Two frames: the second lost one step on ``swept`` and sits ``offset`` nm higher."""
    rng = np.random.default_rng(seed)
    z0 = rng.normal(0, noise, (size, size))
    z1 = z0 + offset + rng.normal(0, noise, (size, size))
    z1[swept] -= STEP
    return np.stack([z0, z1])


def test_sign_units_and_shape():
    movie = _pair()
    r = rate_maps(movie, [10.0, 310.0])
    assert r.shape == (1, 64, 64) and r.dtype == np.float32
    # removed material: positive, in nm/s
    assert np.median(r[0, :16]) == pytest.approx(STEP / 300.0, rel=0.05)
    assert abs(np.median(r[0, 16:])) < 0.02 * STEP / 300.0
    # a frame interval instead of the times gives the same maps
    np.testing.assert_allclose(rate_maps(movie, 300.0), r)


def test_the_height_reference_removes_a_constant_offset():
    for offset in (-4.0, 0.0, 2.5):
        ref = height_reference(_pair(offset=offset))
        assert ref.offsets_nm[0] == pytest.approx(offset, abs=0.005)
        assert ref.unchanged_fraction[0] > 0.6 and ref.messages == []
        assert ref.noise_nm[0] == pytest.approx(0.02 * np.sqrt(2), rel=0.3)


def test_the_reference_is_not_pulled_by_the_swept_pixels():
    """A third of the frame lost a step: the median would sit low, the level must not."""
    movie = _pair(seed=1, noise=0.05, offset=0.0, swept=(slice(0, 22), slice(None)))
    ref = height_reference(movie)
    d = movie[1] - movie[0]
    assert np.median(d) < -0.025  # what a plain median would have given
    assert abs(ref.offsets_nm[0]) < 0.02


def test_labels_choose_the_unchanged_surface():
    """Most of the frame dropped by 2 nm (a deep pit deepened): only the terrace label
    says which part did not change."""
    movie = _pair(offset=0.5, swept=(slice(0, 8), slice(None)))
    movie[1, 20:] -= 2.0
    labels = np.full(movie.shape, 2, np.uint8)
    labels[:, 20:] = 1
    without = height_reference(movie).offsets_nm[0]
    with_labels = height_reference(movie, labels).offsets_nm[0]
    assert with_labels == pytest.approx(0.5, abs=0.01)
    assert without == pytest.approx(-1.5, abs=0.05)  # the pit's level won the vote
    r = rate_maps(movie, 300.0, labels)
    assert np.median(r[0, 30:]) == pytest.approx(2.0 / 300.0, rel=0.05)


def test_no_clear_unchanged_part_gives_a_message():
    """Two unrelated smooth surfaces: their difference has no level at all."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    movie = np.stack([ndimage.gaussian_filter(rng.normal(size=(64, 64)), 6) * 10 for _ in range(2)])
    movie += rng.normal(0, 0.02, movie.shape)
    ref = height_reference(movie)
    assert ref.unchanged_fraction[0] < 0.25
    assert any("no clear unchanged surface" in m and "0-1" in m for m in ref.messages)


def _swept_most(noise: float, kept: float, seed: int = 4, offset: float = 0.8) -> np.ndarray:
    """Two frames between which steps swept most of the surface: ``kept`` of it unchanged,
    the rest lower by one step (a tenth of that by two), the second ``offset`` nm higher."""
    rng = np.random.default_rng(seed)
    size = 128
    z0 = rng.normal(0, noise, (size, size))
    drop = np.where(rng.random((size, size)) < kept, 0, 1)
    drop[rng.random((size, size)) < 0.1 * (1 - kept)] = 2
    drop = np.sort(drop, axis=None).reshape(size, size)  # swept areas in bands
    z1 = z0 + offset + rng.normal(0, noise, (size, size)) - STEP * drop
    return np.stack([z0, z1])


def test_a_surface_that_steps_swept_almost_everywhere_is_referenced_a_step_up():
    """Dissolution only lowers the surface: a peak one step above the densest level is
    the surface that did not change, and the pair says what it did."""
    for kept in (0.12, 0.3):
        ref = height_reference(_swept_most(0.04, kept))
        assert ref.offsets_nm[0] == pytest.approx(0.8, abs=0.03)
        assert ref.unchanged_fraction[0] == pytest.approx(kept, abs=0.08)
        assert len(ref.messages) == 1 and "steps swept most" in ref.messages[0]
        assert "0-1" in ref.messages[0]


def test_no_step_up_where_most_did_not_change_or_noise_hides_the_steps():
    ref = height_reference(_swept_most(0.04, 0.7))  # the densest level is the unchanged one
    assert ref.offsets_nm[0] == pytest.approx(0.8, abs=0.02) and ref.messages == []
    # noise comparable to the step: the peaks cannot be told apart, the level stays
    ref = height_reference(_swept_most(0.15, 0.12))
    assert ref.offsets_nm[0] < 0.8 - 0.2
    assert not any("steps swept most" in m for m in ref.messages)


def test_nan_where_the_frames_do_not_both_cover_the_pixel():
    movie = _pair()
    movie[0, :, :5] = np.nan  # frame 0 shifted in from the left
    movie[1, -3:] = np.nan  # frame 1 lost its last lines
    r = rate_maps(movie, 300.0)
    assert np.isnan(r[0, :, :5]).all() and np.isnan(r[0, -3:]).all()
    assert np.isfinite(r[0, :-3, 5:]).all()
    # too few common pixels: no reference, no rates, a message
    movie[1, :, 3:] = np.nan
    ref = height_reference(movie)
    assert np.isnan(ref.offsets_nm[0]) and "fewer than" in ref.messages[0]
    assert np.isnan(rate_maps(movie, 300.0, reference=ref)).all()


def test_table_identities():
    rng = np.random.default_rng(3)
    rates = rng.normal(0.001, 0.0005, (2, 32, 32)).astype(np.float32)
    rates[1, :4] = np.nan
    labels = np.full((3, 32, 32), 2, np.uint8)
    labels[1, 10:20, 10:20] = 1
    labels[2, 10:22, 10:22] = 3
    times = [0.0, 300.0, 650.0]
    table = rate_table(rates, times, 11.7, labels)
    rows = table.to_rows()
    assert [list(r) for r in rows] == [list(RATE_COLUMNS)] * 2
    for k, row in enumerate(rows):
        valid = np.isfinite(rates[k])
        dt = times[k + 1] - times[k]
        assert row["frame"] == k and row["time_s"] == times[k] and row["dt_s"] == dt
        # volume = mean rate * dt * valid area
        area = valid.sum() * 11.7**2
        assert row["dissolved_volume_nm3"] == pytest.approx(row["rate_nm_s"] * dt * area, rel=1e-9)
        for key in ("", "_pits", "_terrace"):
            assert row[f"rate{key}_mol_m2_s"] == pytest.approx(
                row[f"rate{key}_nm_s"] * 2.708e-5, rel=1e-3
            )
        pits = valid & (np.isin(labels[k], (1, 3)) | np.isin(labels[k + 1], (1, 3)))
        terrace = valid & (labels[k] == 2) & (labels[k + 1] == 2)
        assert row["rate_pits_nm_s"] == pytest.approx(rates[k][pits].mean(), rel=1e-6)
        assert row["rate_terrace_nm_s"] == pytest.approx(rates[k][terrace].mean(), rel=1e-6)
        # pits and terrace split the labelled pixels: the mean is their weighted mean
        mean = (row["rate_pits_nm_s"] * pits.sum() + row["rate_terrace_nm_s"] * terrace.sum()) / (
            pits.sum() + terrace.sum()
        )
        assert row["rate_nm_s"] == pytest.approx(mean, rel=1e-6)
    assert NM_S_TO_MOL_M2_S == pytest.approx(2.708e-5, rel=1e-3)
    no_labels = rate_table(rates, times, 11.7).to_rows()[0]
    assert np.isnan(no_labels["rate_pits_nm_s"]) and np.isnan(no_labels["rate_terrace_mol_m2_s"])
    json.dumps(table.to_dict(), allow_nan=True)


def test_smoothing_averages_the_pixel_noise_and_keeps_nan_and_the_mean():
    """A quarter swept by one step, in noise of a third of a step: a 1 px Gaussian
    brings the map closer to the truth; NaN stays NaN and does not spread."""
    movie = _pair(seed=5, noise=0.1)
    movie[1, :, :4] = np.nan  # frame 1 lost its first columns
    truth = np.zeros(movie.shape[1:])
    truth[:16] = STEP / 300.0
    plain = rate_maps(movie, 300.0)[0]
    soft = rate_maps(movie, 300.0, smooth_px=1.0)[0]
    ok = np.isfinite(plain)
    assert np.array_equal(ok, np.isfinite(soft))
    err_plain = np.abs(plain[ok] - truth[ok]).mean()
    err_soft = np.abs(soft[ok] - truth[ok]).mean()
    assert err_soft < 0.6 * err_plain
    assert np.corrcoef(soft[ok], truth[ok])[0, 1] > np.corrcoef(plain[ok], truth[ok])[0, 1]
    assert abs(soft[ok].mean() - plain[ok].mean()) < 0.02 * abs(plain[ok].mean())
    assert np.array_equal(rate_maps(movie, 300.0, smooth_px=0.0)[0], plain, equal_nan=True)
    with pytest.raises(KineticsError, match="smooth_px"):
        rate_maps(movie, 300.0, smooth_px=-1.0)


def test_bad_input_gives_kinetics_errors():
    movie = _pair()
    with pytest.raises(KineticsError, match="at least 2 frames"):
        rate_maps(movie[:1], 300.0)
    with pytest.raises(KineticsError, match="one time per frame"):
        rate_maps(movie, [0.0, 300.0, 600.0])
    with pytest.raises(KineticsError, match="increase"):
        rate_maps(movie, [300.0, 300.0])
    with pytest.raises(KineticsError, match="do not match"):
        rate_maps(movie, 300.0, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(KineticsError, match="pixel_size_nm"):
        rate_table(np.zeros((1, 4, 4)), 300.0, 0.0)
    with pytest.raises(KineticsError, match="3-D"):
        rate_maps(movie[0], 300.0)


def test_progress_and_stop():
    from napari_calcite_afm.errors import Cancelled

    movie = np.concatenate([_pair(), _pair(seed=5)[1:]])
    seen = []
    rate_maps(movie, 300.0, progress=seen.append)
    assert [d["frame"] for d in seen] == [0, 1] and seen[0]["stage"] == "rates"
    with pytest.raises(Cancelled):
        rate_maps(movie, 300.0, stop=lambda: True)


def test_write_rates_tif_round_trip(tmp_path):
    import tifffile

    r = rate_maps(_pair(), 300.0)
    r[0, 0, 0] = np.nan
    out = write_rates_tif(tmp_path / "rates.tif", r, 11.7, frame_interval_s=300.0)
    with tifffile.TiffFile(out) as tif:
        data = tif.asarray()
        ij = tif.imagej_metadata
    assert data.dtype == np.float32 and data.size == r.size
    np.testing.assert_array_equal(np.reshape(data, r.shape), r)
    assert ij["vunit"] == "nm/s" and ij["finterval"] == 300.0
    info = json.loads(ij["Info"])["napari_calcite_afm"]
    assert info["pixel_size_nm"] == 11.7 and info["metadata"]["unit"] == "nm/s"
