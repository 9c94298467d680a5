"""High-speed AFM movies (``.asd``, RIBM / Ando lab) through AFMReader.

AFMReader's ``asd.load_asd`` gives the frames in nm and the pixel size; the frame times
come from the header's ``frame_time`` (ms per frame) and the row pitch from ``y_nm`` /
``y_pixels``. The channels are the header's ``channel1`` and ``channel2``; the default
is ``TP`` (topography).
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _jsonable, _pick_channel, _short
from ._limits import check_declared, file_size, read_at_most

# Bytes read past ``header_length`` for the header (should a version count it apart
# from the file-version field or the colour map).
_HEADER_SLACK = 4096


# Bytes of the header AFMReader reads before each frame of the first channel.
_FRAME_HEADER = 32


def _asd_header(path: Path) -> dict:
    """The header of an ``.asd`` file, read by AFMReader's reader for its version.

    The reader runs on the header's bytes only (``header_length``, checked against the
    file size): its loops over the user-name, comment and colour-map lengths then end
    at the header's end instead of walking a corrupt length through the whole file.
    The dict gets ``"header_end"``, the byte where the frames start.
    """
    asd = _afmreader("asd")
    size = file_size(path)
    with path.open("rb") as fh:
        version = asd.read_file_version(fh)
        reader = getattr(asd, f"read_header_file_version_{version}", None)
        if reader is None:
            raise AFMFileError(path, f"unknown .asd file version {version}")
        fh.seek(0)
        head = fh.read(64)
    # header_length: the int32 after the version (v1, v2) or after two channel codes (v0)
    at = 8 if version == 0 else 4
    (header_length,) = struct.unpack_from("<i", head, at)
    if not 0 < header_length <= size:
        raise AFMFileError(
            path, f"corrupt .asd header: header length {header_length} in a {size}-byte file"
        )
    with path.open("rb") as fh:
        buf = io.BytesIO(read_at_most(fh, header_length + _HEADER_SLACK, size))
    asd.read_file_version(buf)
    header = reader(buf)
    header["header_end"] = buf.tell()
    return header


def _check_frames(path: Path, header: dict, index: int) -> None:
    """Refuse frame counts and sizes whose data (channel ``index``, 0 or 1) the file
    does not hold, before AFMReader allocates them."""
    frames, cols, rows = header["num_frames"], header["x_pixels"], header["y_pixels"]
    if frames < 1 or cols < 1 or rows < 1:
        raise AFMFileError(path, f"corrupt .asd header: {frames} frames of {rows} x {cols} pixels")
    need = header["header_end"] + frames * (_FRAME_HEADER + rows * cols * 2)
    if index:
        need += frames * (max(header["frame_header_length"], 0) + rows * cols * 2)
    what = f"{frames} frames of {rows} x {cols} pixels"
    check_declared(path, what, need, file_size(path))


def _checked_header(path: Path) -> dict:
    """:func:`_asd_header` with the first channel's frames checked against the file
    size; any failure as an AFMFileError."""
    try:
        header = _asd_header(path)
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .asd file ({_short(exc)})") from exc
    _check_frames(path, header, 0)
    return header


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
    _check_frames(path, header, channels.index(name))
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
