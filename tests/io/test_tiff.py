"""Reading TIFF files (napari_calcite_afm.io.tiff): scale, units, pages, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.io import AFMFileError, read_stack, write_tiff


def test_plain_tiff_in_metres_with_z_unit(real):
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
