"""The height stack, :class:`AFMStack`, and the readers of files, folders and lists.

:func:`read_stack` reads one file through the format table
(:mod:`~napari_calcite_afm.io.registry`), or a folder or list of files as one movie;
every result is validated here: float32 ``(frames, rows, cols)`` heights in nm, NaN
for unrecorded pixels, a positive pixel size in nm, frame times that match the frames.
:func:`list_channels` names the channels :func:`read_stack` accepts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _check_readable, _jsonable, _warn, _z_factor_arg
from ._limits import check_frame_shape, check_heights, check_pixel_size, memory_guard
from .registry import (
    _SUPPORTED_TEXT,
    FORMATS,
    _format_of,
    _is_frame_file,
    _natural_key,
    _unsupported,
)

__all__ = ["AFMStack", "list_channels", "read_stack"]

#: Relative difference of the row pitch and the pixel width beyond which a file's pixels
#: count as not square (``metadata["non_square_pixels"]`` and a UserWarning). Smaller
#: differences (Asylum's 30 x 60 um scan over 256 x 512 points: 0.2 %) are within
#: what a scanner's calibration holds, and the pixels are taken as square.
NON_SQUARE_TOLERANCE = 0.01


@dataclass
class AFMStack:
    """A stack of AFM height frames with its physical scale.

    Attributes
    ----------
    heights : numpy.ndarray
        ``float32`` array ``(frames, rows, cols)`` of heights in nm; NaN marks pixels
        that were not recorded.
    pixel_size_nm : float
        Pixel size in nm per pixel (isotropic; the fast-axis size where a file has
        non-square pixels, see ``metadata["pixel_size_y_nm"]``).
    channel : str
        Name of the channel that was read.
    frame_times_s : numpy.ndarray or None
        Time of each frame in seconds, where the file records it.
    source : str or None
        The file, folder or list of files the stack came from.
    format : str
        Short name of the file format (``"spm"``, ``"ibw"``, ``"gwy"``, ``"tiff"``...).
    metadata : dict
        Raw metadata, JSON-friendly where possible. Keys set by this module include
        ``z_unit`` (unit of ``heights``: ``"nm"`` for heights), ``channels``,
        ``pixel_size_assumed``, ``pixel_size_y_nm`` (the row pitch, where the file
        gives one) and ``non_square_pixels`` (True where the row pitch differs from
        ``pixel_size_nm`` by more than 1 %).

    Examples
    --------
    >>> import numpy as np
    >>> stack = AFMStack(np.zeros((3, 64, 128), np.float32), pixel_size_nm=2.0,
    ...                  frame_times_s=np.array([0.0, 5.0, 10.0]))
    >>> stack.n_frames, stack.shape, stack.frame_interval_s
    (3, (64, 128), 5.0)
    """

    heights: np.ndarray
    pixel_size_nm: float
    channel: str = "height"
    frame_times_s: np.ndarray | None = None
    source: str | None = None
    format: str = "unknown"
    metadata: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.heights.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(rows, cols)`` in pixels."""
        return (int(self.heights.shape[-2]), int(self.heights.shape[-1]))

    @property
    def frame_interval_s(self) -> float | None:
        """Median time between frames in seconds, or None where unknown."""
        if self.frame_times_s is None:
            return None
        t = np.asarray(self.frame_times_s, dtype=float)
        if t.size < 2:
            return None
        dt = float(np.median(np.diff(t)))
        return dt if math.isfinite(dt) and dt > 0 else None


def _folder_files(folder: Path) -> list[Path]:
    """The supported files of a folder in natural order; refuses a folder without any."""
    files = sorted((c for c in folder.iterdir() if _is_frame_file(c)), key=_natural_key)
    if not files:
        raise AFMFileError(
            folder, f"the folder holds no supported AFM file (supported: {_SUPPORTED_TEXT})"
        )
    return files


def list_channels(path: Any) -> list[str]:
    """List the image channels of an AFM file.

    Parameters
    ----------
    path : str or os.PathLike
        A file of a supported format (see
        :data:`~napari_calcite_afm.io.registry.SUPPORTED_EXTENSIONS`), or a folder (the
        channels of its first file in natural order).

    Returns
    -------
    list of str
        Channel names as :func:`read_stack` accepts them (e.g. ``["Height",
        "Amplitude"]`` for Bruker, ``["height_trace", ...]`` for JPK). Single-channel
        formats (TIFF, .npy, WSxM) return ``["height"]``; .npz returns its array names.

    Raises
    ------
    AFMFileError
        If the file is missing, unsupported or unreadable.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.npz"
    >>> np.savez(path, heights=np.zeros((8, 8)), amplitude=np.ones((8, 8)))
    >>> list_channels(path)
    ['heights', 'amplitude']
    >>> read_stack(path, "amplitude").channel
    'amplitude'
    """
    p = Path(path)
    if p.is_dir():
        p = _folder_files(p)[0]
    _check_readable(p)
    fmt = _format_of(p)
    if fmt is None:
        raise _unsupported(p)
    lister = FORMATS[fmt].channels
    if lister is not None:
        with memory_guard(p):
            return lister(p)
    # the remaining formats are cheap enough to read in full
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(read_stack(p).metadata.get("channels", []))


def _read_raw(
    path: Path, fmt: str, channel: str | None, z_unit: str | None
) -> tuple[Raw, str, float]:
    """The raw read of a file through its format, the format name (``"park-tiff"`` for
    a Park TIFF) and the factor to nm still to apply (from ``z_unit`` for .npy/.npz)."""
    entry = FORMATS[fmt]
    factor = 1.0
    if entry.z_unit == "reader":
        raw, fmt = entry.read(path, channel, z_unit)
        return raw, fmt, factor
    raw = entry.read(path, channel)
    if entry.z_unit == "argument":
        meta = raw[4]
        if z_unit is not None:
            factor = _z_factor_arg(z_unit)
            meta["z_unit_in_file"] = z_unit
        else:
            meta["z_unit_assumed"] = True
        meta["z_unit"] = "nm"
    return raw, fmt, factor


def _read_one(
    path: Path, channel: str | None, z_unit: str | None, pixel_size_nm: float | None
) -> AFMStack:
    """Read one file as a validated :class:`AFMStack` (see :func:`read_stack`)."""
    _check_readable(path)
    fmt = _format_of(path)
    if fmt is None:
        raise _unsupported(path)
    with memory_guard(path):
        (values, px, name, times, meta), fmt, factor = _read_raw(path, fmt, channel, z_unit)
        if px is not None:  # the file's own scale: within what an instrument records
            px = float(px)
            check_pixel_size(path, px)
        py = meta.get("pixel_size_y_nm")
        if isinstance(py, float):
            check_pixel_size(path, py, "the row pitch in the file")
        bound = meta.get("z_unit") == "nm" and not meta.get("z_unit_assumed")
        heights = _validate(path, values, factor, bound_heights=bound)
    if px is None:  # the file has no scale
        if pixel_size_nm is not None:
            px = pixel_size_nm
            meta["pixel_size_from"] = "argument"
        else:
            px = 1.0
            meta["pixel_size_assumed"] = True
        px = float(px)
        if not (math.isfinite(px) and px > 0):
            raise AFMFileError(path, f"the pixel size is not a positive number ({px})")
    if isinstance(py, float) and abs(py - px) > NON_SQUARE_TOLERANCE * px:
        meta["non_square_pixels"] = True
        _warn(
            f"{path}: pixels are not square ({px:.6g} nm wide, {py:.6g} nm high, "
            f"{abs(py / px - 1):.1%} apart); pixel_size_nm is the width"
        )
    if times is not None:
        times = np.asarray(times, dtype=float).reshape(-1)
        if times.size != heights.shape[0]:
            meta["frame_times_ignored"] = f"{times.size} times for {heights.shape[0]} frames"
            times = None
    return AFMStack(
        heights=heights,
        pixel_size_nm=px,
        channel=name,
        frame_times_s=times,
        source=str(path),
        format=fmt,
        metadata=_jsonable(meta),
    )


def _validate(
    path: Path, values: Any, factor: float = 1.0, *, bound_heights: bool = False
) -> np.ndarray:
    """Check and convert reader output to float32 ``(frames, rows, cols)`` in nm.

    Refuses frames under 8 pixels along an axis and, with ``bound_heights`` (values
    whose unit is known to be a length), heights beyond 1e7 nm (see
    :mod:`~napari_calcite_afm.io._limits`).
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        what = {"b": "boolean", "c": "complex", "O": "Python objects", "U": "text", "S": "bytes"}
        raise AFMFileError(
            path, f"holds {what.get(arr.dtype.kind, str(arr.dtype))} values, not numeric heights"
        )
    if arr.size == 0:
        raise AFMFileError(path, f"the image is empty (shape {tuple(arr.shape)})")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    elif arr.ndim == 3:
        pass
    elif arr.ndim > 3 and all(n == 1 for n in arr.shape[:-3]):
        arr = arr.reshape(arr.shape[-3:])
    else:
        raise AFMFileError(
            path, f"expected a 2-D image or a 3-D stack (frames, rows, cols), got shape {arr.shape}"
        )
    check_frame_shape(path, arr.shape)
    if bound_heights:
        check_heights(path, arr, factor)
    if factor != 1.0:
        out = (arr.astype(np.float64) * factor).astype(np.float32)
    else:
        out = arr.astype(np.float32, copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = np.nan
    empty = np.isnan(out).all(axis=(1, 2))
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise AFMFileError(
            path,
            f"frame {first} holds no recorded pixel (all NaN)"
            + (f"; {int(empty.sum())} such frames" if empty.sum() > 1 else ""),
        )
    return out


def _combine(
    files: Sequence[Path],
    source: str,
    channel: str | None,
    z_unit: str | None,
    pixel_size_nm: float | None,
) -> AFMStack:
    """Read several files as one stack; every frame must share shape and pixel size."""
    stacks: list[AFMStack] = []
    for f in files:
        s = _read_one(f, channel, z_unit, pixel_size_nm)
        if stacks:
            first = stacks[0]
            if s.shape != first.shape:
                raise AFMFileError(
                    f,
                    f"frame shape {s.shape} differs from {first.shape} of {files[0]}; "
                    "all frames must share a shape",
                )
            if abs(s.pixel_size_nm - first.pixel_size_nm) > 1e-3 * first.pixel_size_nm:
                raise AFMFileError(
                    f,
                    f"pixel size {s.pixel_size_nm:.6g} nm differs from "
                    f"{first.pixel_size_nm:.6g} nm of {files[0]}",
                )
        stacks.append(s)
    first = stacks[0]
    heights = np.concatenate([s.heights for s in stacks], axis=0)
    formats = sorted({s.format for s in stacks})
    meta = dict(first.metadata)
    meta["files"] = [str(f) for f in files]
    meta["frames_per_file"] = [s.n_frames for s in stacks]
    times = None
    if len(stacks) == 1:
        times = first.frame_times_s
    return AFMStack(
        heights=heights,
        pixel_size_nm=first.pixel_size_nm,
        channel=first.channel,
        frame_times_s=times,
        source=source,
        format=formats[0] if len(formats) == 1 else "mixed",
        metadata=meta,
    )


def read_stack(
    path: Any,
    channel: str | None = None,
    *,
    z_unit: str | None = None,
    pixel_size_nm: float | None = None,
) -> AFMStack:
    """Read an AFM image or movie as a stack of height frames in nm.

    Parameters
    ----------
    path : str, os.PathLike, or list/tuple of them
        A file; a folder (every supported file in it, in natural-sort order of the
        names, e.g. ``frame_2`` before ``frame_10``, becomes one stack: the frames of
        each file are appended in turn); or a list of files (read in the order given).
    channel : str, optional
        Channel to read (see :func:`list_channels`). By default: Bruker ``Height``;
        Asylum the first of ``HeightRetrace``, ``HeightTrace``, ``Height``; Gwyddion the
        first channel whose name contains "Height", else the first; JPK
        ``height_trace``; ASD ``TP``; TopoStats ``image``; .npz ``heights``.
        Matching is exact first, then case-insensitive.
    z_unit : str, optional
        Unit of the stored values for files that do not record one (plain TIFF, .npy,
        .npz): ``"m"``, ``"um"``, ``"nm"``, ``"pm"`` or ``"A"``; values are converted
        to nm. Without it such values are taken as nm (``metadata["z_unit_assumed"]``).
        Vendor files carry their own units and ignore it.
    pixel_size_nm : float, optional
        Pixel size in nm for files that do not record one (plain TIFF, .npy, .npz).
        Without it and without a scale in the file, 1.0 nm is used and
        ``metadata["pixel_size_assumed"]`` is True.

    Returns
    -------
    AFMStack
        ``heights`` is float32 ``(frames, rows, cols)`` in nm, NaN where no pixel was
        recorded (infinite values are turned into NaN); ``pixel_size_nm`` in nm/pixel;
        ``frame_times_s`` in seconds where the file records them (.h5-jpk, .asd,
        ImageJ ``finterval``, .npz ``frame_times_s``).

    Raises
    ------
    AFMFileError
        File or folder not found; unsupported extension (the message lists the supported
        ones); corrupt or truncated file; missing channel (the message lists the
        available ones); empty image; a frame that is entirely NaN; non-numeric data;
        frames of different shapes or pixel sizes (the message names the file that
        differs and both values).
    CalciteAFMError
        Bad argument (e.g. an unknown ``z_unit``).

    Warns
    -----
    UserWarning
        Non-square pixels, or a unit-less TIFF whose values look like metres.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from napari_calcite_afm.io import write_tiff
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> frame = np.arange(80, dtype=np.float32).reshape(8, 10)
    >>> _ = write_tiff(folder / "movie.tif", np.stack([frame, frame + 1]), 2.5,
    ...                frame_interval_s=4.0)
    >>> stack = read_stack(folder / "movie.tif")
    >>> stack.heights.shape, stack.pixel_size_nm, stack.frame_interval_s
    ((2, 8, 10), 2.5, 4.0)
    >>> np.save(folder / "heights_m.npy", frame * 1e-9)
    >>> read_stack(folder / "heights_m.npy", z_unit="m", pixel_size_nm=3.0).heights[0, 0, 1]
    np.float32(1.0)
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise AFMFileError("[]", "the list of files is empty")
        files = [Path(p) for p in path]
        for f in files:
            if f.is_dir():
                raise AFMFileError(f, "is a folder; a list must name files")
        source = f"{len(files)} files starting with {files[0]}"
        return _combine(files, source, channel, z_unit, pixel_size_nm)
    p = Path(path)
    if p.is_dir():
        return _combine(_folder_files(p), str(p), channel, z_unit, pixel_size_nm)
    stack = _read_one(p, channel, z_unit, pixel_size_nm)
    return stack
