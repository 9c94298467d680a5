"""JPK files: single images (``.jpk``) and HDF5 movies (``.h5-jpk``) through AFMReader.

``.jpk`` files are TIFFs with JPK's private tags: the channel names and the row pitch
come from those tags, the heights and pixel size from AFMReader's ``jpk.load_jpk``.
``.h5-jpk`` movies are read by ``h5_jpk.load_h5jpk``, which also gives each frame's time
stamp (seconds). Channels are named ``<channel>_<trace|retrace>``; the default is
``height_trace``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import (
    Raw,
    _afmreader,
    _check_tiff_page,
    _no_resource_warnings,
    _pick_channel,
    _quiet_logs,
    _short,
)
from ._limits import check_tiff_structure


def _read_jpk(path: Path, channel: str | None) -> Raw:
    """Read one channel of a JPK ``.jpk`` image (heights and pixel size in nm)."""
    jpk = _afmreader("jpk")
    import tifffile

    tags = jpk._load_jpk_tags()
    check_tiff_structure(path)
    try:
        with _quiet_logs("tifffile"), tifffile.TiffFile(path) as tif:
            channels = []
            for page in tif.pages[1:]:
                cname = page.tags[tags["channel_name"]].value
                tr = "trace" if page.tags[tags["trace_retrace"]].value == 0 else "retrace"
                channels.append(f"{cname}_{tr}")
            size = path.stat().st_size
            for page in tif.pages:
                _check_tiff_page(path, page, size)
            meta0 = tif.pages[0]
            try:
                py = meta0.tags[tags["grid_vlength"]].value / meta0.tags[tags["grid_jlength"]].value
            except (KeyError, ZeroDivisionError, TypeError):
                py = None
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated JPK file ({_short(exc)})") from exc
    name = _pick_channel(path, channel, channels, ("height_trace",))
    try:
        with _no_resource_warnings():
            image, px = jpk.load_jpk(path, name)
    except Exception as exc:
        raise AFMFileError(path, f"could not read JPK channel {name!r} ({_short(exc)})") from exc
    meta: dict[str, Any] = {"channels": channels}
    if py:
        meta["pixel_size_y_nm"] = float(py) * 1e9
    base = name.rsplit("_", 1)[0]
    meta["z_unit"] = "nm" if base in ("height", "measuredHeight", "amplitude") else "unknown"
    return np.asarray(image), float(px), name, None, meta


def _read_h5jpk(path: Path, channel: str | None) -> Raw:
    """Read one channel of a JPK ``.h5-jpk`` movie, with the frame times in seconds."""
    h5_jpk = _afmreader("h5_jpk")
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            channels = list(h5_jpk._available_channels(fh))
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated HDF5 JPK file ({_short(exc)})") from exc
    name = _pick_channel(path, channel, channels, ("height_trace",))
    try:
        frames, px, stamps = h5_jpk.load_h5jpk(path, name)
    except Exception as exc:
        raise AFMFileError(path, f"could not read JPK channel {name!r} ({_short(exc)})") from exc
    times = np.array([float(stamps[k]) for k in stamps], dtype=float) if stamps else None
    base = name.rsplit("_", 1)[0]
    meta = {
        "channels": channels,
        "z_unit": "nm" if base in ("height", "error", "measuredheight", "amplitude") else "unknown",
    }
    return np.asarray(frames), float(px), name, times, meta
