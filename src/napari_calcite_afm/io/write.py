"""Writing height, label and probability stacks as ImageJ hyperstack TIFFs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write
from ..errors import CalciteAFMError
from ._common import _jsonable

__all__ = ["write_tiff"]


def _tiff_data(out: Path, data: np.ndarray) -> np.ndarray:
    """``data`` checked and converted: uint8 for labels in 0..255, else float32; 3-D or 4-D."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise CalciteAFMError(f"{out}: cannot write {arr.dtype} data as TIFF (numeric data needed)")
    if arr.ndim not in (2, 3, 4):
        raise CalciteAFMError(
            f"{out}: data must be (rows, cols), (frames, rows, cols) or "
            f"(frames, channels, rows, cols), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise CalciteAFMError(f"{out}: data are empty (shape {arr.shape})")
    return arr


def _positive(out: Path, name: str, value: Any) -> float:
    """``value`` as a finite positive float, else a CalciteAFMError naming ``name``."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise CalciteAFMError(f"{out}: {name} must be positive, got {value!r}")
    return number


def write_tiff(
    path: Any,
    data: np.ndarray,
    pixel_size_nm: float,
    *,
    frame_interval_s: float | None = None,
    unit: str = "nm",
    metadata: dict | None = None,
    compression: str | None = None,
) -> Path:
    """Write a height or label stack as an ImageJ hyperstack TIFF.

    The file opens in Fiji/ImageJ and napari with its scale (ImageJ ``unit=nm`` and
    ``XResolution = YResolution = 1 / pixel_size_nm``) and is read back by
    :func:`~napari_calcite_afm.io.stack.read_stack` /
    :func:`~napari_calcite_afm.io.labels.read_labels` with the same pixel size. The
    write is atomic: the data go to a temporary file in the same folder, which then
    replaces ``path``. Missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.tif`` or ``.tiff``).
    data : numpy.ndarray
        ``(rows, cols)``, ``(frames, rows, cols)`` or, for per-class images such as
        probabilities, ``(frames, channels, rows, cols)`` (ImageJ axes ``TCYX``).
        Integer and boolean arrays whose values lie in 0..255 (label stacks) are written
        as ``uint8``; everything else as ``float32`` (heights, NaN kept).
    pixel_size_nm : float
        Pixel size in nm per pixel (> 0).
    frame_interval_s : float, optional
        Time between frames in seconds (ImageJ ``finterval``).
    unit : str, default "nm"
        Unit of the data values (ImageJ ``vunit``); ``read_stack`` converts length
        units back to nm.
    metadata : dict, optional
        Extra JSON-serialisable metadata, stored as JSON in the ImageJ ``Info`` property
        under ``"napari_calcite_afm"``; read back into ``AFMStack.metadata["saved"]``.
    compression : str, optional
        TIFF compression understood by tifffile (e.g. ``"zlib"``); None writes
        uncompressed data, which every reader opens fastest.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    CalciteAFMError
        Bad data (not 2-D/3-D/4-D, empty, non-numeric) or bad pixel size / frame interval.
    AFMFileError
        The file cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_calcite_afm.io import read_labels, read_stack
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sub" / "labels.tif"
    >>> labels = np.zeros((2, 8, 8), dtype=np.uint8)
    >>> labels[:, :4] = 2
    >>> write_tiff(out, labels, 5.0).name
    'labels.tif'
    >>> read_labels(out).dtype, read_stack(out).pixel_size_nm
    (dtype('uint8'), 5.0)
    """
    import tifffile

    out = Path(path)
    arr = _tiff_data(out, data)
    try:
        px = float(pixel_size_nm)
    except (TypeError, ValueError) as exc:
        raise CalciteAFMError(
            f"{out}: pixel_size_nm must be a number, got {pixel_size_nm!r}"
        ) from exc
    _positive(out, "pixel_size_nm", pixel_size_nm)
    if frame_interval_s is not None:
        _positive(out, "frame_interval_s", frame_interval_s)
    if arr.dtype.kind in "biu" and (arr.dtype.kind == "b" or (arr.min() >= 0 and arr.max() <= 255)):
        arr = arr.astype(np.uint8)
    else:
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    ij: dict[str, Any] = {"axes": "TCYX" if arr.ndim == 4 else "TYX", "unit": "nm"}
    if arr.dtype == np.float32 and unit:
        ij["vunit"] = str(unit)
    if frame_interval_s is not None:
        ij["finterval"] = float(frame_interval_s)
    saved = {"pixel_size_nm": px}
    if arr.dtype == np.float32 and unit:
        saved["z_unit"] = str(unit)
    if frame_interval_s is not None:
        saved["frame_interval_s"] = float(frame_interval_s)
    if metadata:
        saved["metadata"] = _jsonable(metadata)
    ij["Info"] = json.dumps({"napari_calcite_afm": saved}, default=str)
    with atomic_write(out, "wb", what="the TIFF file") as fh:
        # tifffile wants a file name from an open file; os.fdopen's is an integer
        tifffile.imwrite(
            tifffile.FileHandle(fh, "wb", name=out.name),
            arr,
            imagej=True,
            resolution=(1.0 / px, 1.0 / px),
            metadata=ij,
            compression=compression,
        )
    return out
