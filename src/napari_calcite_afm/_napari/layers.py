"""The plugin's layers: the keyword arguments that make them, and reading them back.

Only numpy at module level (napari is imported inside the functions that need it):

- :func:`image_layer_kwargs` and :func:`labels_layer_kwargs` build the keyword arguments
  of the ``(data, kwargs, layer_type)`` tuples that napari turns into layers (scale in
  nm per pixel, the green-magenta colormap with robust contrast limits, the fixed label
  colours; the first axis is "time" in seconds when the frame times are known, else
  "frame"), or copy the axes of the layer they derive from (``like=``);
- :func:`pixel_size_of`, :func:`source_path_of`, :func:`layer_stack` and
  :func:`current_frame` read a layer back; :func:`add_or_update_layer` adds a layer or
  refreshes the one of the same name.

Examples
--------
>>> import numpy as np
>>> heights = np.zeros((2, 8, 8), np.float32)
>>> kwargs = image_layer_kwargs(heights, 11.7, "movie")
>>> kwargs["scale"], kwargs["units"], kwargs["axis_labels"]
((1.0, 11.7, 11.7), ('pixel', 'nm', 'nm'), ('frame', 'y', 'x'))
>>> timed = image_layer_kwargs(heights, 11.7, "movie", {"frame_times_s": [0.0, 300.0]})
>>> timed["scale"], timed["units"], timed["axis_labels"]
((300.0, 11.7, 11.7), ('s', 'nm', 'nm'), ('time', 'y', 'x'))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..colormap import COLORMAP_NAME, green_magenta, robust_contrast_limits
from ..errors import CalciteAFMError
from ..labels import LABEL_COLORS, LABEL_NAMES

__all__ = [
    "add_or_update_layer",
    "current_frame",
    "frame_interval_of",
    "image_layer_kwargs",
    "is_layer_type",
    "label_colormap",
    "labels_layer_kwargs",
    "layer_stack",
    "layer_unit_warning",
    "napari_colormap",
    "pixel_size_of",
    "source_path_of",
]


# --------------------------------------------------------------------------- making layers


def napari_colormap():
    """The green-magenta colormap as a ``napari.utils.Colormap``.

    Examples
    --------
    >>> napari_colormap().name
    'calcite green-magenta'
    """
    from napari.utils import Colormap

    return Colormap(green_magenta(256), name=COLORMAP_NAME, display_name="green-magenta (AFM)")


def label_colormap():
    """Fixed label colours: 1 multilayer pit, 2 terrace, 3 monolayer pit (0 clear).

    Examples
    --------
    >>> [round(float(v), 2) for v in label_colormap().map(2)[:3]]
    [0.12, 0.47, 0.85]
    """
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {k: v for k, v in LABEL_COLORS.items()}
    colors[None] = (0.0, 0.0, 0.0, 0.0)
    return DirectLabelColormap(color_dict=colors)


def frame_interval_of(metadata: dict | None) -> float | None:
    """The time between frames (s) from ``metadata["frame_times_s"]``, or None.

    The median of the differences, when there are two or more finite, increasing times.

    Examples
    --------
    >>> frame_interval_of({"frame_times_s": [0.0, 2.5, 5.0]})
    2.5
    >>> frame_interval_of({"frame_times_s": [float("nan")] * 3}) is None
    True
    """
    times = (metadata or {}).get("frame_times_s")
    if times is None:
        return None
    t = np.asarray(times, dtype=float).ravel()
    if t.size < 2 or not np.all(np.isfinite(t)):
        return None
    dt = float(np.median(np.diff(t)))
    return dt if np.isfinite(dt) and dt > 0 else None


def _axes(ndim: int, pixel_size_nm: float, interval_s: float | None, like) -> dict[str, Any]:
    """``scale``, ``units`` and ``axis_labels`` (and ``translate`` when ``like`` is given)."""
    if like is not None:
        n = min(ndim, like.ndim)
        lead = ndim - n  # a frame of a stack takes the stack's last axes
        return {
            "scale": (1.0,) * lead + tuple(float(v) for v in like.scale[-n:]),
            "translate": (0.0,) * lead + tuple(float(v) for v in like.translate[-n:]),
            "units": ("pixel",) * lead + tuple(str(u) for u in like.units[-n:]),
            "axis_labels": ("frame",) * lead + tuple(like.axis_labels[-n:]),
        }
    extra = ndim - 2
    return {
        "scale": (float(interval_s or 1.0),) * extra + (float(pixel_size_nm),) * 2,
        "units": ("s" if interval_s else "pixel",) * extra + ("nm", "nm"),
        "axis_labels": ("time" if interval_s else "frame",) * extra + ("y", "x"),
    }


def image_layer_kwargs(
    heights: np.ndarray,
    pixel_size_nm: float,
    name: str,
    metadata: dict | None = None,
    *,
    like=None,
) -> dict[str, Any]:
    """Keyword arguments of an AFM height image layer.

    Parameters
    ----------
    heights : numpy.ndarray
        Heights in nm, ``(rows, cols)`` or ``(frames, rows, cols)``.
    pixel_size_nm : float
        Pixel size in nm: the layer's ``scale``, so napari's rulers read nm.
    name : str
        Layer name.
    metadata : dict, optional
        Stored in the layer's ``metadata`` (plus ``pixel_size_nm``). Its
        ``frame_times_s`` make the first axis of a stack "time" in seconds (scale: the
        frame interval), else it is "frame".
    like : napari.layers.Layer, optional
        The layer this one derives from: its scale, translation, units and axis labels
        are copied (the last two axes for a frame of a stack), so both stay aligned.

    Returns
    -------
    dict
        ``name``, ``scale`` (nm per pixel; s per frame when timed), ``colormap``,
        ``contrast_limits`` (robust percentiles, nm; scan lines far off left out),
        ``metadata``, ``units`` and ``axis_labels`` (and ``translate`` with ``like``).

    Examples
    --------
    >>> import numpy as np
    >>> kwargs = image_layer_kwargs(np.zeros((16, 16)), 5.0, "scan", {"source": "a.gwy"})
    >>> kwargs["scale"], kwargs["axis_labels"], kwargs["metadata"]
    ((5.0, 5.0), ('y', 'x'), {'source': 'a.gwy', 'pixel_size_nm': 5.0})
    """
    meta = dict(metadata or {})
    meta["pixel_size_nm"] = float(pixel_size_nm)
    return {
        "name": name,
        "colormap": napari_colormap(),
        "contrast_limits": robust_contrast_limits(heights),
        "metadata": meta,
        **_axes(heights.ndim, pixel_size_nm, frame_interval_of(meta), like),
    }


def labels_layer_kwargs(
    labels: np.ndarray,
    pixel_size_nm: float,
    name: str,
    metadata: dict | None = None,
    *,
    like=None,
) -> dict[str, Any]:
    """Keyword arguments of a class Labels layer (fixed colours, scale in nm).

    Parameters
    ----------
    labels : numpy.ndarray
        Label values 0..3, ``(rows, cols)`` or ``(frames, rows, cols)``.
    pixel_size_nm : float
        Pixel size in nm (the layer's ``scale``).
    name : str
        Layer name.
    metadata : dict, optional
        Stored in the layer's ``metadata`` (plus ``pixel_size_nm`` and ``label_names``);
        ``frame_times_s`` time the first axis as for :func:`image_layer_kwargs`.
    like : napari.layers.Layer, optional
        The image the labels belong to: its scale, translation, units and axis labels
        are copied.

    Examples
    --------
    >>> import numpy as np
    >>> kwargs = labels_layer_kwargs(np.zeros((3, 8, 8), np.uint8), 11.7, "masks")
    >>> kwargs["scale"], kwargs["opacity"], kwargs["metadata"]["label_names"][2]
    ((1.0, 11.7, 11.7), 0.5, 'terrace (B)')
    """
    meta = dict(metadata or {})
    meta["pixel_size_nm"] = float(pixel_size_nm)
    meta["label_names"] = {int(k): v for k, v in LABEL_NAMES.items()}
    return {
        "name": name,
        "colormap": label_colormap(),
        "opacity": 0.5,
        "metadata": meta,
        **_axes(labels.ndim, pixel_size_nm, frame_interval_of(meta), like),
    }


# --------------------------------------------------------------------------- reading layers


def pixel_size_of(layer) -> float:
    """Pixel size in nm of an image or labels layer (its metadata, else its scale).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> pixel_size_of(SimpleNamespace(metadata={"pixel_size_nm": 11.7}, scale=(1.0, 1.0)))
    11.7
    >>> pixel_size_of(SimpleNamespace(metadata={}, scale=(1.0, 5.0, 5.0)))
    5.0
    """
    meta = getattr(layer, "metadata", None) or {}
    px = meta.get("pixel_size_nm")
    if px:
        return float(px)
    return float(layer.scale[-1])


def source_path_of(layer) -> Path | None:
    """The file or folder a layer was read from, if any.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> source_path_of(SimpleNamespace(metadata={"source": "/data/scan.gwy"})).name
    'scan.gwy'
    >>> source_path_of(SimpleNamespace(metadata={})) is None
    True
    """
    meta = getattr(layer, "metadata", None) or {}
    for candidate in (meta.get("source"), getattr(getattr(layer, "source", None), "path", None)):
        if candidate:
            return Path(str(candidate))
    return None


def layer_unit_warning(layer) -> str | None:
    """The warning for a layer whose values are not heights in nm, or None.

    The reader keeps the file's channel and unit in the layer's metadata (``channel``,
    ``afm_metadata["z_unit"]``); a layer without them (a plain image) is not judged.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> meta = {"channel": "Phase", "afm_metadata": {"z_unit": "deg"}}
    >>> layer_unit_warning(SimpleNamespace(name="scan", metadata=meta))[:48]
    "channel 'Phase' of layer 'scan' holds values in "
    >>> layer_unit_warning(SimpleNamespace(name="scan", metadata={})) is None
    True
    """
    from ..segmentation.scale import height_unit_warning

    meta = getattr(layer, "metadata", None) or {}
    unit = (meta.get("afm_metadata") or {}).get("z_unit")
    return height_unit_warning(unit, meta.get("channel"), f"layer {layer.name!r}")


def layer_stack(layer) -> np.ndarray:
    """A layer's data as a float32 ``(frames, rows, cols)`` stack (a copy-free view if possible).

    Raises
    ------
    CalciteAFMError
        When the data is neither a frame nor a stack of frames.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> stack = layer_stack(SimpleNamespace(name="scan", data=np.zeros((4, 5))))
    >>> stack.shape, stack.dtype
    ((1, 4, 5), dtype('float32'))
    """
    data = np.asarray(layer.data)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise CalciteAFMError(
            f"layer {layer.name!r}: expected a frame (rows, cols) or a stack "
            f"(frames, rows, cols), got shape {data.shape}"
        )
    return data.astype(np.float32, copy=False)


def current_frame(viewer, layer) -> int:
    """Index of the frame of ``layer`` shown at the viewer's current time-slider position.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> layer = viewer.add_image(np.zeros((5, 8, 8)))
    >>> viewer.dims.set_current_step(0, 3)
    >>> current_frame(viewer, layer)
    3
    """
    if layer is None or layer.ndim < 3:
        return 0
    n = int(np.shape(layer.data)[0])
    try:
        index = float(layer.world_to_data(viewer.dims.point)[0])
    except Exception:  # pragma: no cover - odd transforms
        index = float(viewer.dims.current_step[-layer.ndim])
    return int(np.clip(np.round(index), 0, max(n - 1, 0)))


def is_layer_type(layer, layer_type: str) -> bool:
    """``isinstance`` check by name (``"image"``, ``"labels"``...), public API only.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> is_layer_type(Image(np.zeros((4, 4))), "image")
    True
    """
    import napari.layers

    cls = getattr(napari.layers, layer_type.capitalize(), None)
    return cls is not None and isinstance(layer, cls)


def add_or_update_layer(viewer, data, kwargs: dict[str, Any], layer_type: str):
    """Add a layer named ``kwargs['name']``, or replace the data of the existing one.

    The existing layer is kept (with its display settings) when it has the same type and
    shape; its ``scale``, ``translate``, ``metadata`` and ``contrast_limits`` follow
    ``kwargs``.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> frame = np.ones((8, 8), np.float32)
    >>> first = add_or_update_layer(viewer, frame, image_layer_kwargs(frame, 2.0, "a"), "image")
    >>> again = add_or_update_layer(viewer, 2 * frame, {"name": "a"}, "image")
    >>> again is first, len(viewer.layers), float(first.data.max())
    (True, 1, 2.0)
    """
    name = kwargs["name"]
    if name in viewer.layers:
        layer = viewer.layers[name]
        if is_layer_type(layer, layer_type) and np.shape(layer.data) == np.shape(data):
            layer.data = data
            for key in ("scale", "translate", "metadata", "contrast_limits"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            return layer
        viewer.layers.remove(name)
    adder = getattr(viewer, f"add_{layer_type}")
    return adder(data, **kwargs)
