"""napari reader: AFM files, folders and lists of them that :func:`read_stack` reads.

Registered in ``napari.yaml`` as ``napari-calcite-afm.get_reader``: napari calls
:func:`napari_get_reader` with a path (a file, a folder or a list of files) and, when it
returns :func:`read_afm`, calls that to get the layer.

The reader claims only what is clearly AFM data, and leaves ordinary images to napari's
own reader (it returns None for them):

- vendor files (``.spm``, ``.000``-``.999``, ``.ibw``, ``.gwy``, ``.jpk``, ``.h5-jpk``,
  ``.asd``, ``.stp``, ``.top``, ``.topostats``): always;
- TIFF: written by this package (its JSON in the ImageJ ``Info``), a Park Systems TIFF,
  an ImageJ TIFF whose values have a length unit (``vunit``) or whose pixels are in nm,
  a float TIFF with a length pixel unit, or a plain float TIFF whose values all lie
  below 1e-5 (heights in metres);
- ``.npz`` with this package's ``pixel_size_nm`` or ``frame_times_s`` arrays;
- never ``.npy`` (it carries no metadata to tell heights from any other array);
- a folder when it holds such a file; a list when every path is claimed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import AFMFileError
from ..io import read_stack
from ..io._common import _length_factor
from ..io.registry import _format_of, _is_frame_file, _natural_key
from .channels import remembered_channel
from .layers import image_layer_kwargs

__all__ = ["claims", "napari_get_reader", "read_afm"]

_VALUE_UNIT_KEYS = ("vunit", "zunit", "z_unit", "value_unit")
_Z_UNIT_RE = re.compile(r"\bz_?unit\"?\s*[=:]")
#: Formats told apart from ordinary images by their content, not their extension.
_CONTENT_CHECKED = ("tiff", "npy", "npz")


def _afm_tiff(path: Path) -> bool:
    """A TIFF with AFM metadata (see the module docstring); False when unreadable."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if 50432 in page.tags:  # Park Systems' magic number tag
                return True
            ij = tif.imagej_metadata or {}
            if "napari_calcite_afm" in str(ij.get("Info") or ""):
                return True
            if any(_length_factor(ij.get(key)) for key in _VALUE_UNIT_KEYS):
                return True
            if _Z_UNIT_RE.search(page.description or ""):
                return True
            unit = _length_factor(ij.get("unit"))
            floats = page.dtype is not None and page.dtype.kind == "f"
            if unit == 1.0 or (unit and floats):  # pixels in nm, or float heights
                return True
            if floats and getattr(page, "samplesperpixel", 1) == 1:
                values = np.abs(page.asarray())
                values = values[np.isfinite(values)]
                return bool(values.size) and 0 < float(values.max()) < 1e-5
    except Exception:
        return False
    return False


def _afm_npz(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return bool({"pixel_size_nm", "frame_times_s"} & set(npz.files))
    except Exception:
        return False


def _claims_file(p: Path) -> bool:
    fmt = _format_of(p)
    if fmt is None:
        return False
    if fmt not in _CONTENT_CHECKED:
        return True
    if not p.is_file():
        return False
    if fmt == "tiff":
        return _afm_tiff(p)
    return fmt == "npz" and _afm_npz(p)


def claims(path) -> bool:
    """Whether the reader takes ``path`` (a file, a folder or a list of files).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from napari_calcite_afm.io import write_tiff
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> claims(write_tiff(folder / "heights.tif", np.zeros((8, 8)), 11.7))
    True
    >>> import tifffile
    >>> tifffile.imwrite(folder / "photo.tif", np.zeros((8, 8, 3), np.uint8))
    >>> claims(folder / "photo.tif"), claims("scan.spm"), claims("array.npy")
    (False, True, False)
    """
    if isinstance(path, (list, tuple)):
        return bool(path) and all(claims(p) for p in path)
    p = Path(str(path))
    if p.is_dir():
        try:
            files = sorted((c for c in p.iterdir() if _is_frame_file(c)), key=_natural_key)
        except OSError:
            return False
        return any(_claims_file(c) for c in files)
    return _claims_file(p)


def napari_get_reader(path) -> Callable | None:
    """Return :func:`read_afm` if ``path`` is clearly AFM data, else None.

    See the module docstring for what is claimed; ordinary images (a photo, a plain
    microscopy TIFF, any ``.npy``) are left to napari's own reader.

    Examples
    --------
    >>> napari_get_reader("scan.gwy") is read_afm
    True
    >>> napari_get_reader(["frame.001", "frame.002"]) is read_afm
    True
    >>> napari_get_reader("notes.txt") is None
    True
    """
    return read_afm if claims(path) else None


def _read(path):
    """:func:`read_stack` with the channel remembered for this file, if any."""
    if isinstance(path, (list, tuple)):
        return read_stack(list(path))
    channel = remembered_channel(path)
    if channel is None:
        return read_stack(path)
    try:
        return read_stack(path, channel)
    except AFMFileError:  # the remembered channel is gone: the default one
        return read_stack(path)


def _follow_viewer() -> None:
    """Scale bar and colorbar in the viewer napari is opening the file in."""
    try:
        import napari

        from .conventions import apply_conventions

        viewer = napari.current_viewer()
        if viewer is not None:
            apply_conventions(viewer)
    except Exception:  # pragma: no cover - no viewer (scripts), or closing
        pass


def read_afm(path) -> list[tuple]:
    """Read an AFM file, folder or list of files into one image layer.

    The layer has ``scale`` in nm per pixel (and in seconds per frame on the time axis
    when the file gives frame times), the green-magenta colormap, robust contrast limits
    (percentiles without the scan lines far off, so settling lines and scars do not wash
    the image out) and the file's metadata. A list of files makes one time series, as
    :func:`napari_calcite_afm.io.read_stack`. The channel last chosen for the file in
    the Clean widget is read, else the default height channel. The viewer gets its
    scale bar and the colorbar "height (nm)" (:mod:`.conventions`).

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
    stack = _read(path)
    heights = stack.heights[0] if stack.heights.shape[0] == 1 else stack.heights
    name = Path(str(stack.source or (path[0] if isinstance(path, (list, tuple)) else path))).stem
    meta = {
        "source": str(stack.source) if stack.source else None,
        "format": stack.format,
        "channel": stack.channel,
        "frame_times_s": None
        if stack.frame_times_s is None
        else [float(t) for t in stack.frame_times_s],
        "channels": stack.metadata.get("channels"),
        "afm_metadata": stack.metadata,
    }
    _follow_viewer()
    return [(heights, image_layer_kwargs(heights, stack.pixel_size_nm, name, meta), "image")]
