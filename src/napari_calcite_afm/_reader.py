"""napari reader: every format :func:`napari_calcite_afm.io.read_stack` reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._layers import image_layer_kwargs
from .io import SUPPORTED_EXTENSIONS, read_stack

__all__ = ["napari_get_reader", "read_afm"]


def _accepts(path) -> bool:
    if isinstance(path, (list, tuple)):
        return bool(path) and all(_accepts(p) for p in path)
    p = Path(str(path))
    if p.is_dir():
        return any(_accepts(child) for child in p.iterdir() if child.is_file())
    suffix = p.suffix.lower()
    return suffix in SUPPORTED_EXTENSIONS or (len(suffix) == 4 and suffix[1:].isdigit())


def napari_get_reader(path) -> Callable | None:
    """Return :func:`read_afm` if ``path`` (a file, a folder or a list) looks readable."""
    return read_afm if _accepts(path) else None


def read_afm(path) -> list[tuple]:
    """Read an AFM file, folder or list of files into one image layer.

    The layer has ``scale`` in nm per pixel, the green-magenta colormap, robust contrast
    limits (percentiles, so scars do not wash the image out) and the file's metadata.
    A list of files makes one time series, as :func:`napari_calcite_afm.io.read_stack`.
    """
    stack = read_stack(list(path) if isinstance(path, (list, tuple)) else path)
    heights = stack.heights[0] if stack.heights.shape[0] == 1 else stack.heights
    name = Path(str(stack.source or (path[0] if isinstance(path, (list, tuple)) else path))).stem
    meta = {
        "source": str(stack.source) if stack.source else None,
        "format": stack.format,
        "channel": stack.channel,
        "frame_times_s": None
        if stack.frame_times_s is None
        else [float(t) for t in stack.frame_times_s],
        "afm_metadata": stack.metadata,
    }
    return [(heights, image_layer_kwargs(heights, stack.pixel_size_nm, name, meta), "image")]
