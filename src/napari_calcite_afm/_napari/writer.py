"""napari writers: label and image layers to ImageJ TIFF with the pixel size in nm, and
image layers to Gwyddion ``.gwy`` files.

Registered in ``napari.yaml`` as ``napari-calcite-afm.write_labels``,
``napari-calcite-afm.write_image`` and ``napari-calcite-afm.write_image_gwy``: napari
calls them with the path, the layer's data and its attributes (``meta``: ``metadata``,
``scale``...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io import write_gwy, write_tiff

__all__ = ["write_image", "write_image_gwy", "write_labels"]


def _pixel_size(meta: dict[str, Any]) -> float:
    if meta.get("pixel_size_nm"):
        return float(meta["pixel_size_nm"])
    scale = meta.get("scale")
    if scale is not None and len(scale) >= 2:
        return float(scale[-1])
    return 1.0


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer as a uint8 TIFF (0 unlabelled, 1-3 classes).

    The pixel size (nm) comes from the layer's ``metadata["pixel_size_nm"]``, else its
    ``scale``. Returns the list of the one file written.

    Raises
    ------
    ValueError
        When a label value lies outside 0..255.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from napari_calcite_afm.io import read_labels
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.tif"
    >>> labels = np.array([[0, 1], [2, 3]])
    >>> _ = write_labels(str(path), labels, {"scale": (11.7, 11.7)})
    >>> read_labels(path).ravel().tolist()
    [0, 1, 2, 3]
    """
    labels = np.asarray(data)
    if labels.max(initial=0) > 255 or labels.min(initial=0) < 0:
        raise ValueError(f"{path}: label values must lie in 0..255 to be saved as uint8")
    md = meta.get("metadata") or {}
    px = float(md.get("pixel_size_nm") or _pixel_size(meta))
    out = write_tiff(path, labels.astype(np.uint8), px)
    return [str(out)]


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer as a float32 TIFF of heights in nm.

    The pixel size (nm) comes from the layer's ``metadata["pixel_size_nm"]``, else its
    ``scale``. Returns the list of the one file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from napari_calcite_afm.io import read_stack
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "heights.tif"
    >>> _ = write_image(str(path), np.ones((8, 8)), {"metadata": {"pixel_size_nm": 11.7}})
    >>> round(read_stack(path).pixel_size_nm, 3)
    11.7
    """
    md = meta.get("metadata") or {}
    px = float(md.get("pixel_size_nm") or _pixel_size(meta))
    out = write_tiff(path, np.asarray(data, dtype=np.float32), px)
    return [str(out)]


def write_image_gwy(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer as a Gwyddion ``.gwy`` file of heights in nm.

    One data field per frame (``"height frame 0"``...), in metres as Gwyddion expects
    (:func:`~napari_calcite_afm.io.write.write_gwy`). The pixel size (nm) comes from the
    layer's ``metadata["pixel_size_nm"]``, else its ``scale``; the frame times from
    ``metadata["frame_times_s"]`` where they match the frames. Returns the list of the
    one file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from napari_calcite_afm.io import read_stack
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "heights.gwy"
    >>> meta = {"metadata": {"pixel_size_nm": 11.7, "frame_times_s": [0.0, 5.0]}}
    >>> _ = write_image_gwy(str(path), np.ones((2, 8, 8)), meta)
    >>> stack = read_stack(path)
    >>> stack.pixel_size_nm, stack.frame_interval_s
    (11.7, 5.0)
    """
    md = meta.get("metadata") or {}
    px = float(md.get("pixel_size_nm") or _pixel_size(meta))
    heights = np.asarray(data, dtype=np.float32)
    times = md.get("frame_times_s")
    n_frames = heights.shape[0] if heights.ndim == 3 else 1
    if times is None or np.size(times) != n_frames:
        times = None
    out = write_gwy(path, heights, px, frame_times_s=times)
    return [str(out)]
