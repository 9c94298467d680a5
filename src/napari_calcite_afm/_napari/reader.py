"""napari reader: every format :func:`napari_calcite_afm.io.read_stack` reads.

Registered in ``napari.yaml`` as ``napari-calcite-afm.get_reader``: napari calls
:func:`napari_get_reader` with a path (a file, a folder or a list of files) and, when it
returns :func:`read_afm`, calls that to get the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..io import SUPPORTED_EXTENSIONS, read_stack
from .layers import image_layer_kwargs

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
    """Return :func:`read_afm` if ``path`` (a file, a folder or a list) looks readable.

    A path is readable when its extension is one :mod:`napari_calcite_afm.io` reads
    (or a Bruker-style numbered one such as ``.001``); a folder when it holds such a
    file; a list when all its paths are.

    Examples
    --------
    >>> napari_get_reader("scan.gwy") is read_afm
    True
    >>> napari_get_reader(["frame.001", "frame.002"]) is read_afm
    True
    >>> napari_get_reader("notes.txt") is None
    True
    """
    return read_afm if _accepts(path) else None


def read_afm(path) -> list[tuple]:
    """Read an AFM file, folder or list of files into one image layer.

    The layer has ``scale`` in nm per pixel, the green-magenta colormap, robust contrast
    limits (percentiles, so scars do not wash the image out) and the file's metadata.
    A list of files makes one time series, as :func:`napari_calcite_afm.io.read_stack`.

    Returns
    -------
    list of tuple
        One ``(heights, kwargs, "image")``: heights in nm, ``(rows, cols)`` for one
        frame, else ``(frames, rows, cols)``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from napari_calcite_afm.io import write_tiff
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
    >>> _ = write_tiff(path, np.zeros((3, 16, 16), np.float32), 11.7)
    >>> [(heights, kwargs, kind)] = read_afm(str(path))
    >>> heights.shape, kwargs["name"], kwargs["scale"], kind
    ((3, 16, 16), 'movie', (1.0, 11.7, 11.7), 'image')
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
