"""What a viewer shows once the plugin has opened data: a scale bar and a height colorbar.

:func:`apply_conventions` is called by the reader, the sample data and every dock widget
(it is idempotent): it turns napari's scale bar on (the layers' units make it read nm)
and shows the colorbar of the newest (or the selected) height layer of this plugin, with
a "height (nm)" label beside it; the colorbar moves to the height layer you select, and
to the top one left when a layer goes.

It also keeps the time axis consistent: a height layer whose file gives frame times has
its first axis in seconds ("time"); a layer of the same frames without a time axis
(labels opened with napari's own reader, a layer made by another plugin) would step
through the movie at another pace, so its first axis is set to the same time scale.

napari 0.9's layer colorbar (``layer.colorbar``) has no title of its own, so the label
is a text overlay in the same corner (``viewer.canvas.overlays["calcite_colorbar_label"]``);
:func:`label_layer_colorbar` gives another layer's colorbar (the dissolution rates, nm/s)
such a label, shown while the layer is.
Only napari is used (imported when called), no Qt.
"""

from __future__ import annotations

import weakref

from ..colormap import COLORMAP_NAME
from .layers import is_layer_type

__all__ = [
    "COLORBAR_LABEL",
    "align_time_axes",
    "apply_conventions",
    "colorbar_label",
    "height_layers",
    "is_height_layer",
    "label_layer_colorbar",
]

#: The text beside the colorbar.
COLORBAR_LABEL = "height (nm)"
_OVERLAY = "calcite_colorbar_label"
_installed: weakref.WeakSet = weakref.WeakSet()  # viewers already followed
_label_followers: dict = {}  # id(label overlay) -> (weakref to its layer, its callback)


def is_height_layer(layer) -> bool:
    """An image layer of AFM heights made by this plugin (the green-magenta colormap).

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> from napari_calcite_afm._napari.layers import image_layer_kwargs
    >>> heights = np.zeros((8, 8), np.float32)
    >>> is_height_layer(Image(heights, **image_layer_kwargs(heights, 2.0, "scan")))
    True
    >>> is_height_layer(Image(heights))
    False
    """
    if not is_layer_type(layer, "image"):
        return False
    name = getattr(getattr(layer, "colormap", None), "name", "")
    return str(name) == COLORMAP_NAME and "pixel_size_nm" in (layer.metadata or {})


def height_layers(viewer) -> list:
    """The viewer's height layers of this plugin, bottom to top."""
    return [layer for layer in viewer.layers if is_height_layer(layer)]


def _model(viewer):
    """The ViewerModel behind a viewer or napari's PublicOnlyProxy of it."""
    return getattr(viewer, "__wrapped__", viewer)


def apply_conventions(viewer) -> None:
    """Scale bar on, and the height colorbar (labelled) on the newest height layer.

    Safe to call many times: the viewer's layer list is followed once.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> from napari_calcite_afm._napari.layers import image_layer_kwargs
    >>> viewer = ViewerModel()
    >>> heights = np.zeros((8, 8), np.float32)
    >>> layer = viewer.add_image(heights, **image_layer_kwargs(heights, 2.0, "scan"))
    >>> apply_conventions(viewer)
    >>> viewer.canvas.overlays.scale_bar.visible, layer.colorbar.visible
    (True, True)
    >>> viewer.canvas.overlays["calcite_colorbar_label"].text
    'height (nm)'
    """
    from napari.components.overlays import TextOverlay

    overlays = viewer.canvas.overlays
    overlays.scale_bar.visible = True
    if _OVERLAY not in overlays:
        overlays[_OVERLAY] = TextOverlay(
            text=COLORBAR_LABEL, position="top_right", visible=False, font_size=10, gridded=True
        )
    model = _model(viewer)
    if model not in _installed:
        _installed.add(model)
        ref = weakref.ref(model)

        def follow(event=None) -> None:
            target = ref()
            if target is not None:
                _place_colorbar(target, getattr(event, "value", None))

        def inserted(event=None) -> None:
            target = ref()
            if target is not None:
                align_time_axes(target)
                follow(event)

        model.layers.events.inserted.connect(inserted)
        model.layers.events.removed.connect(lambda event=None: follow())
        model.layers.selection.events.active.connect(follow)
    align_time_axes(viewer)
    _place_colorbar(viewer)


def _is_timed(layer) -> bool:
    return layer.ndim >= 3 and str(layer.units[0]) == "second" and layer.scale[0] > 0


def _untimed(layer) -> bool:
    return layer.ndim >= 3 and str(layer.units[0]) == "pixel" and float(layer.scale[0]) == 1.0


def align_time_axes(viewer) -> list:
    """Give the time axis of the timed height layers to the untimed layers of the same frames.

    A layer is aligned when its first axis is plain frames (unit pixel, scale 1) and its
    data have the same number of frames and frame shape as a height layer whose first
    axis is time in seconds. Returns the layers changed.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> from napari_calcite_afm._napari.layers import image_layer_kwargs
    >>> viewer = ViewerModel()
    >>> heights = np.zeros((3, 8, 8), np.float32)
    >>> meta = {"frame_times_s": [0.0, 5.0, 10.0]}
    >>> _ = viewer.add_image(heights, **image_layer_kwargs(heights, 2.0, "movie", meta))
    >>> labels = viewer.add_labels(np.zeros((3, 8, 8), np.uint8))
    >>> [layer.name for layer in align_time_axes(viewer)], [float(v) for v in labels.scale]
    (['Labels'], [5.0, 1.0, 1.0])
    """
    timed = [layer for layer in height_layers(viewer) if _is_timed(layer)]
    changed = []
    for layer in list(viewer.layers):
        if not _untimed(layer):
            continue
        shape = tuple(layer.data.shape) if hasattr(layer.data, "shape") else None
        reference = next(
            (ref for ref in timed if shape is not None and tuple(ref.data.shape) == shape), None
        )
        if reference is None:
            continue
        layer.scale = (float(reference.scale[0]), *tuple(layer.scale)[1:])
        layer.units = ("s", *(str(u) for u in layer.units[1:]))
        layer.axis_labels = ("time", *tuple(layer.axis_labels)[1:])
        changed.append(layer)
    return changed


def colorbar_label(layer) -> str:
    """The colorbar's label for ``layer``: "height (nm)", or its channel and unit when the
    reader says its values are not heights in nm (a phase, a tip current).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> colorbar_label(SimpleNamespace(metadata={}))
    'height (nm)'
    >>> meta = {"channel": "Iprobe", "afm_metadata": {"z_unit": "A"}}
    >>> colorbar_label(SimpleNamespace(metadata=meta))
    'Iprobe (A, not heights)'
    """
    meta = getattr(layer, "metadata", None) or {}
    unit = str((meta.get("afm_metadata") or {}).get("z_unit") or "nm").strip()
    if unit in ("", "nm"):
        return COLORBAR_LABEL
    return f"{meta.get('channel') or 'values'} ({unit}, not heights)"


def _place_colorbar(viewer, preferred=None) -> None:
    """Show the colorbar of ``preferred`` (if a height layer), else of the top one."""
    layers = height_layers(viewer)
    if preferred is None or not is_height_layer(preferred):
        current = [layer for layer in layers if layer.colorbar.visible]
        preferred = current[-1] if current else (layers[-1] if layers else None)
    for layer in layers:
        layer.colorbar.visible = layer is preferred
    overlays = viewer.canvas.overlays
    if _OVERLAY in overlays:
        overlays[_OVERLAY].visible = preferred is not None
        if preferred is not None:
            overlays[_OVERLAY].text = colorbar_label(preferred)


def label_layer_colorbar(viewer, layer, text: str, key: str) -> None:
    """A text label in the corner of ``layer``'s colorbar, shown while the layer is visible.

    Parameters
    ----------
    viewer : napari.viewer.Viewer or napari.components.ViewerModel
    layer : napari.layers.Image
        A layer whose colorbar is shown (``layer.colorbar.visible``).
    text : str
        The label, with its unit, e.g. ``"dissolution rate (nm/s)"``.
    key : str
        The overlay's name in ``viewer.canvas.overlays`` (one label per key: calling
        again with the same key moves it to ``layer``).

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> rates = viewer.add_image(np.zeros((8, 8), np.float32), visible=False)
    >>> rates.colorbar.position, rates.colorbar.visible = "top_left", True
    >>> label_layer_colorbar(viewer, rates, "rate (nm/s)", "rate_label")
    >>> label = viewer.canvas.overlays["rate_label"]
    >>> label.text, str(label.position), label.visible
    ('rate (nm/s)', 'top_left', False)
    >>> rates.visible = True
    >>> label.visible
    True
    """
    from napari.components.overlays import TextOverlay

    overlays = viewer.canvas.overlays
    if key not in overlays:
        overlays[key] = TextOverlay(text=text, visible=False, font_size=10, gridded=True)
    label = overlays[key]
    label.text = text
    label.position = layer.colorbar.position
    # one layer drives a label: the one it followed before lets go of it (else hiding
    # that layer would hide the label of this one, and each call would add a follower)
    before = _label_followers.pop(id(label), None)
    if before is not None:
        old_ref, old_follow = before
        old = old_ref()
        if old is not None:
            old.events.visible.disconnect(old_follow)
            old.colorbar.events.visible.disconnect(old_follow)
    target = weakref.ref(layer)

    def follow(event=None) -> None:
        shown = target()
        label.visible = bool(shown is not None and shown.visible and shown.colorbar.visible)

    layer.events.visible.connect(follow)
    layer.colorbar.events.visible.connect(follow)
    _label_followers[id(label)] = (target, follow)
    follow()
