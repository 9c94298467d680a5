"""The sample data (File > Open Sample): the synthetic movie and its labels."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-calcite-afm"


@pytest.mark.gui
def test_sample_data_gives_image_and_labels(make_napari_viewer):
    from napari_calcite_afm.data import sample_paths

    if not all(p.exists() for p in sample_paths()):
        pytest.fail("sample data missing: sample_data/*.tif must ship with the package")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "calcite_dissolution")
    assert len(viewer.layers) == 2
    image, labels = viewer.layers
    assert image.data.ndim == 3 and image.data.dtype == np.float32
    assert labels.data.shape == image.data.shape and labels.data.dtype == np.uint8
    assert tuple(image.scale) == tuple(labels.scale)
    assert set(np.unique(labels.data)) <= {0, 1, 2, 3}
