"""Park Systems TIFF files (napari_calcite_afm.io.park): heights from the private tags."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.io import read_stack


def test_park_tiff_heights_from_private_tags(real):
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
    assert stack.format == "park-tiff"
    assert stack.pixel_size_nm == pytest.approx(2500 / 256)
    # stored bottom row first, um -> nm
    np.testing.assert_allclose(stack.heights[0], np.flipud(raw) * gain * 1000, rtol=1e-6)
    # a flat film with round pits about 2 nm deep (median at the film level)
    h = stack.heights[0] - np.median(stack.heights[0])
    assert -3.0 < np.percentile(h, 1) < -1.5
    assert abs(np.percentile(h, 50)) < 1e-6
