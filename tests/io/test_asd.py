"""High-speed AFM .asd movies (napari_calcite_afm.io.asd) against AFMReader and playNano."""

from __future__ import annotations

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
