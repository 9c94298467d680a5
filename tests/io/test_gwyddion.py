"""Gwyddion .gwy files (napari_calcite_afm.io.gwyddion): the own parser against AFMReader."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


def test_gwy_matches_afmreader_where_afmreader_is_right(real, afmreader):
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


def test_gwy_files_afmreader_misreads(real, afmreader):
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


@pytest.mark.parametrize(
    ("key", "fmt", "value", "match"),
    [
        (b"xres\x00i", "<i", -256, "has 256 x -256 pixels"),
        (b"xreal\x00d", "<d", 1e-300, "outside what an AFM records"),
        (b"xreal\x00d", "<d", float("nan"), "outside what an AFM records"),
    ],
)
def test_gwy_corrupt_sizes_are_refused(real, tmp_path, key, fmt, value, match):
    data = bytearray(real("synthetic_topostats_orientation_square.gwy").read_bytes())
    at = data.index(key) + len(key)
    struct.pack_into(fmt, data, at, value)
    path = tmp_path / "edited.gwy"
    path.write_bytes(bytes(data))
    with pytest.raises(AFMFileError, match=match):
        read_stack(path)


def test_gwy_without_channels_is_refused_by_list_channels(tmp_path):
    path = tmp_path / "empty.gwy"
    path.write_bytes(b"GWYP" + b"GwyContainer\x00" + struct.pack("<I", 0))
    with pytest.raises(AFMFileError, match="holds no image channel"):
        list_channels(path)


def _gwy_with_units(path, xy: str, z: str):
    """A one-channel Gwyddion file with the given unit strings, written by gwyfile."""
    from gwyfile.objects import GwyContainer, GwyDataField

    container = GwyContainer()
    values = np.linspace(1e-9, 5e-9, 64).reshape(8, 8)
    container["/0/data"] = GwyDataField(values, 8e-7, 8e-7, si_unit_xy=xy, si_unit_z=z)
    container["/0/data/title"] = "Current"
    container.tofile(str(path))
    return path


def test_gwy_units_are_gwyddions_si_units(tmp_path):
    # "A" is the ampere in a Gwyddion file: a current is not taken for angstroms
    amp = read_stack(_gwy_with_units(tmp_path / "a.gwy", "m", "A"))
    assert amp.metadata["z_unit"] == "A" and amp.pixel_size_nm == pytest.approx(100.0)
    assert amp.heights.max() == pytest.approx(5e-9)
    metres = read_stack(_gwy_with_units(tmp_path / "m.gwy", "m", "m"))
    assert metres.metadata["z_unit"] == "nm" and metres.heights.max() == pytest.approx(5.0)


def test_gwy_stack_description_is_checked(tmp_path):
    from napari_calcite_afm.io import write_gwy
    from napari_calcite_afm.io.gwyddion import GWY_STACK_KEY

    out = write_gwy(tmp_path / "s.gwy", np.zeros((2, 8, 8)), 1.0)
    data = out.read_bytes()
    key = GWY_STACK_KEY.encode() + b"\x00s"
    start = data.index(key) + len(key)
    end = data.index(b"\x00", start)
    text = data[start:end]
    assert b'"height": [0, 1]' in text
    bad = tmp_path / "bad.gwy"
    bad.write_bytes(data[:start] + text.replace(b"[0, 1]", b"[0, 7]") + data[end:])
    with pytest.raises(AFMFileError, match="names data fields that the file lacks"):
        read_stack(bad)
    bad.write_bytes(data[:start] + text.replace(b"{", b"(", 1) + data[end:])
    with pytest.raises(AFMFileError, match="corrupt stack description"):
        list_channels(bad)
