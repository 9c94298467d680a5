"""Asylum Research .ibw files (napari_calcite_afm.io.asylum): AFMReader and its corrections."""

from __future__ import annotations

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
    assert stack.pixel_size_nm == pytest.approx(ref_px, rel=1e-9)  # square scans: same
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


def test_ibw_non_square_scan_pixel_size_is_corrected(real, afmreader):
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
