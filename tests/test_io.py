"""Tests of napari_calcite_afm.io: real instrument files, TIFF/npy round trips, bad input."""

from __future__ import annotations

import gc
import json
import os
import pickle
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_calcite_afm import io
from napari_calcite_afm.io import (
    SUPPORTED_EXTENSIONS,
    AFMFileError,
    AFMStack,
    CalciteAFMError,
    is_supported,
    labels_to_two_class,
    list_channels,
    read_labels,
    read_stack,
    write_tiff,
)


# ----------------------------------------------------------------------------- data
def _find_real_data() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "afm-real"
    if here.is_dir():
        return here
    env = os.environ.get("CALCITE_AFM_REAL_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    return None


REAL = _find_real_data()
needs_real = pytest.mark.skipif(REAL is None, reason="shared/data/afm-real not available")


def real(name: str) -> Path:
    assert REAL is not None
    return REAL / name


def afmreader(module: str):
    """An AFMReader module with its loguru output silenced (the reference reader)."""
    import importlib

    from loguru import logger

    mod = importlib.import_module(f"AFMReader.{module}")
    logger.disable("AFMReader")
    return mod


def read_quiet(path, *args, **kwargs) -> AFMStack:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_stack(path, *args, **kwargs)


# Every file in shared/data/afm-real: expected format, shape (frames, rows, cols),
# pixel size in nm (SOURCES.md), or None where the file must be refused.
EXPECTED = {
    "afmreader_sample_0.h5-jpk": ("h5-jpk", (4, 128, 128), 1.171875),
    "afmreader_sample_0.jpk": ("jpk", (1, 256, 256), 1.2770176335964876),
    "afmreader_sample_0.stp": ("stp", (1, 512, 512), 0.9765625),
    "afmreader_sample_0.top": ("top", (1, 512, 512), 0.9765625),
    "afmreader_sample_0_1.topostats": ("topostats", (1, 64, 64), 1.97601171875),
    "nanoafmr_AR_20211011.ibw": ("ibw", (1, 128, 128), 31.25),
    "nanoafmr_NanoSurf_20160301.nid": None,
    "nanoafmr_Park_20210916_034.tiff": ("park-tiff", (1, 256, 256), 2500 / 256),
    "nanoafmr_Veeco_20160622.003": ("spm", (1, 512, 512), 3.455234375),
    "nanoafmr_kpg20080408.007": ("spm", (1, 256, 256), 3.90625),
    "playnano_asd_sample_0.asd": ("asd", (32, 200, 200), 0.5),
    "scifi_GwiddionReader_chip_legacyGWYO.gwy": None,
    "scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw": ("ibw", (1, 256, 256), 7.8125),
    "scifi_IgorIBWReader_P0089OP0027.ibw": ("ibw", (1, 256, 256), 7.8125),
    "scifi_PTO_110_Virgin0001.gwy": ("gwy", (1, 256, 256), 10040 / 256),
    "scifi_test_mdt.mdt": None,
    "synthetic_topostats_orientation_landscape.gwy": ("gwy", (1, 170, 220), 1000 / 220),
    "synthetic_topostats_orientation_square.gwy": ("gwy", (1, 256, 256), 3.90625),
    "tono_LB_media0002.ibw": ("ibw", (1, 256, 256), 75000 / 256),
    "tono_float32_height_m.tiff": ("tiff", (1, 512, 1024), 1.0),
    "tono_whiskers.ibw": ("ibw", (1, 512, 256), 30000 / 256),
    "topostats_old_bruker.002": ("spm", (1, 256, 256), 58.59375),
    "topostats_old_bruker.004": ("spm", (1, 256, 256), 58.59375),
}


# ============================================================================= real files
@needs_real
def test_every_real_file_is_read_or_refused_cleanly():
    files = sorted(p for p in REAL.iterdir() if p.is_file() and p.suffix != ".md")
    assert files, "no data files"
    for path in files:
        expected = EXPECTED.get(path.name)
        if expected is None:
            with pytest.raises(AFMFileError) as info:
                read_quiet(path)
            assert path.name in str(info.value)
            if path.name in EXPECTED:  # known refusals: mdt, nid, legacy GWYO
                assert "not supported" in info.value.problem
            continue
        fmt, shape, px = expected
        stack = read_quiet(path)
        assert stack.format == fmt, path.name
        assert stack.heights.dtype == np.float32
        assert stack.heights.shape == shape, path.name
        assert stack.pixel_size_nm == pytest.approx(px, rel=2e-4), path.name
        assert np.isfinite(stack.heights).any()
        assert stack.source == str(path)
        json.dumps(stack.metadata)  # JSON-friendly


@needs_real
@pytest.mark.parametrize(
    "name",
    [
        "nanoafmr_Veeco_20160622.003",
        "nanoafmr_kpg20080408.007",
        "topostats_old_bruker.002",
        "topostats_old_bruker.004",
    ],
)
def test_bruker_matches_afmreader(name):
    ref, ref_px = afmreader("spm").load_spm(real(name), "Height")
    stack = read_stack(real(name))
    assert stack.channel == "Height"
    assert stack.pixel_size_nm == pytest.approx(ref_px, rel=1e-12)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6, atol=1e-4)


@needs_real
def test_bruker_figures_from_sources():
    grating = read_stack(real("topostats_old_bruker.002")).heights
    assert float(grating.min()) == pytest.approx(52.3, abs=0.1)
    assert float(grating.max()) == pytest.approx(757.1, abs=0.1)
    defect = read_stack(real("topostats_old_bruker.004")).heights
    assert float(defect.min()) == pytest.approx(-994.07, abs=0.1)
    assert float(defect.max()) == pytest.approx(-81.70, abs=0.1)


@needs_real
def test_bruker_second_channel_and_channel_list():
    path = real("nanoafmr_Veeco_20160622.003")
    assert list_channels(path) == ["Height", "Amplitude"]
    ref, _ = afmreader("spm").load_spm(path, "Amplitude")
    stack = read_stack(path, "amplitude")  # case-insensitive match
    assert stack.channel == "Amplitude"
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)
    with pytest.raises(AFMFileError) as info:
        read_stack(path, "Phase")
    assert "Height, Amplitude" in info.value.problem and path.name in str(info.value)


@needs_real
@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("nanoafmr_AR_20211011.ibw", "HeightRetrace"),
        ("scifi_IgorIBWReader_P0089OP0027.ibw", "HeightRetrace"),
        ("scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw", "HeightRetrace"),
        ("tono_LB_media0002.ibw", "HeightTrace"),
    ],
)
def test_ibw_matches_afmreader(name, channel):
    ref, ref_px = afmreader("ibw").load_ibw(real(name), channel)
    stack = read_stack(real(name))
    assert stack.channel == channel
    assert stack.metadata["z_unit"] == "nm"
    assert stack.pixel_size_nm == pytest.approx(ref_px, rel=1e-9)  # square scans: same
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


@needs_real
def test_ibw_non_square_scan_pixel_size_is_corrected():
    path = real("tono_whiskers.ibw")
    ref, ref_px = afmreader("ibw").load_ibw(path, "HeightRetrace")
    assert ref_px == pytest.approx(234.375)  # AFMReader: SlowScanSize / points
    stack = read_stack(path)
    assert stack.shape == (512, 256)
    # Fast 30 um over 256 points = Slow 60 um over 512 lines = 117.1875 nm
    assert stack.pixel_size_nm == pytest.approx(117.1875)
    assert stack.metadata["pixel_size_y_nm"] == pytest.approx(117.1875)
    assert stack.metadata["pixel_size_afmreader_nm"] == pytest.approx(234.375)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


@needs_real
def test_ibw_channel_names_are_cleaned_and_both_spellings_work():
    path = real("scifi_IgorIBWReader_P0089OP0027.ibw")
    assert list_channels(path) == [
        "HeightRetrace",
        "AmplitudeRetrace",
        "DeflectionRetrace",
        "PhaseRetrace",
        "UserIn0Retrace",
    ]
    ref, _ = afmreader("ibw").load_ibw(path, "PhaseRetracerace")  # igor2's spelling
    clean = read_stack(path, "PhaseRetrace")
    garbled = read_stack(path, "PhaseRetracerace")
    # AFMReader multiplies every channel by 1e9; phase is in degrees
    assert clean.metadata["z_unit"] == "deg"
    np.testing.assert_allclose(clean.heights[0], ref / 1e9, rtol=1e-6)
    np.testing.assert_array_equal(clean.heights, garbled.heights)
    with pytest.raises(AFMFileError, match="HeightRetrace, AmplitudeRetrace"):
        read_stack(path, "HeightTrace")


@needs_real
def test_gwy_matches_afmreader_where_afmreader_is_right():
    path = real("scifi_PTO_110_Virgin0001.gwy")
    assert list_channels(path) == [
        "HeightRetrace",
        "AmplitudeRetrace",
        "DeflectionRetrace",
        "PhaseRetrace",
    ]
    ref, ref_px = afmreader("gwy").load_gwy(path, "HeightRetrace")
    stack = read_stack(path)
    assert stack.channel == "HeightRetrace"
    assert stack.pixel_size_nm == pytest.approx(ref_px, rel=1e-9)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6, atol=1e-5)
    # phase is in degrees: not scaled to nm (AFMReader multiplies it by 1e9)
    phase = read_stack(path, "PhaseRetrace")
    assert phase.metadata["z_unit"] == "deg"
    assert np.nanmax(np.abs(phase.heights)) < 360


@needs_real
def test_gwy_files_afmreader_misreads():
    square = real("synthetic_topostats_orientation_square.gwy")
    landscape = real("synthetic_topostats_orientation_landscape.gwy")
    with pytest.raises(ValueError, match="not found"):  # AFMReader's bug, for the record
        afmreader("gwy").load_gwy(square, "Left_Top_Right_Bottom")
    sq = read_stack(square)
    assert sq.shape == (256, 256) and sq.pixel_size_nm == pytest.approx(3.90625)

    with pytest.warns(UserWarning, match="not square"):
        la = read_stack(landscape)
    assert la.shape == (170, 220)  # AFMReader: (220, 170), sheared
    assert la.pixel_size_nm == pytest.approx(1000 / 220)
    assert la.metadata["pixel_size_y_nm"] == pytest.approx(1000 / 170)
    ref, _ = afmreader("gwy").load_gwy(landscape, "Left_Top_Right_Bottom")
    assert ref.shape == (220, 170)
    # same values, correctly laid out row by row
    np.testing.assert_allclose(la.heights[0], ref.reshape(170, 220), rtol=1e-6, atol=1e-6)
    # both files show the same 1 um x 1 um pattern: resampled, they must agree
    from scipy import ndimage

    resampled = ndimage.zoom(la.heights[0].astype(float), (256 / 170, 256 / 220), order=1)
    target = sq.heights[0].astype(float).ravel()
    corr = np.corrcoef(resampled.ravel(), target)[0, 1]
    assert corr > 0.99
    assert corr > np.corrcoef(resampled[::-1].ravel(), target)[0, 1]
    sheared = ndimage.zoom(ref.astype(float), (256 / 220, 256 / 170), order=1)
    assert np.corrcoef(sheared.ravel(), target)[0, 1] < 0.6


@needs_real
def test_jpk_matches_afmreader():
    path = real("afmreader_sample_0.jpk")
    with warnings.catch_warnings():  # AFMReader leaves the TIFF open
        warnings.simplefilter("ignore", ResourceWarning)
        ref, ref_px = afmreader("jpk").load_jpk(path, "height_trace")
        gc.collect()
    stack = read_stack(path)
    assert stack.channel == "height_trace"
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)
    channels = list_channels(path)
    assert "height_trace" in channels and "phase_retrace" in channels and len(channels) == 10


@needs_real
def test_h5jpk_matches_afmreader_with_frame_times():
    path = real("afmreader_sample_0.h5-jpk")
    ref, ref_px, _stamps = afmreader("h5_jpk").load_h5jpk(path, "height_trace")
    stack = read_stack(path)
    assert stack.n_frames == 4
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights, ref, rtol=1e-6)
    np.testing.assert_allclose(stack.frame_times_s, [0.0, 3.2, 6.4, 9.6])
    assert stack.frame_interval_s == pytest.approx(3.2)


@needs_real
def test_asd_matches_afmreader_and_playnano_sum():
    path = real("playnano_asd_sample_0.asd")
    ref, ref_px, _header = afmreader("asd").load_asd(path, "TP")
    stack = read_stack(path)
    assert stack.channel == "TP" and list_channels(path) == ["TP"]
    assert stack.pixel_size_nm == pytest.approx(ref_px) == 0.5
    np.testing.assert_allclose(stack.heights, ref, rtol=1e-6)
    assert float(stack.heights.astype(np.float64).sum()) == pytest.approx(-251179816.918, rel=1e-6)
    assert stack.frame_interval_s == pytest.approx(1.0)  # 1000 ms per frame
    assert stack.frame_times_s[-1] == pytest.approx(31.0)


@needs_real
def test_wsxm_stp_matches_afmreader():
    path = real("afmreader_sample_0.stp")
    ref, ref_px = afmreader("stp").load_stp(path)
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


@needs_real
def test_wsxm_top_z_amplitude_is_not_truncated():
    path = real("afmreader_sample_0.top")
    ref, ref_px = afmreader("top").load_top(path)
    assert float(ref.max()) == pytest.approx(59.0)  # AFMReader reads "59.7449 nm" as 59
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    assert float(stack.heights.max()) == pytest.approx(59.7449, rel=1e-6)
    np.testing.assert_allclose(stack.heights[0], ref * 59.7449 / 59, rtol=1e-6)


@needs_real
def test_topostats_matches_afmreader():
    path = real("afmreader_sample_0_1.topostats")
    ref = afmreader("topostats").load_topostats(path)
    stack = read_stack(path)
    assert stack.channel == "image"
    assert stack.pixel_size_nm == pytest.approx(ref["pixel_to_nm_scaling"])
    np.testing.assert_allclose(stack.heights[0], ref["image"], rtol=1e-6)


@needs_real
def test_park_tiff_heights_from_private_tags():
    path = real("nanoafmr_Park_20210916_034.tiff")
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        raw = np.frombuffer(tags[50434].value, "<f4").reshape(256, 256)
        header = tags[50435].value
    gain = struct.unpack_from("<d", header, 220)[0]
    unit = header[244:260].decode("utf-16-le").split("\x00")[0]
    assert unit == "um" and gain == pytest.approx(-4.5094, abs=1e-4)
    stack = read_stack(path)
    assert stack.channel == "Topography"
    assert stack.pixel_size_nm == pytest.approx(2500 / 256)
    # stored bottom row first, um -> nm
    np.testing.assert_allclose(stack.heights[0], np.flipud(raw) * gain * 1000, rtol=1e-6)
    # a flat film with round pits about 2 nm deep (median at the film level)
    h = stack.heights[0] - np.median(stack.heights[0])
    assert -3.0 < np.percentile(h, 1) < -1.5
    assert abs(np.percentile(h, 50)) < 1e-6


@needs_real
def test_plain_tiff_in_metres_with_z_unit():
    path = real("tono_float32_height_m.tiff")
    raw = tifffile.imread(path)
    with pytest.warns(UserWarning, match="z_unit='m'"):
        as_is = read_stack(path)
    assert as_is.metadata["pixel_size_assumed"] is True
    assert as_is.metadata["z_unit_assumed"] is True
    stack = read_stack(path, z_unit="m", pixel_size_nm=0.2)
    assert stack.shape == (512, 1024)
    assert stack.pixel_size_nm == 0.2
    np.testing.assert_allclose(stack.heights[0], raw.astype(np.float64) * 1e9, rtol=1e-6)
    assert -1.8 < float(stack.heights.min()) < -1.6
    assert 2.3 < float(stack.heights.max()) < 2.5


@needs_real
@pytest.mark.parametrize(
    "name",
    [
        "scifi_test_mdt.mdt",
        "nanoafmr_NanoSurf_20160301.nid",
        "scifi_GwiddionReader_chip_legacyGWYO.gwy",
    ],
)
def test_files_without_loader_are_refused(name):
    with pytest.raises(AFMFileError) as info:
        read_stack(real(name))
    assert name in str(info.value)
    assert "not supported" in info.value.problem
    with pytest.raises(AFMFileError):
        list_channels(real(name))


@needs_real
def test_afmreader_logging_is_silenced(capfd):
    read_stack(real("nanoafmr_kpg20080408.007"))
    read_stack(real("afmreader_sample_0.stp"))
    out, err = capfd.readouterr()
    assert "INFO" not in err and "Loading image" not in err + out


# ============================================================================= stacks
@needs_real
def test_folder_of_real_frames_and_list_input(tmp_path):
    a, b = real("topostats_old_bruker.002"), real("topostats_old_bruker.004")
    folder = tmp_path / "movie"
    folder.mkdir()
    shutil.copy(a, folder / "grating.002")
    shutil.copy(b, folder / "grating.004")
    (folder / "notes.txt").write_text("not a frame")
    stack = read_stack(folder)
    assert stack.n_frames == 2 and stack.format == "spm"
    np.testing.assert_array_equal(stack.heights[0], read_stack(a).heights[0])
    np.testing.assert_array_equal(stack.heights[1], read_stack(b).heights[0])
    assert stack.source == str(folder)
    assert is_supported(folder)

    reversed_ = read_stack([b, a])
    np.testing.assert_array_equal(reversed_.heights[0], stack.heights[1])
    np.testing.assert_array_equal(reversed_.heights[1], stack.heights[0])
    assert reversed_.metadata["files"] == [str(b), str(a)]


@needs_real
def test_list_with_different_frame_shapes_names_the_file(tmp_path):
    small, big = real("nanoafmr_AR_20211011.ibw"), real("nanoafmr_kpg20080408.007")
    with pytest.raises(AFMFileError) as info:
        read_stack([small, big])
    assert info.value.path == big
    assert "(256, 256)" in info.value.problem and "(128, 128)" in info.value.problem


def test_folder_natural_order(tmp_path):
    for i in (10, 2, 1):
        write_tiff(tmp_path / f"frame_{i}.tif", np.full((4, 5), float(i)), 2.0)
    (tmp_path / ".hidden.tif").write_bytes(b"junk")
    stack = read_stack(tmp_path)
    assert stack.heights.shape == (3, 4, 5)
    np.testing.assert_array_equal(stack.heights[:, 0, 0], [1.0, 2.0, 10.0])
    assert stack.pixel_size_nm == 2.0
    assert [Path(f).name for f in stack.metadata["files"]] == [
        "frame_1.tif",
        "frame_2.tif",
        "frame_10.tif",
    ]


def test_folder_with_mismatched_shapes(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((4, 5)), 1.0)
    write_tiff(tmp_path / "b.tif", np.zeros((6, 5)), 1.0)
    with pytest.raises(AFMFileError) as info:
        read_stack(tmp_path)
    assert info.value.path == tmp_path / "b.tif"
    assert "(6, 5)" in info.value.problem and "(4, 5)" in info.value.problem


def test_folder_with_mismatched_pixel_sizes(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((4, 5)), 1.0)
    write_tiff(tmp_path / "b.tif", np.zeros((4, 5)), 2.0)
    with pytest.raises(AFMFileError, match="pixel size"):
        read_stack(tmp_path)


def test_empty_folder_and_empty_list(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(AFMFileError, match="no supported AFM file"):
        read_stack(tmp_path)
    assert not is_supported(tmp_path)
    with pytest.raises(AFMFileError, match="empty"):
        read_stack([])


# ============================================================================= TIFF
def test_tiff_round_trip_heights(tmp_path):
    rng = np.random.default_rng(0)
    heights = rng.normal(size=(3, 20, 30)).astype(np.float32)
    heights[1, 2, 3] = np.nan
    out = write_tiff(
        tmp_path / "new" / "dir" / "stack.tif",
        heights,
        3.455234375,
        frame_interval_s=2.5,
        metadata={"sample": "calcite", "n": np.int64(3)},
    )
    assert out == tmp_path / "new" / "dir" / "stack.tif" and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["stack.tif"]  # no temp file left
    stack = read_stack(out)
    assert stack.format == "tiff"
    assert stack.pixel_size_nm == 3.455234375
    np.testing.assert_array_equal(stack.heights, heights)  # NaN kept
    assert np.isnan(stack.heights[1, 2, 3])
    np.testing.assert_allclose(stack.frame_times_s, [0.0, 2.5, 5.0])
    assert stack.frame_interval_s == 2.5
    assert stack.metadata["saved"]["metadata"] == {"sample": "calcite", "n": 3}
    assert "pixel_size_assumed" not in stack.metadata
    # what Fiji / napari see
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        assert ij["unit"] == "nm" and ij["frames"] == 3 and ij["finterval"] == 2.5
        assert tif.series[0].axes == "TYX"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(3.455234375, rel=1e-9)
        assert tif.pages[0].dtype == np.float32


def test_tiff_round_trip_2d_and_unit(tmp_path):
    frame = np.arange(12, dtype=np.float64).reshape(3, 4)
    out = write_tiff(tmp_path / "one.tiff", frame * 1e-3, 7.0, unit="um")
    stack = read_stack(out)
    assert stack.heights.shape == (1, 3, 4)
    np.testing.assert_allclose(stack.heights[0], frame, rtol=1e-6)  # um -> nm
    assert stack.frame_times_s is None and stack.frame_interval_s is None


def test_tiff_round_trip_labels(tmp_path):
    labels = np.zeros((2, 6, 7), dtype=np.int64)
    labels[0, :3] = 1
    labels[1, 3:] = 3
    labels[:, :, 0] = 2
    out = write_tiff(tmp_path / "labels.tif", labels, 4.25)
    assert tifffile.imread(out).dtype == np.uint8
    back = read_labels(out, shape=(2, 6, 7))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    assert read_stack(out).pixel_size_nm == 4.25
    # a single frame comes back as one frame
    write_tiff(tmp_path / "one.tif", labels[0].astype(bool), 1.0)
    assert read_labels(tmp_path / "one.tif").shape == (1, 6, 7)


def test_write_tiff_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "keep.tif"
    write_tiff(out, np.ones((4, 4)), 1.0)
    before = out.read_bytes()

    def broken(*args, **kwargs):
        Path(args[0]).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(RuntimeError):
        write_tiff(out, np.zeros((4, 4)), 1.0)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


@pytest.mark.parametrize(
    ("data", "px", "match"),
    [
        (np.zeros((2, 2, 2, 2, 2)), 1.0, "shape"),
        (np.zeros((0, 4)), 1.0, "empty"),
        (np.array([["a"]]), 1.0, "numeric"),
        (np.zeros((3, 3)), 0.0, "positive"),
        (np.zeros((3, 3)), float("nan"), "positive"),
    ],
)
def test_write_tiff_rejects_bad_input(tmp_path, data, px, match):
    with pytest.raises(CalciteAFMError, match=match):
        write_tiff(tmp_path / "x.tif", data, px)
    assert not list(tmp_path.iterdir())


def test_tiff_pixel_size_from_imagej_micron_and_cm(tmp_path):
    a = tmp_path / "fiji.tif"
    tifffile.imwrite(
        a, np.zeros((5, 6), np.float32), imagej=True, resolution=(50.0, 50.0),
        metadata={"unit": "micron"},
    )  # fmt: skip
    assert read_stack(a).pixel_size_nm == pytest.approx(20.0)  # 1/50 um
    b = tmp_path / "cm.tif"
    tifffile.imwrite(
        b, np.zeros((5, 6), np.float32), resolution=(1e5, 1e5), resolutionunit="CENTIMETER"
    )
    assert read_stack(b).pixel_size_nm == pytest.approx(100.0)  # 1e-5 cm
    c = tmp_path / "plain.tif"
    tifffile.imwrite(c, np.zeros((5, 6), np.float32))
    assumed = read_stack(c)
    assert assumed.pixel_size_nm == 1.0 and assumed.metadata["pixel_size_assumed"] is True
    given = read_stack(c, pixel_size_nm=2.5)
    assert given.pixel_size_nm == 2.5 and "pixel_size_assumed" not in given.metadata


def test_multipage_tiff_is_frames(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:
        for i in range(3):
            tw.write(np.full((4, 5), i, np.uint16))
    stack = read_stack(path, pixel_size_nm=1.5)
    assert stack.heights.shape == (3, 4, 5) and stack.heights.dtype == np.float32
    np.testing.assert_array_equal(stack.heights[:, 0, 0], [0, 1, 2])


def test_multipage_tiff_with_different_page_shapes(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(np.zeros((4, 5), np.float32))
        tw.write(np.zeros((6, 5), np.float32))
    with pytest.raises(AFMFileError, match=r"\(6, 5\).*\(4, 5\)"):
        read_stack(path)


def test_multichannel_imagej_tiff_is_refused(tmp_path):
    path = tmp_path / "two_channels.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 4, 5), np.float32), imagej=True,
                     metadata={"axes": "TCYX"})  # fmt: skip
    with pytest.raises(AFMFileError, match="2 channels"):
        read_stack(path)


def test_tiff_value_units(tmp_path):
    deg = write_tiff(tmp_path / "phase.tif", np.full((4, 4), 12.5), 1.0, unit="deg")
    phase = read_stack(deg, z_unit="m")  # a non-length unit in the file is kept as is
    assert phase.metadata["z_unit"] == "deg"
    np.testing.assert_array_equal(phase.heights, 12.5)
    nm = write_tiff(tmp_path / "nm.tif", np.full((4, 4), 3.0), 1.0)
    with pytest.warns(UserWarning, match="ignored"):
        kept = read_stack(nm, z_unit="um")  # the file's own unit wins
    np.testing.assert_array_equal(kept.heights, 3.0)


def test_rgb_tiff_is_refused(tmp_path):
    path = tmp_path / "screenshot.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(AFMFileError) as info:
        read_stack(path)
    assert "RGB image, not a height map" in info.value.problem
    assert str(path) in str(info.value)


# ============================================================================= numpy
def test_npy_2d_and_3d(tmp_path):
    frame = np.arange(20, dtype=np.float64).reshape(4, 5)
    np.save(tmp_path / "f.npy", frame)
    stack = read_stack(tmp_path / "f.npy", pixel_size_nm=2.0)
    assert stack.format == "npy" and stack.heights.shape == (1, 4, 5)
    assert stack.pixel_size_nm == 2.0
    np.testing.assert_array_equal(stack.heights[0], frame)
    movie = np.stack([frame, frame * 2, frame * 3])
    np.save(tmp_path / "m.npy", movie * 1e-9)
    stack = read_stack(tmp_path / "m.npy", z_unit="m")
    assert stack.metadata["pixel_size_assumed"] is True
    np.testing.assert_allclose(stack.heights, movie, rtol=1e-6)


def test_npz_keys(tmp_path):
    h = np.random.default_rng(1).normal(size=(3, 6, 7))
    np.savez(
        tmp_path / "a.npz", labels=np.zeros((3, 6, 7)), heights=h, pixel_size_nm=2.5,
        frame_times_s=np.array([0.0, 10.0, 20.0]),
    )  # fmt: skip
    stack = read_stack(tmp_path / "a.npz")
    assert stack.format == "npz" and stack.channel == "heights"
    np.testing.assert_allclose(stack.heights, h, rtol=1e-6)
    assert stack.pixel_size_nm == 2.5 and stack.frame_interval_s == 10.0
    assert list_channels(tmp_path / "a.npz") == ["labels", "heights"]
    np.savez(tmp_path / "b.npz", topo=h[0])
    first = read_stack(tmp_path / "b.npz")
    assert first.channel == "topo" and first.heights.shape == (1, 6, 7)
    with pytest.raises(AFMFileError, match="channel 'nope' not found"):
        read_stack(tmp_path / "b.npz", "nope")


# ============================================================================= bad input
def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(AFMFileError) as info:
        read_stack(tmp_path / "missing.spm")
    assert info.value.problem == "file not found"
    assert str(info.value) == f"{tmp_path / 'missing.spm'}: file not found"
    odd = tmp_path / "scan.xyz"
    odd.write_bytes(b"123")
    with pytest.raises(AFMFileError) as info:
        read_stack(odd)
    assert "'.xyz'" in info.value.problem and ".ibw" in info.value.problem
    assert ".000-.999" in info.value.problem


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.ibw"
    empty.write_bytes(b"")
    with pytest.raises(AFMFileError, match="empty"):
        read_stack(empty)


TRUNCATABLE = [
    "nanoafmr_Veeco_20160622.003",
    "nanoafmr_kpg20080408.007",
    "nanoafmr_AR_20211011.ibw",
    "tono_whiskers.ibw",
    "scifi_PTO_110_Virgin0001.gwy",
    "afmreader_sample_0.jpk",
    "afmreader_sample_0.h5-jpk",
    "playnano_asd_sample_0.asd",
    "afmreader_sample_0.stp",
    "afmreader_sample_0.top",
    "afmreader_sample_0_1.topostats",
    "nanoafmr_Park_20210916_034.tiff",
    "tono_float32_height_m.tiff",
]
# An Igor file may end with bytes after the sections its header declares (the AR file
# declares 285315 of its 351163 bytes); cutting only those leaves the image whole.
CUTS = [
    (name, fraction)
    for name in TRUNCATABLE
    for fraction in (0.01, 0.5, 0.75, 0.99)
    if not (name.endswith(".ibw") and fraction > 0.8)
]


@needs_real
@pytest.mark.parametrize(("name", "fraction"), CUTS)
def test_truncated_real_files(tmp_path, name, fraction):
    data = real(name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(AFMFileError) as info:
        read_quiet(cut)
    assert info.value.path == cut and name in str(info.value)
    assert len(str(info.value)) < 600  # no raw bytes dumped into the message


@needs_real
def test_wrong_content_for_extension(tmp_path):
    fake = tmp_path / "fake.003"
    fake.write_bytes(b"hello, not a NanoScope file" * 10)
    with pytest.raises(AFMFileError, match="not a Bruker NanoScope file"):
        read_stack(fake)
    gwy = tmp_path / "fake.gwy"
    gwy.write_bytes(b"XXXX" + bytes(100))
    with pytest.raises(AFMFileError, match="not a Gwyddion file"):
        read_stack(gwy)
    tif = tmp_path / "fake.tif"
    shutil.copy(real("afmreader_sample_0.stp"), tif)
    with pytest.raises(AFMFileError, match="not a readable TIFF"):
        read_stack(tif)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((0, 5)), "empty"),
        (np.zeros((2, 0, 5)), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), "text values"),
        (np.ones((3, 3), dtype=complex), "complex"),
        (np.ones((3, 3), dtype=bool), "boolean"),
        (np.zeros(5), "2-D image"),
    ],
)
def test_bad_arrays(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(AFMFileError, match=match) as info:
        read_stack(path)
    assert info.value.path == path


def test_all_nan_frame_is_refused_partial_nan_kept(tmp_path):
    movie = np.ones((3, 4, 5), np.float32)
    movie[0, 1, 1] = np.nan
    movie[1, 2, :] = np.inf
    np.save(tmp_path / "ok.npy", movie)
    stack = read_stack(tmp_path / "ok.npy")
    assert np.isnan(stack.heights[0, 1, 1]) and np.isnan(stack.heights[1, 2]).all()
    assert np.isfinite(stack.heights).sum() == movie.size - 6
    movie[2] = np.nan
    np.save(tmp_path / "bad.npy", movie)
    with pytest.raises(AFMFileError, match="frame 2 holds no recorded pixel"):
        read_stack(tmp_path / "bad.npy")


def test_object_npy_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AFMFileError, match="Python objects"):
        read_stack(path)


def test_bad_z_unit():
    with pytest.raises(CalciteAFMError, match="unknown z_unit"):
        io._z_factor_arg("furlong")


def test_bad_z_unit_through_read_stack(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 3)))
    with pytest.raises(CalciteAFMError, match="z_unit"):
        read_stack(tmp_path / "a.npy", z_unit="V")


# ============================================================================= labels
def test_read_labels_checks_values_and_shape(tmp_path):
    good = np.zeros((2, 4, 4), np.uint8)
    good[0, 0, 0] = 3
    np.save(tmp_path / "good.npy", good)
    np.testing.assert_array_equal(read_labels(tmp_path / "good.npy", (2, 4, 4)), good)
    np.testing.assert_array_equal(read_labels(tmp_path / "good.npy", (4, 4)), good)
    with pytest.raises(AFMFileError) as info:
        read_labels(tmp_path / "good.npy", shape=(3, 4, 4))
    assert "(2, 4, 4)" in info.value.problem and "(3, 4, 4)" in info.value.problem
    assert info.value.path == tmp_path / "good.npy"

    bad = good.copy()
    bad[1, 1, 1] = 7
    write_tiff(tmp_path / "bad.tif", bad, 1.0)
    with pytest.raises(AFMFileError) as info:
        read_labels(tmp_path / "bad.tif")
    assert "bad.tif" in str(info.value) and "0..3" in info.value.problem

    np.save(tmp_path / "float.npy", good.astype(np.float32))
    assert read_labels(tmp_path / "float.npy").dtype == np.uint8
    np.save(tmp_path / "frac.npy", good.astype(np.float32) + 0.5)
    with pytest.raises(AFMFileError, match="whole numbers"):
        read_labels(tmp_path / "frac.npy")
    np.savez(tmp_path / "l.npz", heights=np.ones((4, 4)), labels=good[0])
    assert read_labels(tmp_path / "l.npz").shape == (1, 4, 4)
    with pytest.raises(AFMFileError, match="not found"):
        read_labels(tmp_path / "nothing.tif")


def test_labels_to_two_class():
    labels = np.array([[0, 1, 2, 3]], dtype=np.int32)
    out = labels_to_two_class(labels)
    np.testing.assert_array_equal(out, [[0, 1, 2, 2]])
    assert out.dtype == np.uint8
    assert labels[0, 3] == 3  # input untouched
    u8 = np.array([3, 3], np.uint8)
    assert labels_to_two_class(u8) is not u8
    with pytest.raises(CalciteAFMError):
        labels_to_two_class(np.array([4]))


# ============================================================================= API bits
def test_error_classes():
    err = AFMFileError(Path("a/b.spm"), "broken")
    assert isinstance(err, CalciteAFMError) and isinstance(err, ValueError)
    assert str(err) == f"{Path('a/b.spm')}: broken"
    assert err.path == Path("a/b.spm") and err.problem == "broken"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problem == "broken"


def test_supported_extensions_and_is_supported(tmp_path):
    assert all(e == e.lower() and e.startswith(".") for e in SUPPORTED_EXTENSIONS)
    for ext in (".spm", ".000", ".003", ".999", ".ibw", ".gwy", ".jpk", ".h5-jpk", ".asd",
                ".stp", ".top", ".topostats", ".tif", ".tiff", ".npy", ".npz"):  # fmt: skip
        assert ext in SUPPORTED_EXTENSIONS
        assert is_supported(f"scan{ext}")
    assert is_supported("SCAN.IBW") and is_supported("scan.007")
    assert not is_supported("scan.mdt") and not is_supported("scan.1234")
    assert not is_supported("scan.txt") and not is_supported(tmp_path / "none")
    assert is_supported(["a.ibw", "b.003"]) and not is_supported(["a.ibw", "b.txt"])


def test_afmstack_properties():
    s = AFMStack(heights=np.zeros((4, 3, 2), np.float32), pixel_size_nm=1.0)
    assert s.n_frames == 4 and s.shape == (3, 2)
    assert s.frame_interval_s is None and s.channel == "height" and s.format == "unknown"
    s.frame_times_s = np.array([0.0, 2.0, 4.0, 7.0])
    assert s.frame_interval_s == 2.0


def test_write_tiff_four_dimensional_probabilities(tmp_path):
    import tifffile

    probs = np.random.default_rng(0).random((3, 2, 8, 9)).astype(np.float32)
    out = write_tiff(tmp_path / "p.tif", probs, 4.0, compression="zlib")
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.asarray(), probs)
        assert tif.series[0].axes == "TCYX"
