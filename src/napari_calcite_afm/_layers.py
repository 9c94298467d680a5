"""Layer-data helpers shared by the reader, the sample data and the widgets.

Only numpy here (no napari import at module level): these build the ``(data, kwargs,
layer_type)`` tuples that napari turns into layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .colormap import (
    COLORMAP_NAME,
    LABEL_COLORS,
    LABEL_NAMES,
    green_magenta,
    robust_contrast_limits,
)

__all__ = ["image_layer_kwargs", "labels_layer_kwargs", "napari_colormap", "label_colormap"]


def napari_colormap():
    """The green-magenta colormap as a ``napari.utils.Colormap``."""
    from napari.utils import Colormap

    return Colormap(green_magenta(256), name=COLORMAP_NAME, display_name="green-magenta (AFM)")


def label_colormap():
    """Fixed label colours: 1 multilayer pit, 2 terrace, 3 monolayer pit."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {k: v for k, v in LABEL_COLORS.items()}
    colors[None] = (0.0, 0.0, 0.0, 0.0)
    return DirectLabelColormap(color_dict=colors)


def _scale(ndim: int, pixel_size_nm: float) -> tuple[float, ...]:
    return (1.0,) * (ndim - 2) + (float(pixel_size_nm), float(pixel_size_nm))


def _units(ndim: int) -> tuple[str, ...]:
    return ("pixel",) * (ndim - 2) + ("nm", "nm")


def _axis_labels(ndim: int) -> tuple[str, ...]:
    return ("frame",) * (ndim - 2) + ("y", "x")


def image_layer_kwargs(
    heights: np.ndarray,
    pixel_size_nm: float,
    name: str,
    metadata: dict | None = None,
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
        Stored in the layer's ``metadata`` (plus ``pixel_size_nm``).
    """
    meta = dict(metadata or {})
    meta["pixel_size_nm"] = float(pixel_size_nm)
    return {
        "name": name,
        "scale": _scale(heights.ndim, pixel_size_nm),
        "colormap": napari_colormap(),
        "contrast_limits": robust_contrast_limits(heights),
        "metadata": meta,
        "units": _units(heights.ndim),
        "axis_labels": _axis_labels(heights.ndim),
    }


def labels_layer_kwargs(
    labels: np.ndarray, pixel_size_nm: float, name: str, metadata: dict | None = None
) -> dict[str, Any]:
    """Keyword arguments of a class Labels layer (fixed colours, scale in nm)."""
    meta = dict(metadata or {})
    meta["pixel_size_nm"] = float(pixel_size_nm)
    meta["label_names"] = {int(k): v for k, v in LABEL_NAMES.items()}
    return {
        "name": name,
        "scale": _scale(labels.ndim, pixel_size_nm),
        "colormap": label_colormap(),
        "opacity": 0.5,
        "units": _units(labels.ndim),
        "axis_labels": _axis_labels(labels.ndim),
        "metadata": meta,
    }
