"""Viewer conventions: scale bar in nm, a labelled height colorbar, one time axis."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-calcite-afm"
PX = 11.7


def _heights(viewer, name, times=None, shape=(3, 16, 16)):
    from napari_calcite_afm._napari.layers import image_layer_kwargs

    data = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    meta = {"frame_times_s": times} if times is not None else None
    return viewer.add_image(data, **image_layer_kwargs(data, PX, name, meta))


def test_colorbar_follows_the_newest_and_the_selected_height_layer():
    from napari.components import ViewerModel

    from napari_calcite_afm._napari.conventions import apply_conventions

    viewer = ViewerModel()
    apply_conventions(viewer)
    label = viewer.canvas.overlays["calcite_colorbar_label"]
    assert viewer.canvas.overlays.scale_bar.visible and not label.visible
    raw = _heights(viewer, "raw")
    assert raw.colorbar.visible and label.visible
    cleaned = _heights(viewer, "raw cleaned")
    assert cleaned.colorbar.visible and not raw.colorbar.visible  # one colorbar
    other = viewer.add_image(np.zeros((3, 16, 16)), name="not heights")
    assert not other.colorbar.visible and cleaned.colorbar.visible
    viewer.layers.selection.active = raw
    assert raw.colorbar.visible and not cleaned.colorbar.visible
    viewer.layers.remove(raw)
    assert cleaned.colorbar.visible
    viewer.layers.remove(cleaned)
    assert not label.visible
    apply_conventions(viewer)  # idempotent
    assert list(viewer.canvas.overlays).count("calcite_colorbar_label") == 1


def test_colorbar_label_names_a_channel_that_is_not_heights():
    from napari.components import ViewerModel

    from napari_calcite_afm._napari.conventions import apply_conventions
    from napari_calcite_afm._napari.layers import image_layer_kwargs

    viewer = ViewerModel()
    apply_conventions(viewer)
    label = viewer.canvas.overlays["calcite_colorbar_label"]
    raw = _heights(viewer, "raw")
    assert label.text == "height (nm)"
    data = np.zeros((2, 16, 16), np.float32)
    meta = {"channel": "1F:Iprobe (2)", "afm_metadata": {"z_unit": "A"}}
    current = viewer.add_image(data, **image_layer_kwargs(data, PX, "current", meta))
    assert current.colorbar.visible and label.text == "1F:Iprobe (2) (A, not heights)"
    viewer.layers.selection.active = raw
    assert label.text == "height (nm)"


def test_layers_of_the_same_frames_share_the_time_axis():
    from napari.components import ViewerModel

    from napari_calcite_afm._napari.conventions import apply_conventions

    viewer = ViewerModel()
    apply_conventions(viewer)
    movie = _heights(viewer, "movie", times=[0.0, 300.0, 600.0])
    assert movie.axis_labels[0] == "time"
    # labels of the movie opened without the plugin (scale 1 on the first axis)
    labels = viewer.add_labels(np.zeros((3, 16, 16), np.uint8), scale=(1.0, PX, PX))
    assert float(labels.scale[0]) == 300.0 and str(labels.units[0]) == "second"
    assert labels.axis_labels[0] == "time"
    viewer.dims.set_current_step(0, 2)  # the slider steps one frame of both
    assert movie.world_to_data(viewer.dims.point)[0] == pytest.approx(2.0)
    assert labels.world_to_data(viewer.dims.point)[0] == pytest.approx(2.0)
    # a layer of another shape is left alone
    small = viewer.add_labels(np.zeros((3, 8, 8), np.uint8))
    assert float(small.scale[0]) == 1.0


@pytest.mark.gui
def test_sample_data_opens_with_time_axis_scale_bar_and_colorbar(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "calcite_dissolution")
    image, labels = viewer.layers
    assert tuple(image.scale) == pytest.approx((300.0, PX, PX))
    assert tuple(labels.scale) == tuple(image.scale)
    assert [str(u) for u in image.units] == ["second", "nanometer", "nanometer"]
    assert tuple(image.axis_labels) == ("time", "y", "x")
    assert viewer.canvas.overlays.scale_bar.visible
    assert image.colorbar.visible
    assert viewer.canvas.overlays["calcite_colorbar_label"].text == "height (nm)"
    viewer.dims.set_current_step(0, 4)
    assert image.world_to_data(viewer.dims.point)[0] == pytest.approx(4.0)
