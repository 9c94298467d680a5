"""Asylum Research .ibw files (napari_calcite_afm.io.asylum): AFMReader and its corrections."""

from __future__ import annotations

import re
import struct
import warnings

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("nanoafmr_AR_20211011.ibw", "HeightRetrace"),
        ("scifi_IgorIBWReader_P0089OP0027.ibw", "HeightRetrace"),
        ("scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw", "HeightRetrace"),
        ("tono_LB_media0002.ibw", "HeightTrace"),
    ],
)
def test_ibw_matches_afmreader(real, afmreader, name, channel):
    ref, ref_px = afmreader("ibw").load_ibw(real(name), channel)
    stack = read_stack(real(name))
    assert stack.channel == channel
    assert stack.metadata["z_unit"] == "nm"
    # square scans: AFMReader's ScanSize / points, here the step ScanSize / (points - 1)
    n = stack.shape[1]
    assert stack.pixel_size_nm == pytest.approx(ref_px * n / (n - 1), rel=1e-9)
    assert stack.metadata["pixel_size_scan_size_nm"] == pytest.approx(ref_px, rel=1e-9)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


def _wave_scaling_nm(path):
    """The x step per point of each dimension of the wave (Igor's sfA), in nm."""
    from igor2 import binarywave

    header = binarywave.load(path)["wave"]["wave_header"]
    assert [b"".join(header["dimUnits"][d]) for d in (0, 1)] == [b"m", b"m"]
    return [float(header["sfA"][d]) * 1e9 for d in (0, 1)]


def test_ibw_pixel_size_is_the_wave_scaling_of_every_real_file(real_dir, read_quiet):
    files = sorted(real_dir.glob("*.ibw"))
    assert len(files) == 5
    for path in files:
        stack = read_quiet(path)
        sx, sy = _wave_scaling_nm(path)
        assert stack.pixel_size_nm == pytest.approx(sx, rel=1e-12), path.name
        assert stack.metadata["pixel_size_y_nm"] == pytest.approx(sy, rel=1e-12), path.name
        assert stack.metadata["pixel_size_from"] == "wave scaling"
        # Asylum's rule: the scan size spans the first to the last point
        note = stack.metadata["note"]
        rows, cols = stack.shape
        assert sx == pytest.approx(float(note["FastScanSize"]) * 1e9 / (cols - 1), rel=1e-6)
        assert sy == pytest.approx(float(note["SlowScanSize"]) * 1e9 / (rows - 1), rel=1e-6)


def test_ibw_non_square_scan_pixel_size_is_corrected(real, afmreader):
    path = real("tono_whiskers.ibw")
    ref, ref_px = afmreader("ibw").load_ibw(path, "HeightRetrace")
    assert ref_px == pytest.approx(234.375)  # AFMReader: SlowScanSize / points
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # 0.2 % apart: no warning
        stack = read_stack(path)
    assert stack.shape == (512, 256)
    # Fast 30 um over 256 points: 30000 / 255 = 117.647 nm (Gwyddion: 117.65 nm/px);
    # Slow 60 um over 512 lines: 60000 / 511 = 117.417 nm
    assert stack.pixel_size_nm == pytest.approx(30000 / 255)
    assert stack.metadata["pixel_size_y_nm"] == pytest.approx(60000 / 511)
    assert "non_square_pixels" not in stack.metadata
    assert stack.metadata["pixel_size_scan_size_nm"] == pytest.approx(117.1875)
    assert stack.metadata["pixel_size_afmreader_nm"] == pytest.approx(234.375)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


def test_ibw_without_length_scaling_falls_back_to_the_note(real, tmp_path):
    # the wave's dimension units blanked: FastScanSize / (points - 1) from the note
    data = bytearray(real("nanoafmr_AR_20211011.ibw").read_bytes())
    units = 64 + 152  # dimUnits[4][4] of the version-5 wave header
    assert data[units : units + 1] == b"m" and data[units + 4 : units + 5] == b"m"
    data[units] = data[units + 4] = 0
    path = tmp_path / "unscaled.ibw"
    path.write_bytes(bytes(data))
    stack = read_stack(path)
    assert stack.metadata["pixel_size_from"] == "FastScanSize / (points - 1)"
    assert stack.pixel_size_nm == pytest.approx(4000 / 127)


def test_ibw_channel_names_are_cleaned_and_both_spellings_work(real, afmreader):
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


def _ibw_with(real, tmp_path, offset: int, fmt: str, value):
    """A copy of a small Asylum file with one header number replaced."""
    data = bytearray(real("nanoafmr_AR_20211011.ibw").read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path = tmp_path / "edited.ibw"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "match"),
    [
        (12, "<i", 1 << 30, "header declares 1074004512 bytes"),  # note size
        (44, "<i", 2**31 - 1, "header declares"),  # dimension labels of layers
        (16, "<i", -5, "section size is negative"),
        (64 + 68, "<i", 1, "65536 points for dimensions (1, 128, 4)"),  # nDim[0]
        (64 + 16, "<h", 0, "not a numeric Igor wave"),  # a text wave
        (0, "<h", 2, "version 2, which holds no image"),
        (0, "<h", 77, "not an Igor binary wave"),
    ],
)
def test_ibw_header_is_checked_before_igor2_reads(real, tmp_path, offset, fmt, value, match):
    path = _ibw_with(real, tmp_path, offset, fmt, value)
    for call in (read_stack, list_channels):  # list_channels makes the same checks
        with pytest.raises(AFMFileError, match=re.escape(match)):
            call(path)
