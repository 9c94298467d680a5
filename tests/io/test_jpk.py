"""JPK .jpk and .h5-jpk files (napari_calcite_afm.io.jpk) against AFMReader."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest

from napari_calcite_afm.io import list_channels, read_stack


def test_jpk_matches_afmreader(real, afmreader):
    path = real("afmreader_sample_0.jpk")
    with warnings.catch_warnings():  # AFMReader leaves the TIFF open
        warnings.simplefilter("ignore", ResourceWarning)
        ref, ref_px = afmreader("jpk").load_jpk(path, "height_trace")
        gc.collect()
    stack = read_stack(path)
    assert stack.channel == "height_trace"
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights[0], ref, rtol=1e-6)
    channels = list_channels(path)
    assert "height_trace" in channels and "phase_retrace" in channels and len(channels) == 10


def test_h5jpk_matches_afmreader_with_frame_times(real, afmreader):
    path = real("afmreader_sample_0.h5-jpk")
    ref, ref_px, _stamps = afmreader("h5_jpk").load_h5jpk(path, "height_trace")
    stack = read_stack(path)
    assert stack.n_frames == 4
    assert stack.pixel_size_nm == pytest.approx(ref_px)
    np.testing.assert_allclose(stack.heights, ref, rtol=1e-6)
    np.testing.assert_allclose(stack.frame_times_s, [0.0, 3.2, 6.4, 9.6])
    assert stack.frame_interval_s == pytest.approx(3.2)
