"""Writing height, label and probability stacks as ImageJ hyperstack TIFFs, and height
and label stacks as Gwyddion ``.gwy`` files (:func:`write_gwy`, with ``gwyfile``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write
from ..errors import CalciteAFMError
from ._common import _jsonable, _length_factor
from .gwyddion import GWY_STACK_KEY

__all__ = ["write_gwy", "write_tiff"]


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


# ----------------------------------------------------------------------------- Gwyddion
def _gwy_frames(out: Path, data: Any, what: str) -> np.ndarray:
    """``data`` as float64 ``(frames, rows, cols)``, checked."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise CalciteAFMError(f"{out}: cannot write {arr.dtype} {what} (numeric data needed)")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or arr.size == 0:
        raise CalciteAFMError(
            f"{out}: {what} must be (rows, cols) or (frames, rows, cols), got shape {arr.shape}"
        )
    return arr.astype(np.float64)


def _gwy_field(values: np.ndarray, xreal: float, yreal: float, z_unit: str):
    """A ``GwyDataField`` of one frame (lateral sizes in m)."""
    from gwyfile.objects import GwyDataField

    return GwyDataField(
        np.ascontiguousarray(values), xreal=xreal, yreal=yreal, si_unit_xy="m", si_unit_z=z_unit
    )


def _gwy_meta(entries: dict[str, str]):
    """A ``GwyContainer`` of metadata strings (Gwyddion's metadata browser shows them)."""
    from gwyfile.objects import GwyContainer

    return GwyContainer({k: str(v) for k, v in entries.items()}, {k: "s" for k in entries})


def _gwy_put(container, key: str, value: Any, code: str | None = None) -> None:
    container[key] = value
    if code:  # strings of one character would otherwise be stored as chars
        container.typecodes[key] = code


def write_gwy(
    path: Any,
    stack: np.ndarray,
    pixel_size_nm: float,
    *,
    labels: np.ndarray | None = None,
    frame_times_s: Any = None,
    channel: str = "height",
    unit: str = "nm",
    metadata: dict | None = None,
) -> Path:
    """Write a height stack (and its labels) as a Gwyddion ``.gwy`` file.

    Each frame becomes one data field titled ``"<channel> frame <i>"`` (0-based, as
    napari counts frames), with Gwyddion's units: lengths in metres (``xreal``,
    ``yreal`` and length-valued heights), ``si_unit_xy = "m"``. NaN pixels (not
    recorded) are filled with the frame's mean and marked in the frame's mask
    (``/N/mask``), as Gwyddion marks invalid data. Labels become a second group of
    fields, ``"labels frame <i>"`` (values 0-3, no unit). The file opens in Gwyddion,
    and :func:`~napari_calcite_afm.io.stack.read_stack` reads it back as the same stack
    (channel ``channel``; ``"labels"`` for the labels, which
    :func:`~napari_calcite_afm.io.labels.read_labels` also reads). The write is atomic,
    as :func:`write_tiff`'s. Needs the ``gwyfile`` package.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.gwy``).
    stack : numpy.ndarray
        ``(rows, cols)`` or ``(frames, rows, cols)`` values, heights in ``unit``.
    pixel_size_nm : float
        Pixel size in nm per pixel (> 0).
    labels : numpy.ndarray, optional
        Label stack of the same shape (values 0-3).
    frame_times_s : sequence of float, optional
        Time of each frame in seconds (stored and read back as ``frame_times_s``).
    channel : str, default "height"
        Name of the group of fields (the channel that ``read_stack`` lists).
    unit : str, default "nm"
        Unit of the values: a length unit (``"nm"``, ``"m"``...) is converted to metres;
        anything else (``"deg"``) is written as it is, with that unit.
    metadata : dict, optional
        JSON-serialisable metadata, stored as JSON in each frame's metadata.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    CalciteAFMError
        Bad data (not 2-D/3-D, empty, non-numeric), labels of another shape, frame
        times that do not match the frames, a bad pixel size, or ``gwyfile`` missing.
    AFMFileError
        The file cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_calcite_afm.io import read_stack
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "movie.gwy"
    >>> heights = np.arange(2 * 8 * 10, dtype=np.float32).reshape(2, 8, 10)
    >>> write_gwy(out, heights, 5.0, frame_times_s=[0.0, 4.0]).name
    'movie.gwy'
    >>> back = read_stack(out)
    >>> back.channel, back.heights.shape, back.pixel_size_nm, back.frame_interval_s
    ('height', (2, 8, 10), 5.0, 4.0)
    >>> bool(np.allclose(back.heights, heights))
    True
    """
    out = Path(path)
    try:
        from gwyfile.objects import GwyContainer
    except ImportError as exc:
        raise CalciteAFMError(
            f"{out}: writing .gwy files needs the gwyfile package (pip install gwyfile)"
        ) from exc
    frames = _gwy_frames(out, stack, "heights")
    try:
        px = _positive(out, "pixel_size_nm", pixel_size_nm)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CalciteAFMError):
            raise
        raise CalciteAFMError(
            f"{out}: pixel_size_nm must be a number, got {pixel_size_nm!r}"
        ) from exc
    channel = str(channel)
    groups = {channel: frames}
    if labels is not None:
        if channel == "labels":
            raise CalciteAFMError(f"{out}: the heights' channel cannot be named 'labels'")
        lab = _gwy_frames(out, labels, "labels")
        if lab.shape != frames.shape:
            raise CalciteAFMError(
                f"{out}: labels of shape {lab.shape} do not match the heights {frames.shape}"
            )
        groups["labels"] = lab
    times = None
    if frame_times_s is not None:
        times = [float(t) for t in np.asarray(frame_times_s, dtype=float).reshape(-1)]
        if len(times) != frames.shape[0]:
            raise CalciteAFMError(f"{out}: {len(times)} frame times for {frames.shape[0]} frames")
    factor = _length_factor(unit)
    z_unit, scale = ("m", factor * 1e-9) if factor else (str(unit), 1.0)
    n_frames, rows, cols = frames.shape
    xreal, yreal = cols * px * 1e-9, rows * px * 1e-9
    container = GwyContainer()
    info: dict[str, Any] = {"version": 1, "pixel_size_nm": px, "groups": {}, "nan_masks": True}
    extra = json.dumps(_jsonable(metadata), default=str) if metadata else None
    number = 0
    for name, data in groups.items():
        info["groups"][name] = list(range(number, number + n_frames))
        for i in range(n_frames):
            values = data[i] * (scale if name == channel else 1.0)
            bad = ~np.isfinite(values)
            if bad.all():
                raise CalciteAFMError(f"{out}: frame {i} of {name} holds no finite value")
            if bad.any():
                values = np.where(bad, np.mean(values[~bad]), values)
                mask = _gwy_field(bad.astype(np.float64), xreal, yreal, "")
                _gwy_put(container, f"/{number}/mask", mask)
            field_unit = z_unit if name == channel else ""
            _gwy_put(container, f"/{number}/data", _gwy_field(values, xreal, yreal, field_unit))
            _gwy_put(container, f"/{number}/data/title", f"{name} frame {i}", "s")
            meta = {"Frame": str(i), "Pixel size": f"{px:.6g} nm", "Software": "napari-calcite-afm"}
            if times is not None:
                meta["Time"] = f"{times[i]:.6g} s"
            if extra:
                meta["napari-calcite-afm"] = extra
            _gwy_put(container, f"/{number}/meta", _gwy_meta(meta))
            number += 1
    _gwy_put(container, "/0/data/visible", True, "b")  # Gwyddion opens the first frame
    info["frame_times_s"] = times
    _gwy_put(container, GWY_STACK_KEY, json.dumps(info), "s")
    with atomic_write(out, "wb", what="the Gwyddion file") as fh:
        container.tofile(fh)
    return out
