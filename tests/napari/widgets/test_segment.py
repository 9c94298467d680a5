"""The Segment widget through napari: a stack, a frame, the model just trained."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=3)


@pytest.fixture
def tiny_model_file(tmp_path):
    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    model = SegmentationModel(DilatedNet(2, width=4), center_nm=0.0, scale_nm=5.0)
    return model.save(tmp_path / "tiny.pt")


def test_segment_stack_and_frame(
    make_napari_viewer, series, tiny_model_file, add_raw, dock, wait_idle
):
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    widget.model.set_file(tiny_model_file)
    widget.show_uncertainty.setChecked(True)
    widget.segment("all")
    wait_idle(widget)
    layer = viewer.layers["raw segmentation"]
    assert layer.data.shape == series.raw.shape and layer.data.dtype == np.uint8
    assert tuple(layer.scale) == (1.0, PX, PX)
    assert set(np.unique(layer.data)) <= {1, 2}
    unc = viewer.layers["raw uncertainty"]
    assert unc.data.shape == series.raw.shape
    assert np.nanmin(unc.data) >= 0 and np.nanmax(unc.data) <= 1
    # masks drawn on top of the uncertainty
    assert viewer.layers.index(layer) > viewer.layers.index(unc)

    # current frame only: the other frames keep their labels
    layer.data = np.zeros_like(layer.data)
    viewer.dims.set_current_step(0, 1)
    widget.segment("current")
    wait_idle(widget)
    data = viewer.layers["raw segmentation"].data
    assert data[1].all() and not data[0].any() and not data[2].any()


def test_open_pits_are_relabelled_unless_unticked(
    make_napari_viewer, series, add_raw, dock, wait_idle
):
    from napari_calcite_afm._napari.widgets._model_chooser import DEFAULT3
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget
    from napari_calcite_afm.segmentation import load_default_model
    from napari_calcite_afm.segmentation.closed import remove_open_pits

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    widget.model.kind.setCurrentIndex(widget.model.kind.findData(DEFAULT3))
    assert widget.closed_pits.isChecked()  # on by default
    widget.closed_pits.setChecked(False)
    widget.segment("all")
    wait_idle(widget)
    as_given = viewer.layers["raw segmentation"].data.copy()
    widget.closed_pits.setChecked(True)
    widget.segment("all")
    wait_idle(widget)
    closed = viewer.layers["raw segmentation"].data
    model = load_default_model(3)
    assert (closed != as_given).any()  # on these frames it relabels a few regions
    for k in range(series.raw.shape[0]):
        expected = remove_open_pits(as_given[k], model.level(series.raw[k]))
        np.testing.assert_array_equal(closed[k], expected)


def test_segment_with_the_model_just_trained(
    make_napari_viewer, series, add_raw, dock, wait_idle, error_messages
):
    from napari_calcite_afm._napari.widgets import _state
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget
    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    # nothing trained yet: a notification, no crash
    widget.model.kind.setCurrentIndex(widget.model.kind.findData("trained"))
    before = len(error_messages())
    assert widget.segment() is None
    assert "trained" in error_messages()[before:][-1]

    model = SegmentationModel(DilatedNet(3, width=4))
    _state.set_trained(_state.TrainedModel(model=model))
    assert widget.model.choice() == "trained"  # selected automatically
    widget.segment("all")
    wait_idle(widget)
    assert viewer.layers["raw segmentation"].data.max() <= 3


def warnings_now() -> list[str]:
    """The messages of every napari warning so far."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    return [
        str(n.message)
        for n in notification_manager.records
        if n.severity == NotificationSeverity.WARNING
    ]


def test_segment_warns_about_a_foreign_pixel_size(
    make_napari_viewer, qtbot, series, tmp_path, dock, wait_idle
):
    """A model trained at 11.7 nm/px on 0.5 nm/px heights, or a layer of phases: a napari
    warning says what to do."""
    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget
    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    model = SegmentationModel(DilatedNet(2, width=4), info={"pixel_size_nm": 11.7})
    path = model.save(tmp_path / "trained_at_11.7.pt")
    viewer = make_napari_viewer()
    viewer.add_image(series.raw, **image_layer_kwargs(series.raw, 0.5, "hs-afm"))
    viewer.add_image(series.raw, **image_layer_kwargs(series.raw, 10.0, "same scale"))
    # a phase channel read from a vendor file (the reader keeps the channel and unit)
    meta = {"channel": "Phase", "afm_metadata": {"z_unit": "deg"}}
    viewer.add_image(series.raw, **image_layer_kwargs(series.raw, 11.7, "scan", meta))
    widget = dock(viewer, SegmentWidget(viewer))
    widget.model.set_file(path)

    widget.image.set_layer("same scale")
    before = len(warnings_now())
    widget.segment("current")
    wait_idle(widget)
    assert not [m for m in warnings_now()[before:] if "nm per pixel" in m or "not heights" in m]

    # values that are not heights: a warning names the channel and its unit
    widget.image.set_layer("scan")
    widget.segment("current")
    wait_idle(widget)
    qtbot.waitUntil(lambda: any("not heights" in m for m in warnings_now()), timeout=10_000)
    [message] = [m for m in warnings_now()[before:] if "not heights" in m]
    assert message.startswith("channel 'Phase' of layer 'scan' holds values in deg")
    assert "scan segmentation" in viewer.layers  # it still segments
    before = len(warnings_now())

    widget.image.set_layer("hs-afm")
    widget.segment("current")
    wait_idle(widget)
    qtbot.waitUntil(lambda: len(warnings_now()) > before, timeout=10_000)
    [message] = [m for m in warnings_now()[before:] if "nm per pixel" in m]
    assert "11.7 nm per pixel" in message and "0.5 nm per pixel" in message
    assert "Resample" in message and "train a model on your own frames" in message
    assert "hs-afm" in message
    assert "hs-afm segmentation" in viewer.layers  # it still segments

    # the shipped model (trained at 11.7 nm/px) says the same
    widget.model.kind.setCurrentIndex(widget.model.kind.findData("default2"))
    n = len(warnings_now())
    widget.segment("current")
    wait_idle(widget)
    qtbot.waitUntil(lambda: len(warnings_now()) > n, timeout=30_000)
    assert "11.7 nm per pixel" in warnings_now()[-1]


def test_segment_warns_when_the_model_is_unsure(
    make_napari_viewer, qtbot, series, tmp_path, add_raw, dock, wait_idle
):
    """Frames unlike the model's training data: one napari warning, not about pixel size."""
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget
    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    def unsure_now():
        return [m for m in warnings_now() if "unsure" in m]

    info = {"pixel_size_nm": PX, "uncertainty_threshold": 0.05}  # untrained: far above it
    path = SegmentationModel(DilatedNet(2, width=4), info=info).save(tmp_path / "unsure.pt")
    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    widget.model.set_file(path)
    before = len(unsure_now())
    widget.segment("all")
    wait_idle(widget)
    qtbot.waitUntil(lambda: len(unsure_now()) > before, timeout=10_000)
    [message] = unsure_now()[before:]
    assert "layer 'raw'" in message and "fine-tune" in message and "nm per pixel" not in message
    # a sure model says nothing
    sure = {"pixel_size_nm": PX, "uncertainty_threshold": 1.0}
    widget.model.set_file(
        SegmentationModel(DilatedNet(2, width=4), info=sure).save(tmp_path / "s.pt")
    )
    n = len(unsure_now())
    widget.segment("all")
    wait_idle(widget)
    qtbot.wait(200)
    assert len(unsure_now()) == n
