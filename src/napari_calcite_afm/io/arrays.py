"""numpy files: ``.npy`` (one array) and ``.npz`` (named arrays).

An ``.npy`` file holds one 2-D frame or 3-D stack; its channel is ``"height"``. In an
``.npz`` file every 2-D or 3-D array is a channel (default ``heights``, then
``height``, then the first), except ``pixel_size_nm`` (nm per pixel) and
``frame_times_s`` (seconds), which are read as the scale and the frame times. Neither
format records a unit: the values are taken as nm unless ``read_stack`` is given a
``z_unit``. Pickled (object) arrays are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _pick_channel, _short


def _read_npy(path: Path, channel: str | None) -> Raw:
    """Read an ``.npy`` array (values as stored; no pixel size)."""
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
        times = np.asarray(contents["frame_times_s"], dtype=float).reshape(-1)
    return arr, px, name, times, {"channels": channels}
