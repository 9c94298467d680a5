"""Bruker NanoScope files (napari_calcite_afm.io.bruker) against AFMReader and the sources."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


@pytest.mark.parametrize(
    "name",
    [
        "nanoafmr_Veeco_20160622.003",
        "nanoafmr_kpg20080408.007",
        "topostats_old_bruker.002",
        "topostats_old_bruker.004",
    ],
)
def test_bruker_matches_afmreader(real, afmreader, name):
    ref, ref_px = afmreader("spm").load_spm(real(name), "Height")
    stack = read_stack(real(name))
    assert stack.channel == "Height"
    assert stack.pixel_size_nm == pytest.approx(ref_px, rel=1e-12)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6, atol=1e-4)


def test_bruker_figures_from_sources(real):
    grating = read_stack(real("topostats_old_bruker.002")).heights
    assert float(grating.min()) == pytest.approx(52.3, abs=0.1)
    assert float(grating.max()) == pytest.approx(757.1, abs=0.1)
    defect = read_stack(real("topostats_old_bruker.004")).heights
    assert float(defect.min()) == pytest.approx(-994.07, abs=0.1)
    assert float(defect.max()) == pytest.approx(-81.70, abs=0.1)


def test_bruker_second_channel_and_channel_list(real, afmreader):
    path = real("nanoafmr_Veeco_20160622.003")
    assert list_channels(path) == ["Height", "Amplitude"]
    ref, _ = afmreader("spm").load_spm(path, "Amplitude")
    stack = read_stack(path, "amplitude")  # case-insensitive match
    assert stack.channel == "Amplitude"
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)
    with pytest.raises(AFMFileError) as info:
        read_stack(path, "Phase")
    assert "Height, Amplitude" in info.value.problem and path.name in str(info.value)


def _edited(real, tmp_path, old: bytes, new: bytes):
    """A copy of a small NanoScope file with one header field changed."""
    data = real("topostats_old_bruker.002").read_bytes()
    assert old in data
    path = tmp_path / "edited.002"
    path.write_bytes(data.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"\\Bytes/pixel: 2", b"\\Bytes/pixel: 4294967296", "4294967296 bytes per pixel"),
        (b"\\Data length: 40960", b"\\Data length: 99999999999", "declares 99999999999 bytes"),
        (b"\\Data offset: 40960", b"\\Data offset: 4096000", "an image needs bytes 4096000"),
        (b"\\Number of lines: 256", b"\\Number of lines: 000", "Number of lines is 0"),
        (b"\\Bytes/pixel: 2", b"\\Bytes/pixel: two", "Bytes/pixel is b'two'"),
    ],
)
def test_bruker_header_is_checked_before_pyspm_reads(real, tmp_path, old, new, match):
    path = _edited(real, tmp_path, old, new)
    for call in (read_stack, list_channels):
        with pytest.raises(AFMFileError, match=match) as info:
            call(path)
        assert info.value.path == path
