"""The writers: label and image layers to TIFF and back, through napari."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-calcite-afm"
PX = 11.7


@pytest.mark.gui
def test_writers_round_trip(make_napari_viewer, tmp_path):
    from napari_calcite_afm._napari.layers import image_layer_kwargs, labels_layer_kwargs
    from napari_calcite_afm.io import read_labels, read_stack

    rng = np.random.default_rng(1)
    heights = rng.normal(0, 2, (2, 24, 24)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 24, 24)).astype(np.uint8)
    viewer = make_napari_viewer()
    image = viewer.add_image(heights, **image_layer_kwargs(heights, PX, "heights"))
    mask = viewer.add_labels(labels, **labels_layer_kwargs(labels, PX, "mask"))

    image_path = tmp_path / "heights.tif"
    labels_path = tmp_path / "mask.tif"
    assert image.save(str(image_path), plugin=PLUGIN)
    assert mask.save(str(labels_path), plugin=PLUGIN)

    stack = read_stack(image_path)
    np.testing.assert_allclose(stack.heights, heights)
    assert stack.pixel_size_nm == pytest.approx(PX)
    np.testing.assert_array_equal(read_labels(labels_path, shape=labels.shape), labels)
    # and back into napari with the same scale
    layer = viewer.open(str(image_path), plugin=PLUGIN)[0]
    assert tuple(layer.scale) == pytest.approx((1.0, PX, PX))


@pytest.mark.gui
def test_image_layer_saves_as_gwy(make_napari_viewer, tmp_path):
    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm.io import read_stack

    heights = np.random.default_rng(2).normal(0, 2, (3, 16, 24)).astype(np.float32)
    heights[1, 3, 4] = np.nan
    viewer = make_napari_viewer()
    kwargs = image_layer_kwargs(heights, PX, "heights", {"frame_times_s": [0.0, 30.0, 60.0]})
    image = viewer.add_image(heights, **kwargs)
    path = tmp_path / "heights.gwy"
    assert image.save(str(path), plugin=PLUGIN)
    assert path.read_bytes()[:4] == b"GWYP"
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.heights, heights)  # NaN kept through the mask
    assert stack.pixel_size_nm == pytest.approx(PX)
    np.testing.assert_array_equal(stack.frame_times_s, [0.0, 30.0, 60.0])


def test_write_image_gwy_ignores_frame_times_that_do_not_match(tmp_path):
    from napari_calcite_afm._napari.writer import write_image_gwy
    from napari_calcite_afm.io import read_stack

    meta = {"scale": (1.0, 4.0, 4.0), "metadata": {"frame_times_s": [0.0, 1.0, 2.0]}}
    (out,) = write_image_gwy(str(tmp_path / "h.gwy"), np.zeros((2, 8, 8)), meta)
    stack = read_stack(out)
    assert stack.pixel_size_nm == 4.0 and stack.frame_times_s is None
