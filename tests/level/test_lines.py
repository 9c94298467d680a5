"""Tests of napari_calcite_afm.level.lines: scan lines that failed as a whole.

Synthetic frames with known faults first (settling lines, lost lines, lines offset far
beyond the surface, lines stuck at the range limit), then what must *not* be taken for
a fault (scars, ordinary offsets, pits spanning whole rows, noise-free patterns), then
every real instrument file of ``shared/data/afm-real`` (skipped where it is absent).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.io import read_stack
from napari_calcite_afm.io.nanosurf_ntmdt import converter_available
from napari_calcite_afm.level import (
    BadLines,
    LevelError,
    LevelSettings,
    find_bad_lines,
    level_frame,
)
from napari_calcite_afm.level.lines import _fill_lines


def _film(seed, shape=(128, 160), rough=2.0):
    """A rough film (grains about 8 px, ``rough`` nm RMS), tilted, with 0.05 nm noise."""
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(size=shape), 3.0)
    z *= rough / z.std()
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    return z + 0.02 * xx + 0.01 * yy + rng.normal(0, 0.05, shape), rng


def _standout(out, k=5):
    """Largest |row median - median of the medians of up to k rows either side| (nm),
    as a multiple of the frame's RMS roughness (rows without data skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        med = np.nanmedian(out, axis=1)
    med = med[np.isfinite(med)]
    dev = [
        med[i] - np.median(np.r_[med[max(0, i - k) : i], med[i + 1 : i + 1 + k]])
        for i in range(med.size)
    ]
    return float(np.max(np.abs(dev)) / np.nanstd(out))


def _plane_free_rms(a, b, rows):
    """RMS (nm) of a - b over ``rows`` after a best-fit plane is removed."""
    d = (np.asarray(a, float) - b)[rows]
    yy, xx = np.nonzero(np.isfinite(d))
    m = np.stack([np.ones(yy.size), xx, yy], 1)
    r = d[yy, xx] - m @ np.linalg.lstsq(m, d[yy, xx], rcond=None)[0]
    return float(np.sqrt(np.mean(r**2)))


# ---------------------------------------------------------------- faults are found


@pytest.mark.parametrize("at_end", [False, True])
def test_settling_lines_are_missing(at_end):
    z, rng = _film(1)
    bad_rows = [125, 126, 127] if at_end else [0, 1]
    # the scanner settling: 140 nm below, its own tilt, nothing of the surface
    z[bad_rows] = rng.normal(-140.0, 3.0, (len(bad_rows), 160)) + np.linspace(5, -7, 160)
    bad = find_bad_lines(z)
    assert isinstance(bad, BadLines) and bad.found
    assert np.flatnonzero(bad.garbage).tolist() == bad_rows
    assert np.flatnonzero(bad.missing).tolist() == bad_rows
    assert not bad.offsets.any()
    out = level_frame(z)
    assert np.isnan(out[bad_rows]).all()
    assert np.isfinite(np.delete(out, bad_rows, axis=0)).all()
    assert _standout(out) < 3
    clean = level_frame(_film(1)[0])
    good = np.setdiff1d(np.arange(128), bad_rows)
    assert _plane_free_rms(out, clean, good) < 0.1  # 5 % of the 2 nm roughness


def test_lost_lines_inside_are_interpolated():
    z, rng = _film(2)
    other, _ = _film(99)
    z[60] = other[60]  # a line of another place: within the range, uncorrelated
    z[90:93] = rng.normal(-50.0, 10.0, (3, 160))  # three lines of garbage, far below
    bad = find_bad_lines(z)
    assert np.flatnonzero(bad.garbage).tolist() == [60, 90, 91, 92]
    assert not bad.missing.any() and not bad.offsets.any()
    out = level_frame(z)
    assert np.isfinite(out).all()
    # interpolated between the lines beside
    np.testing.assert_allclose(out[60], (out[59] + out[61]) / 2, atol=1e-4)
    np.testing.assert_allclose(out[91], (out[89] + out[93]) / 2, atol=1e-4)
    assert _standout(out) < 3
    clean = level_frame(_film(2)[0])
    good = np.setdiff1d(np.arange(128), [60, 90, 91, 92])
    assert _plane_free_rms(out, clean, good) < 0.1


def test_lines_offset_far_beyond_the_surface_are_aligned():
    z, _ = _film(3)
    clean = z.copy()
    z[40:80] += 300.0  # a band of lines offset as a whole (scanner jump)
    z[-1] -= 250.0  # the last line alone, at the edge
    bad = find_bad_lines(z)
    assert not bad.garbage.any()
    # within the rows' own difference on a 2 nm film (the row alignment refines it)
    assert bad.offsets[40] - bad.offsets[39] == pytest.approx(300.0, abs=0.5)
    assert bad.offsets[80] - bad.offsets[79] == pytest.approx(-300.0, abs=0.5)
    assert bad.offsets[-1] - bad.offsets[-2] == pytest.approx(-250.0, abs=0.5)
    assert np.count_nonzero(np.diff(bad.offsets)) == 3
    out = level_frame(z)
    assert _standout(out) < 3
    assert _plane_free_rms(out, level_frame(clean), slice(None)) < 0.1
    # row_method="none" leaves the offsets alone
    out = level_frame(z, LevelSettings(row_method="none"))
    assert np.nanmedian(out[40:80]) - np.nanmedian(out[:40]) > 200


def test_lines_stuck_at_the_range_limit_are_missing():
    z, _ = _film(4)
    z[100:] = z.max() + 5.0  # the tip lost the surface: the z scanner saturated
    bad = find_bad_lines(z)
    assert np.flatnonzero(bad.missing).tolist() == list(range(100, 128))
    out = level_frame(z)
    assert np.isnan(out[100:]).all() and np.isfinite(out[:100]).all()
    assert _standout(out) < 3


# ---------------------------------------------------------------- what is not a fault


@pytest.mark.parametrize("seed", [0, 1, 2, 8, 32, 64, 65, 91])
def test_scars_and_ordinary_offsets_are_not_line_faults(synth, seed):
    # synthetic calcite with scan-line offsets (jumps 0.3-1 nm) and scars up to 100 px
    # long (seeds 8, 32, 64, 65, 91: scars over a third of a line, taken for garbage by
    # a median spread in development)
    _, raw, _, _ = synth.frame(seed)
    assert not find_bad_lines(raw).found


def test_a_pit_spanning_whole_rows_is_not_an_offset(synth):
    # a multilayer pit 20 nm deep over half the frame, 19 rows wholly inside it
    rng = np.random.default_rng(5)
    z, _ = synth.calcite_surface(rng, (256, 256), n_deep=0)
    depth, inside = synth.pit_depth_map((256, 256), (128, 128), 90, 0.0, 20.0)
    assert inside.all(axis=1).sum() == 19
    truth = z - depth
    raw, _ = synth.add_artifacts(rng, truth, scars=0)
    assert not find_bad_lines(raw).found
    out = level_frame(raw, LevelSettings(zero_mean=False))
    assert synth.rms_error(out, truth) < 0.5  # 0.375 nm, as before line faults were sought


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pit_covered_frame_has_no_line_fault(pit_covered_frame, seed):
    raw, _ = pit_covered_frame(seed)
    assert not find_bad_lines(raw).found


@pytest.mark.parametrize("seed", [7_500_021, 7_500_031, 7_700_057])
def test_pit_dominated_frames_have_no_line_fault(seed):
    # the frames of test_frame.py whose pits cover a band of rows or most of the frame
    from napari_calcite_afm.synthetic import make_frame

    raw, _, _ = make_frame(512, seed=seed)
    assert not find_bad_lines(raw).found


def test_noise_free_patterns_and_tiny_frames_are_left_alone():
    # an orientation pattern: flat rows at the frame's minimum, raised letters
    z = np.zeros((64, 80))
    z[10:30, 10:14] = z[26:30, 10:30] = 1.3
    for image in (
        z,
        np.zeros((4, 8)),
        np.zeros((2, 5)),
        np.full((8, 9), np.nan),
        np.arange(12.0).reshape(3, 4),
    ):
        bad = find_bad_lines(image)
        assert not bad.found
        assert bad.garbage.shape == bad.offsets.shape == (image.shape[0],)
    out = level_frame(z)
    assert np.isfinite(out).all()


def test_bad_input_raises():
    with pytest.raises(LevelError, match="2-D"):
        find_bad_lines(np.zeros(5))
    for order in (-1, 9, 1.5):
        with pytest.raises(LevelError, match="background_order"):
            find_bad_lines(np.zeros((4, 4)), background_order=order)


def test_fill_lines_interpolates_between_the_lines_beside():
    z = np.tile(np.arange(6.0)[:, None], (1, 3))  # 0..5 down the columns
    z[3, 1] = np.nan
    lines = np.array([False, True, True, False, False, True])
    out = _fill_lines(z, lines)
    np.testing.assert_allclose(out[1:3, [0, 2]], [[1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(out[1:3, 1], [0.0, 0.0])  # NaN below: the other side
    np.testing.assert_allclose(out[5], [4.0, 4.0, 4.0])  # the edge: copied
    assert np.array_equal(out[~lines], z[~lines], equal_nan=True)


# ---------------------------------------------------------------- real files

#: Every file of shared/data/afm-real that read_stack reads.
REAL_FILES = [
    "afmreader_sample_0.h5-jpk",
    "afmreader_sample_0.jpk",
    "afmreader_sample_0.stp",
    "afmreader_sample_0.top",
    "afmreader_sample_0_1.topostats",
    "nanoafmr_AR_20211011.ibw",
    "nanoafmr_Park_20210916_034.tiff",
    "nanoafmr_Veeco_20160622.003",
    "nanoafmr_kpg20080408.007",
    "playnano_asd_sample_0.asd",
    "scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw",
    "scifi_IgorIBWReader_P0089OP0027.ibw",
    "scifi_PTO_110_Virgin0001.gwy",
    "synthetic_topostats_orientation_landscape.gwy",
    "synthetic_topostats_orientation_square.gwy",
    "tono_LB_media0002.ibw",
    "tono_float32_height_m.tiff",
    "tono_whiskers.ibw",
    "topostats_old_bruker.002",
    "topostats_old_bruker.004",
]
#: Read through the optional gwyddion extra (gwyddionpy's converter) where it is installed.
if converter_available():
    REAL_FILES += ["nanoafmr_NanoSurf_20160301.nid", "scifi_test_mdt.mdt"]
#: The ASD movie's frames from 22 on: the tip loses the surface (the z scanner drifts
#: by up to 150 nm within a frame, then most lines sit at the range limits 0 and
#: -249.3 nm); the lines really stand out there, and nothing can level them.
ASD_DEAD_FROM = 22


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_stack(path).heights


def test_the_real_file_list_is_complete(real_dir):
    readable = []
    for path in sorted(real_dir.iterdir()):
        try:
            _read(path)
        except ValueError:  # CalciteAFMError: formats not supported (yet)
            continue
        readable.append(path.name)
    assert sorted(readable) == sorted(REAL_FILES)


@pytest.mark.parametrize("name", REAL_FILES)
def test_no_scan_line_stands_out_after_levelling(real_dir, name):
    heights = _read(real_dir / name)
    n = ASD_DEAD_FROM if name.endswith(".asd") else heights.shape[0]
    for f in range(n):
        out = level_frame(heights[f])
        assert _standout(out) < 3, (name, f)


def test_veeco_settling_and_lost_lines(real_dir):
    # rows 0-1: the scanner settling (140 nm below, nothing of the surface); rows
    # 480-482 and 508-509: lost lines (50-60 nm below, scrambled)
    z = _read(real_dir / "nanoafmr_Veeco_20160622.003")[0]
    bad = find_bad_lines(z)
    assert np.flatnonzero(bad.garbage).tolist() == [0, 1, 480, 481, 482, 508, 509]
    assert np.flatnonzero(bad.missing).tolist() == [0, 1]
    assert not bad.offsets.any()
    out = level_frame(z)
    assert np.isnan(out[:2]).all() and np.isfinite(out[2:]).all()
    med = np.median(out[2:], axis=1)
    assert np.abs(med).max() < 3 * np.std(out[2:])  # was 141 nm off, 16 x the RMS


def test_real_lost_line_and_dead_frames(real_dir):
    # BTFO: line 198 drifts up and drops 3 nm halfway (a feedback glitch)
    z = _read(real_dir / "scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw")[0]
    assert np.flatnonzero(find_bad_lines(z).garbage).tolist() == [198]
    # the ASD movie: nothing in its good frames; lines stuck at the range limit later
    asd = _read(real_dir / "playnano_asd_sample_0.asd")
    assert not any(find_bad_lines(asd[f]).found for f in range(ASD_DEAD_FROM))
    stuck = find_bad_lines(asd[26]).missing
    assert stuck.sum() == 157 and (asd[26][stuck] == asd.min()).all()
