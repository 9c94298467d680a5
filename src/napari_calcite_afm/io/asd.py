"""High-speed AFM movies (``.asd``, RIBM / Ando lab) through AFMReader.

AFMReader's ``asd.load_asd`` gives the frames in nm and the pixel size; the frame times
come from the header's ``frame_time`` (ms per frame) and the row pitch from ``y_nm`` /
``y_pixels``. The channels are the header's ``channel1`` and ``channel2``; the default
is ``TP`` (topography).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _jsonable, _pick_channel, _short


def _asd_header(path: Path) -> dict:
    """The header of an ``.asd`` file, read by AFMReader's reader for its version."""
    asd = _afmreader("asd")
    with path.open("rb") as fh:
        version = asd.read_file_version(fh)
        reader = getattr(asd, f"read_header_file_version_{version}", None)
        if reader is None:
            raise AFMFileError(path, f"unknown .asd file version {version}")
        return reader(fh)


def _checked_header(path: Path) -> dict:
    """:func:`_asd_header`, any failure as an AFMFileError."""
    try:
        return _asd_header(path)
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .asd file ({_short(exc)})") from exc


def _list_asd(path: Path) -> list[str]:
    """Channel names (``"TP"``, ``"ER"``, ``"PH"``...) in the header of an ``.asd`` file."""
    header = _checked_header(path)
    return [c for c in (header.get("channel1"), header.get("channel2")) if c]


def _read_asd(path: Path, channel: str | None) -> Raw:
    """Read one channel of an ``.asd`` movie (heights in nm, frame times in seconds)."""
    asd = _afmreader("asd")
    header = _checked_header(path)
    channels = [c for c in (header.get("channel1"), header.get("channel2")) if c]
    name = _pick_channel(path, channel, channels, ("TP",))
    try:
        frames, px, header = asd.load_asd(path, name)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .asd file ({_short(exc)})") from exc
    frames = np.asarray(frames)
    times = None
    ft = header.get("frame_time")
    if ft and math.isfinite(float(ft)) and frames.ndim == 3:
        times = np.arange(frames.shape[0], dtype=float) * float(ft) / 1000.0  # ms -> s
    meta: dict[str, Any] = {"channels": channels, "header": _jsonable(header)}
    with contextlib.suppress(KeyError, ZeroDivisionError, TypeError):
        meta["pixel_size_y_nm"] = float(header["y_nm"]) / float(header["y_pixels"])
    meta["z_unit"] = "nm" if name == "TP" else "unknown"
    return frames, float(px), name, times, meta
