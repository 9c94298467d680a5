"""numpy files: ``.npy`` (one array) and ``.npz`` (named arrays).

An ``.npy`` file holds one 2-D frame or 3-D stack; its channel is ``"height"``. In an
``.npz`` file every 2-D or 3-D array is a channel (default ``heights``, then
``height``, then the first), except ``pixel_size_nm`` (nm per pixel) and
``frame_times_s`` (seconds), which are read as the scale and the frame times. Neither
format records a unit: the values are taken as nm unless ``read_stack`` is given a
``z_unit``. Pickled (object) arrays are refused.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _pick_channel, _short
from ._limits import check_declared, file_size


def _npy_header(fh: BinaryIO) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, type and data offset from the header of an open ``.npy`` stream."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return shape, dtype, fh.tell()


def _npy_fits(path: Path, fh: BinaryIO, size: int, what: str) -> None:
    """Refuse an ``.npy`` stream whose header is unreadable, names Python objects or
    declares more than the ``size`` bytes it holds."""
    try:
        shape, dtype, start = _npy_header(fh)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated {what} ({_short(exc)})") from exc
    if dtype.hasobject:
        raise AFMFileError(path, "holds Python objects, not numeric arrays")
    need = start + math.prod(shape) * dtype.itemsize
    check_declared(path, f"{what}: an array of shape {shape} and type {dtype}", need, size)


def _npy_check(path: Path) -> None:
    """Check an ``.npy`` file's header before numpy allocates what it declares."""
    with path.open("rb") as fh:
        _npy_fits(path, fh, file_size(path), ".npy file")


def _npz_check(path: Path) -> None:
    """Check the header of every array of an ``.npz`` file against its stored size."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as fh:
                    _npy_fits(path, fh, info.file_size, f"array {info.filename!r}")
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .npz file ({_short(exc)})") from exc


def _list_npy(path: Path) -> list[str]:
    """The channel of an ``.npy`` file, ``["height"]``, after checking its header."""
    _npy_check(path)
    return ["height"]


def _read_npy(path: Path, channel: str | None) -> Raw:
    """Read an ``.npy`` array (values as stored; no pixel size)."""
    _npy_check(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise AFMFileError(path, "holds Python objects, not a numeric height array") from exc
        raise AFMFileError(path, f"corrupt or truncated .npy file ({_short(exc)})") from exc
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .npy file ({_short(exc)})") from exc
    _pick_channel(path, channel, ["height"])
    return arr, None, "height", None, {"channels": ["height"]}


def _read_npz(path: Path, channel: str | None) -> Raw:
    """Read one array of an ``.npz`` file, with its ``pixel_size_nm`` and ``frame_times_s``."""
    _npz_check(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            contents = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise AFMFileError(path, "holds Python objects, not numeric arrays") from exc
        raise AFMFileError(path, f"corrupt or truncated .npz file ({_short(exc)})") from exc
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .npz file ({_short(exc)})") from exc
    skip = {"pixel_size_nm", "frame_times_s"}
    channels = [k for k, v in contents.items() if k not in skip and v.ndim in (2, 3)]
    if not channels:
        arrays = ", ".join(f"{k} {v.shape}" for k, v in contents.items()) or "none"
        raise AFMFileError(path, f"holds no 2-D or 3-D array (arrays: {arrays})")
    name = _pick_channel(path, channel, channels, ("heights", "height"))
    arr = contents[name]
    px = None
    if "pixel_size_nm" in contents:
        try:
            px = float(np.asarray(contents["pixel_size_nm"]).reshape(-1)[0])
        except (ValueError, IndexError, TypeError) as exc:
            raise AFMFileError(path, "'pixel_size_nm' is not a number") from exc
    times = None
    if "frame_times_s" in contents:
        try:
            times = np.asarray(contents["frame_times_s"], dtype=float).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise AFMFileError(path, "'frame_times_s' is not an array of numbers") from exc
    return arr, px, name, times, {"channels": channels}
