"""Reading TIFF files (napari_calcite_afm.io.tiff): scale, units, pages, refusals."""

from __future__ import annotations

import struct

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
        a, np.zeros((8, 9), np.float32), imagej=True, resolution=(50.0, 50.0),
        metadata={"unit": "micron"},
    )  # fmt: skip
    assert read_stack(a).pixel_size_nm == pytest.approx(20.0)  # 1/50 um
    b = tmp_path / "cm.tif"
    tifffile.imwrite(
        b, np.zeros((8, 9), np.float32), resolution=(1e5, 1e5), resolutionunit="CENTIMETER"
    )
    assert read_stack(b).pixel_size_nm == pytest.approx(100.0)  # 1e-5 cm
    c = tmp_path / "plain.tif"
    tifffile.imwrite(c, np.zeros((8, 9), np.float32))
    assumed = read_stack(c)
    assert assumed.pixel_size_nm == 1.0 and assumed.metadata["pixel_size_assumed"] is True
    given = read_stack(c, pixel_size_nm=2.5)
    assert given.pixel_size_nm == 2.5 and "pixel_size_assumed" not in given.metadata


def test_multipage_tiff_is_frames(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:
        for i in range(3):
            tw.write(np.full((8, 10), i, np.uint16))
    stack = read_stack(path, pixel_size_nm=1.5)
    assert stack.heights.shape == (3, 8, 10) and stack.heights.dtype == np.float32
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
    deg = write_tiff(tmp_path / "phase.tif", np.full((8, 8), 12.5), 1.0, unit="deg")
    phase = read_stack(deg, z_unit="m")  # a non-length unit in the file is kept as is
    assert phase.metadata["z_unit"] == "deg"
    np.testing.assert_array_equal(phase.heights, 12.5)
    nm = write_tiff(tmp_path / "nm.tif", np.full((8, 8), 3.0), 1.0)
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


def test_four_dimensional_tiff_is_refused_not_flattened(tmp_path):
    shaped = tmp_path / "shaped.tif"
    tifffile.imwrite(shaped, np.zeros((2, 4, 8, 8), np.float32), photometric="minisblack")
    with pytest.raises(AFMFileError, match=r"4-D stack .*save one movie per file"):
        read_stack(shaped)
    hyper = tmp_path / "tz.tif"
    tifffile.imwrite(hyper, np.zeros((2, 3, 8, 8), np.float32), imagej=True,
                     metadata={"axes": "TZYX"})  # fmt: skip
    with pytest.raises(AFMFileError, match=r"axes TZYX"):
        read_stack(hyper)
    single = tmp_path / "t1.tif"  # axes of length 1 do not count: a 3-D movie
    tifffile.imwrite(single, np.zeros((2, 1, 8, 8), np.float32), imagej=True,
                     metadata={"axes": "TZYX"})  # fmt: skip
    assert read_stack(single, pixel_size_nm=1.0).heights.shape == (2, 8, 8)


def test_uint64_tiff_read_only_where_float32_holds_the_values(tmp_path):
    small = tmp_path / "small.tif"
    values = np.arange(64, dtype=np.uint64).reshape(8, 8) * 1000
    tifffile.imwrite(small, values)
    np.testing.assert_array_equal(read_stack(small).heights[0], values.astype(np.float32))
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, values + np.uint64(2**40))
    with pytest.raises(AFMFileError, match=r"uint64 values up to \d+.*float32"):
        read_stack(big)
    negative = tmp_path / "int64.tif"
    tifffile.imwrite(negative, -values.astype(np.int64) - 2**30)
    with pytest.raises(AFMFileError, match="int64"):
        read_stack(negative)


def test_compressed_tiff_declaring_far_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.float32), compression="zlib")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        width, length = tags["ImageWidth"], tags["ImageLength"]
        for tag in (width, length):  # 8 x 8 -> 60000 x 60000 pixels (14 GB of float32)
            fmt = "<H" if tag.dtype == 3 else "<I"
            struct.pack_into(fmt, data, tag.valueoffset, 60000)
    path.write_bytes(bytes(data))
    with pytest.raises(AFMFileError, match="declare 14400000000 bytes once decoded"):
        read_stack(path)
