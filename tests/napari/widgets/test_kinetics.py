"""The Kinetics widget: rate maps, pit ids, pit tracks and the per-pit table in napari."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 10.0


def _movie(n=4, size=64):
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 0.02, (n, size, size)).astype(np.float32)
    lab = np.full((n, size, size), 2, np.uint8)
    for k in range(n):  # two pits growing and deepening
        for cy, cx in ((18, 18), (44, 40)):
            half = 3 + k
            lab[k, cy - half : cy + half, cx - half : cx + half] = 1
        z[k][lab[k] == 1] -= 0.31 * (k + 2)
    return z, lab


@pytest.fixture
def viewer_with_movie(make_napari_viewer):
    from napari_calcite_afm._napari.layers import image_layer_kwargs, labels_layer_kwargs

    z, lab = _movie()
    viewer = make_napari_viewer()
    meta = {"frame_times_s": [0.0, 300.0, 600.0, 900.0]}
    image = viewer.add_image(z, **image_layer_kwargs(z, PX, "movie", meta))
    labels = viewer.add_labels(lab, **labels_layer_kwargs(lab, PX, "movie labels", meta))
    return viewer, image, labels


def test_measure_show_select_and_export(viewer_with_movie, qtbot, wait_idle, tmp_path):
    from napari_calcite_afm._napari.widgets.kinetics import KineticsWidget

    viewer, image, labels = viewer_with_movie
    widget = KineticsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.set_layer(image)
    widget.labels.set_layer(labels)
    assert widget.run() is not None
    wait_idle(widget)
    assert widget.result is not None
    rates = viewer.layers["movie dissolution rate"]
    ids = viewer.layers["movie pit ids"]
    tracks = viewer.layers["movie pit tracks"]
    # the layers follow the movie: same scale (s per frame, nm per pixel)
    assert tuple(rates.scale) == tuple(image.scale) == tuple(ids.scale) == tuple(tracks.scale)
    # and units: the scale bar reads nm only while every layer agrees
    assert tuple(tracks.units) == tuple(image.units) and str(tracks.units[-1]) == "nanometer"
    lo, hi = rates.contrast_limits
    assert lo == -hi and hi > 0  # diverging, centred on 0
    assert rates.colorbar.visible and rates.metadata["units"] == "nm/s"
    # the colorbar says what it shows, and only while the rates are shown
    label = viewer.canvas.overlays["calcite_rate_colorbar_label"]
    assert label.text == "dissolution rate (nm/s)" and not label.visible
    rates.visible = True
    assert label.visible and str(label.position) == str(rates.colorbar.position)
    rates.visible = False
    assert not label.visible
    assert np.isnan(rates.data[0]).all()  # frame t shows the rate from t - 1 to t
    assert widget.table.table.rowCount() == 2
    assert "2 pit tracks" in widget.status.text()
    # selecting a row shows that pit alone and plots its area and depth
    second = int(widget.result.tracks.tracks[1]["track_id"])
    widget.table.select_track(second)
    assert widget.table.selected_track() == second
    assert ids.selected_label == second and ids.show_selected_label
    assert len(widget.table.canvas.figure.axes) == 2
    # export
    widget.out_dir.setText(str(tmp_path / "out"))
    assert widget.export() is not None
    wait_idle(widget)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"rates.tif", "rates.csv", "pits.csv", "tracks.csv", "kinetics.png"} <= written


def test_labels_of_another_shape_are_refused(make_napari_viewer, error_messages):
    from napari_calcite_afm._napari.widgets.kinetics import KineticsWidget

    viewer = make_napari_viewer()
    z, lab = _movie()
    image = viewer.add_image(z, name="movie")
    labels = viewer.add_labels(lab[:, :32], name="labels")
    widget = KineticsWidget(viewer)
    widget.image.set_layer(image)
    widget.labels.set_layer(labels)
    assert widget.run() is None
    assert any("must match" in m for m in error_messages())
    assert widget.result is None


def test_the_rate_maps_are_smoothed_when_asked(viewer_with_movie, wait_idle):
    from napari_calcite_afm._napari.widgets.kinetics import KineticsWidget

    viewer, image, labels = viewer_with_movie
    widget = KineticsWidget(viewer)
    widget.image.set_layer(image)
    widget.labels.set_layer(labels)
    assert widget.smooth.value() == 0.0  # off by default: each pixel's rate
    widget.run()
    wait_idle(widget)
    plain = widget.result.rates.copy()
    widget.smooth.setValue(1.5)
    widget.run()
    wait_idle(widget)
    soft = widget.result.rates
    assert np.array_equal(np.isnan(plain), np.isnan(soft))
    assert np.nanstd(np.diff(soft, axis=2)) < 0.5 * np.nanstd(np.diff(plain, axis=2))
