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
