"""Park Systems TIFF files, read from their private tags by a reader of their own.

A Park TIFF carries the magic number :data:`_PARK_MAGIC` in tag 50432, the data in tag
50434 and a binary header in tag 50435; the pages tifffile sees are only a preview.
:func:`~napari_calcite_afm.io.tiff._read_tiff` hands such files to :func:`_read_park`,
and the stack's format is ``"park-tiff"``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _length_factor, _pick_channel

#: Value of tag 50432 in a Park Systems TIFF.
_PARK_MAGIC = 0x0E031301


def _is_park(page) -> bool:
    """True where a tifffile page carries the Park Systems magic number."""
    return 50432 in page.tags and page.tags[50432].value == _PARK_MAGIC


def _utf16(buf: bytes, offset: int, chars: int) -> str:
    return buf[offset : offset + 2 * chars].decode("utf-16-le", errors="replace").split("\x00")[0]


def _read_park(path: Path, page, channel: str | None) -> Raw:
    """Park Systems TIFF: private tags 50434 (data) and 50435 (header).

    The header layout (little-endian) is the one Gwyddion's ``psia`` module uses:
    width at byte 100, height 104, X/Y scan size in um (float64) at 140/148, data gain
    (float64) 220, z scale 228, z offset 236, z unit (UTF-16, 8 chars) 244, data type
    (0 int16, 1 int32, 2 float32) 348. Heights are
    ``gain * (raw * z_scale + z_offset)`` in the z unit; rows are stored bottom first.
    """
    tags = page.tags
    if 50434 not in tags or 50435 not in tags:
        raise AFMFileError(
            path, "the Park data or header tag is missing or unreadable (truncated or corrupt file)"
        )
    header = tags[50435].value
    data = tags[50434].value
    if not isinstance(header, bytes) or len(header) < 356:
        raise AFMFileError(path, "Park TIFF header is missing or too short")
    version = tags[50433].value if 50433 in tags else 0x1000001
    image_type = struct.unpack_from("<i", header, 0)[0]
    if image_type != 0:
        raise AFMFileError(path, "is a Park line-profile or spectroscopy file, not an image")
    source = _utf16(header, 4, 32) or "Topography"
    mode = _utf16(header, 68, 8)
    xres, yres = struct.unpack_from("<ii", header, 100)
    x_um, y_um = struct.unpack_from("<dd", header, 140)
    gain, z_scale, z_off = struct.unpack_from("<ddd", header, 220)
    z_unit = _utf16(header, 244, 8)
    dtype_code = struct.unpack_from("<i", header, 348)[0] if version >= 0x1000002 else 0
    dtypes = {0: "<i2", 1: "<i4", 2: "<f4"}
    if dtype_code not in dtypes:
        raise AFMFileError(path, f"unknown Park data type code {dtype_code}")
    dt = np.dtype(dtypes[dtype_code])
    if xres <= 0 or yres <= 0:
        raise AFMFileError(path, f"Park header gives an image of {yres} x {xres} pixels")
    if not isinstance(data, bytes) or len(data) < xres * yres * dt.itemsize:
        have = len(data) if isinstance(data, bytes) else 0
        raise AFMFileError(
            path, f"the file is truncated: Park data holds {have} bytes for {yres} x {xres} pixels"
        )
    _pick_channel(path, channel, [source])
    raw = np.frombuffer(data, dtype=dt, count=xres * yres).reshape(yres, xres).astype(np.float64)
    if z_scale == 0:
        z_scale = 1.0
    values = gain * (raw * z_scale + z_off)
    fz = _length_factor(z_unit)
    meta: dict[str, Any] = {
        "channels": [source],
        "park": {
            "source": source,
            "mode": mode,
            "xres": xres,
            "yres": yres,
            "x_scan_size_um": x_um,
            "y_scan_size_um": y_um,
            "data_gain": gain,
            "z_scale": z_scale,
            "z_offset": z_off,
            "z_unit": z_unit,
            "data_type": dtype_code,
            "version": hex(int(version)),
        },
    }
    if fz:
        values = values * fz
        meta["z_unit"] = "nm"
    else:
        meta["z_unit"] = z_unit or "unknown"
    px = abs(x_um) * 1e3 / xres if x_um else None
    if y_um:
        meta["pixel_size_y_nm"] = abs(y_um) * 1e3 / yres
    return np.flipud(values), px, source, None, meta
