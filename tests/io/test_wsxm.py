"""WSxM .stp and .top files (napari_calcite_afm.io.wsxm) against AFMReader."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import read_stack


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
