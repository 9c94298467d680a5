"""The one-click widget through napari: clean, segment and fit a movie, then export."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui

PX = 11.7


LAGS = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=5)


@pytest.fixture
def tiny_model_file(tmp_path):
    """An untrained 2-class network: enough to exercise the plumbing quickly."""
    import torch

    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    torch.manual_seed(0)
    model = SegmentationModel(DilatedNet(2, width=4), center_nm=0.0, scale_nm=2.0)
    return model.save(tmp_path / "tiny.pt")


def test_one_click_from_layer_and_file(
    make_napari_viewer, qtbot, series, tmp_path, tiny_model_file, error_messages
):
    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets.oneclick import OneClickWidget
    from napari_calcite_afm.io import write_tiff

    viewer = make_napari_viewer()
    viewer.add_image(series.raw, **image_layer_kwargs(series.raw, PX, "raw"))
    widget = OneClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model.set_file(tiny_model_file)
    assert widget.run() is not None
    assert widget.run() is None  # no second worker
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    assert widget.result is not None
    assert len(widget.result.table) == 3 * len(LAGS)
    cleaned = viewer.layers["raw cleaned"]
    masks = viewer.layers["raw segmentation"]
    assert cleaned.data.shape == masks.data.shape == series.raw.shape
    assert tuple(masks.scale) == (1.0, PX, PX)
    # the Statistics widget is docked and shows this run
    stats = widget.statistics
    assert stats is not None and len(stats.rows) == len(widget.result.table)
    assert stats.image.layer().name == "raw cleaned"
    assert "c" in stats.time_lines and "rate_nm_s" in stats.time_lines  # rates vs time
    # ... and so is the Kinetics widget: rate maps and pit ids on the movie's scale
    kin = widget.kinetics
    assert kin is not None and kin.result is widget.result.kinetics
    rates = viewer.layers["raw dissolution rate"]
    assert rates.data.shape == series.raw.shape and tuple(rates.scale) == tuple(cleaned.scale)
    assert kin.table.table.rowCount() == len(widget.result.kinetics.tracks.tracks)
    header = stats.export_table(tmp_path / "stats.csv").read_text().splitlines()[0]
    assert {"uncertainty", "rate_nm_s", "dissolved_volume_nm3"} <= set(header.split(","))

    widget.export(tmp_path / "out")
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    for name in ("cleaned.tif", "labels.tif", "table.csv", "summary.json", "rates.tif"):
        assert (tmp_path / "out" / name).exists(), name

    # from a file
    movie = write_tiff(tmp_path / "movie.tif", series.raw, PX, frame_interval_s=300.0)
    widget.set_input_file(movie)
    assert not widget.temporal.isChecked()  # each frame alone unless asked
    assert widget.result.summary["config"]["temporal_window"] == 1
    widget.temporal.setChecked(True)  # ... and with its neighbours
    widget.run()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    assert viewer.layers["movie segmentation"].data.shape == series.raw.shape
    assert widget.result.summary["config"]["temporal_window"] == 3
    assert widget.result.summary["config"]["rate_smooth_px"] == 0.0  # rates per pixel
    widget.smooth.setValue(1.0)  # ... smoothed when asked
    widget.run()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    assert widget.result.summary["config"]["rate_smooth_px"] == 1.0

    # a missing file: a notification naming it, no exception
    widget.set_input_file(tmp_path / "missing.spm")
    before = len(error_messages())
    widget.run()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=30_000)
    messages = error_messages()[before:]
    assert messages and "missing.spm" in messages[-1]


def test_one_click_warns_about_a_foreign_pixel_size(
    make_napari_viewer, qtbot, series, tmp_path, tiny_model_file
):
    from napari.utils.notifications import NotificationSeverity, notification_manager

    from napari_calcite_afm._napari.widgets.oneclick import OneClickWidget
    from napari_calcite_afm.io import write_tiff
    from napari_calcite_afm.segmentation import load_model

    def warnings_now():
        return [
            str(n.message)
            for n in notification_manager.records
            if n.severity == NotificationSeverity.WARNING
        ]

    model = load_model(tiny_model_file)
    model.info["pixel_size_nm"] = 11.7
    model_path = model.save(tmp_path / "at_11.7.pt")
    movie = write_tiff(tmp_path / "hs.tif", series.raw, 0.5, frame_interval_s=1.0)
    viewer = make_napari_viewer()
    widget = OneClickWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model.set_file(model_path)
    widget.set_input_file(movie)
    before = len(warnings_now())
    widget.run()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    messages = [m for m in warnings_now()[before:] if "nm per pixel" in m]
    assert len(messages) == 1
    assert "0.5 nm per pixel" in messages[0] and "hs.tif" in messages[0]
    # the layers of a timed movie have their time axis in seconds
    cleaned = viewer.layers["hs cleaned"]
    masks = viewer.layers["hs segmentation"]
    assert tuple(cleaned.scale) == pytest.approx((1.0, 0.5, 0.5))
    assert str(cleaned.units[0]) == "second"
    assert tuple(masks.scale) == tuple(cleaned.scale)
    assert tuple(masks.axis_labels) == ("time", "y", "x")
