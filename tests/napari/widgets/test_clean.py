"""The Clean widget through napari: the live preview and levelling every frame."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=3)


def test_clean_preview_and_apply(make_napari_viewer, qtbot, series, add_raw, dock, wait_idle):
    from napari_calcite_afm._napari.widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    raw = add_raw(viewer, series)
    widget = dock(viewer, CleanWidget(viewer))
    assert widget.image.layer() is raw

    viewer.dims.set_current_step(0, 2)
    widget.preview.setChecked(True)
    widget.update_preview()
    qtbot.waitUntil(lambda: "raw preview" in viewer.layers, timeout=20_000)
    preview = viewer.layers["raw preview"]
    assert preview.data.shape == (64, 64)
    assert preview.metadata["frame"] == 2
    assert tuple(preview.scale) == (PX, PX)

    # the preview follows the time slider
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: viewer.layers["raw preview"].metadata["frame"] == 0, timeout=20_000)

    widget.register.setChecked(True)
    widget.apply()
    wait_idle(widget)
    cleaned = viewer.layers["raw cleaned"]
    assert cleaned.data.shape == series.raw.shape
    assert cleaned.data.dtype == np.float32
    assert tuple(cleaned.scale) == (1.0, PX, PX)
    assert cleaned.colormap.name == raw.colormap.name
    assert cleaned.metadata["levelling"] == widget.settings().to_dict()
    assert len(cleaned.metadata["drift_shifts_px"]) == 3
    # levelling removed the tilt: the frame's spread drops a lot
    assert np.nanstd(cleaned.data[0]) < np.nanstd(series.raw[0])


def test_clean_second_click_is_ignored(make_napari_viewer, series, add_raw, dock, wait_idle):
    from napari_calcite_afm._napari.widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, CleanWidget(viewer))
    first = widget.apply()
    assert first is not None
    assert not widget.apply_button.isEnabled()
    assert widget.apply() is None  # busy: no second worker
    wait_idle(widget)
    assert widget.apply_button.isEnabled()


def test_clean_channel_choice_reloads_and_is_remembered(
    make_napari_viewer, qtbot, tmp_path, dock, wait_idle
):
    from napari_calcite_afm._napari.channels import remembered_channel
    from napari_calcite_afm._napari.widgets.clean import CleanWidget

    rng = np.random.default_rng(2)
    height = rng.normal(0, 1, (2, 24, 24)).astype(np.float32)
    amplitude = 50.0 + rng.normal(0, 5, (2, 24, 24)).astype(np.float32)
    path = tmp_path / "scan.npz"
    np.savez(path, heights=height, amplitude=amplitude, pixel_size_nm=PX)

    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari-calcite-afm")
    np.testing.assert_allclose(layer.data, height)
    widget = dock(viewer, CleanWidget(viewer))
    items = [widget.channel.itemText(i) for i in range(widget.channel.count())]
    assert items == ["heights", "amplitude"]
    assert widget.channel.isEnabled() and widget.channel.currentText() == "heights"

    # the user picks "amplitude" in the dropdown: the layer is reloaded with it
    widget.channel.setCurrentIndex(1)
    widget.channel.activated.emit(1)
    wait_idle(widget)
    np.testing.assert_allclose(layer.data, amplitude)
    assert layer.metadata["channel"] == "amplitude"
    lo, hi = layer.contrast_limits
    assert 30 < lo < 50 < hi < 70  # limits follow the new channel
    assert remembered_channel(path) == "amplitude"
    assert widget.channel.currentText() == "amplitude"

    # opened again, the file comes with the remembered channel
    [again] = viewer.open(str(path), plugin="napari-calcite-afm")
    np.testing.assert_allclose(again.data, amplitude)
    assert again.metadata["channel"] == "amplitude"


def test_clean_channel_list_is_off_without_a_file(make_napari_viewer, series, add_raw, dock):
    from napari_calcite_afm._napari.widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)  # made in memory: no file behind it
    widget = dock(viewer, CleanWidget(viewer))
    assert not widget.channel.isEnabled()
    assert widget.set_channel("amplitude") is None
    assert "no file" in widget.status.text()


def test_registration_problems_become_a_warning(
    make_napari_viewer, dock, wait_idle, warning_messages
):
    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    flat = np.zeros((3, 48, 48), np.float32)  # nothing to correlate: the drift is unknown
    viewer.add_image(flat, **image_layer_kwargs(flat, PX, "flat"))
    widget = dock(viewer, CleanWidget(viewer))
    widget.register.setChecked(True)
    before = len(warning_messages())
    widget.apply()
    wait_idle(widget)
    news = warning_messages()[before:]
    assert any("flat" in m and "rejected" in m for m in news), news
    assert viewer.layers["flat cleaned"].metadata["drift_confidence"][1] == 0.0
