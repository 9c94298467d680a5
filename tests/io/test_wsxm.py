"""WSxM .stp and .top files (napari_calcite_afm.io.wsxm) against AFMReader."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


def test_wsxm_stp_matches_afmreader(real, afmreader):
    path = real("afmreader_sample_0.stp")
    ref, ref_px = afmreader("stp").load_stp(path)
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)


def test_wsxm_top_z_amplitude_is_not_truncated(real, afmreader):
    path = real("afmreader_sample_0.top")
    ref, ref_px = afmreader("top").load_top(path)
    assert float(ref.max()) == pytest.approx(59.0)  # AFMReader reads "59.7449 nm" as 59
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    assert float(stack.heights.max()) == pytest.approx(59.7449, rel=1e-6)
    np.testing.assert_allclose(stack.heights[0], ref * 59.7449 / 59, rtol=1e-6)


@pytest.mark.parametrize("name", ["afmreader_sample_0.stp", "afmreader_sample_0.top"])
@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"Number of rows: 512", b"Number of rows: 5120", "declares .* bytes \\(5120 x 512"),
        (b"Number of rows: 512", b"Number of ruws: 512", "no 'Number of rows'"),
        (b"Image header size: ", b"Image header size: 9999", "the WSxM header"),
        (b"Image header size: ", b"Image header sizes ", "not a WSxM file"),
    ],
)
def test_wsxm_list_channels_checks_the_header(real, tmp_path, name, old, new, match):
    data = real(name).read_bytes()
    assert old in data
    path = tmp_path / f"edited{real(name).suffix}"
    path.write_bytes(data.replace(old, new, 1))
    for call in (list_channels, read_stack):
        with pytest.raises(AFMFileError, match=match):
            call(path)
    assert list_channels(real(name)) == ["height"]
