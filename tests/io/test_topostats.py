"""TopoStats .topostats files (napari_calcite_afm.io.topostats) against AFMReader."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import read_stack


def test_topostats_matches_afmreader(real, afmreader):
    path = real("afmreader_sample_0_1.topostats")
    ref = afmreader("topostats").load_topostats(path)
    stack = read_stack(path)
    assert stack.channel == "image"
    assert stack.pixel_size_nm == pytest.approx(ref["pixel_to_nm_scaling"])
    np.testing.assert_allclose(stack.heights[0], ref["image"], rtol=1e-6)
