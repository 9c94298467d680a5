"""The reader (napari_get_reader): which paths it takes, and the layer napari gets."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-calcite-afm"
PX = 11.7


def test_reader_rejects_unknown_files(tmp_path):
    from napari_calcite_afm._napari.reader import napari_get_reader

    (tmp_path / "notes.txt").write_text("not AFM")
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None


@pytest.fixture
def movie(tmp_path):
    from napari_calcite_afm.io import write_tiff

    rng = np.random.default_rng(0)
    heights = rng.normal(0, 1, (3, 32, 48)).astype(np.float32)
    return write_tiff(tmp_path / "movie.tif", heights, PX, frame_interval_s=300.0), heights


@pytest.mark.gui
def test_reader_through_napari_has_scale_in_nm(make_napari_viewer, movie):
    from napari_calcite_afm._napari.reader import napari_get_reader

    path, heights = movie
    reader = napari_get_reader(str(path))
    assert callable(reader)
    _, kwargs, kind = reader(str(path))[0]
    assert kind == "image" and kwargs["scale"] == (1.0, PX, PX)

    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert len(layers) == 1
    layer = layers[0]
    np.testing.assert_allclose(layer.data, heights)
    assert tuple(layer.scale) == pytest.approx((1.0, PX, PX))
    assert layer.metadata["pixel_size_nm"] == pytest.approx(PX)
    assert [str(u) for u in layer.units][-2:] == ["nanometer", "nanometer"]
    assert layer.colormap.name.startswith("calcite")
