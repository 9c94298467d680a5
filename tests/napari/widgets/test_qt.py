"""The shared Qt pieces: the layer chooser (a magicgui ComboBox) follows the layer list."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _names(chooser) -> list[str]:
    return [chooser.native.itemText(i) for i in range(chooser.native.count())]


def test_layer_chooser_follows_the_layer_list(make_napari_viewer):
    from napari_calcite_afm._napari.widgets._qt import LayerChooser

    viewer = make_napari_viewer()
    first = viewer.add_image(np.zeros((4, 4)), name="first")
    second = viewer.add_image(np.zeros((4, 4)), name="second")
    chooser = LayerChooser(viewer, "image")
    assert chooser.layer() is second  # the newest (top) layer of the type
    chooser.set_layer("first")
    assert chooser.layer() is first
    seen = []
    chooser.changed.connect(seen.append)

    # a new layer keeps the choice; layers of other types are not offered
    third = viewer.add_image(np.zeros((4, 4)), name="third")
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="masks")
    assert chooser.layer() is first and not seen
    assert _names(chooser) == ["first", "second", "third"]

    # the chosen layer goes: the newest one is chosen, and said once
    viewer.layers.remove(first)
    assert chooser.layer() is third and seen == [third]
    chooser.set_layer(second)
    assert chooser.layer() is second and seen == [third, second]
    viewer.layers.remove(second)
    viewer.layers.remove(third)
    assert chooser.layer() is None and _names(chooser) == []


def test_layer_chooser_of_labels_and_optional_layers(make_napari_viewer):
    from napari_calcite_afm._napari.widgets._qt import LayerChooser

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 4)), name="heights")
    masks = viewer.add_labels(np.zeros((4, 4), np.uint8), name="masks")
    assert LayerChooser(viewer, "labels").layer() is masks
    both = LayerChooser(viewer, ("image", "labels"))
    assert _names(both) == ["heights", "masks"]
    optional = LayerChooser(viewer, "labels", allow_none=True)
    assert _names(optional) == ["", "masks"] and optional.layer() is None
    optional.set_layer(masks)
    assert optional.layer() is masks
