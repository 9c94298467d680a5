"""High-speed AFM .asd movies (napari_calcite_afm.io.asd) against AFMReader and playNano."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from napari_calcite_afm.io import list_channels, read_stack


def test_asd_matches_afmreader_and_playnano_sum(real, afmreader):
    path = real("playnano_asd_sample_0.asd")
    ref, ref_px, _header = afmreader("asd").load_asd(path, "TP")
    stack = read_stack(path)
    assert stack.channel == "TP" and list_channels(path) == ["TP"]
    assert stack.pixel_size_nm == pytest.approx(ref_px) == 0.5
    np.testing.assert_allclose(stack.heights, ref, rtol=1e-6)
    assert float(stack.heights.astype(np.float64).sum()) == pytest.approx(-251179816.918, rel=1e-6)
    assert stack.frame_interval_s == pytest.approx(1.0)  # 1000 ms per frame
    assert stack.frame_times_s[-1] == pytest.approx(31.0)


def test_asd_frame_sizes_are_checked_before_reading(real, tmp_path):
    from napari_calcite_afm.io import AFMFileError

    data = bytearray(real("playnano_asd_sample_0.asd").read_bytes())
    # version 1 header: x_pixels and y_pixels are the int32 at bytes 48 and 52
    assert struct.unpack_from("<ii", data, 48) == (200, 200)
    for offset, value, match in [
        (52, 1 << 30, "32 frames of 1073741824 x 200 pixels"),
        (52, 0, "32 frames of 0 x 200 pixels"),
        (4, 10**9, "header length 1000000000"),
    ]:
        edited = bytearray(data)
        struct.pack_into("<i", edited, offset, value)
        path = tmp_path / "edited.asd"
        path.write_bytes(bytes(edited))
        for call in (read_stack, list_channels):
            with pytest.raises(AFMFileError, match=match):
                call(path)
    # a comment length past the file: the header reader stops at the header's end
    edited = bytearray(data)
    struct.pack_into("<i", edited, 20, 10**9)
    (tmp_path / "comment.asd").write_bytes(bytes(edited))
    with pytest.raises(AFMFileError, match=r"corrupt or truncated \.asd file"):
        list_channels(tmp_path / "comment.asd")
