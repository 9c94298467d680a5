"""WSxM files (``.stp``, ``.top``) through AFMReader.

Both hold one height channel, ``"height"``; :func:`list_channels
<napari_calcite_afm.io.stack.list_channels>` checks the header (the image size it
declares must fit in the file) before it names it. AFMReader 0.0.7 reads a
``.top`` file's ``Z Amplitude`` with an integer pattern (``59.7449 nm`` becomes 59): the
heights are rescaled here to the full value, and where the amplitude is below 1 (read
as 0) the raw int16 data are rescaled to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _length_factor, _pick_channel, _short
from ._limits import check_declared, file_size, read_at_most


def _wsxm_header(path: Path) -> str:
    """The text header of a WSxM file (its length is given by ``Image header size``,
    checked against the file size)."""
    size = file_size(path)
    with path.open("rb") as fh:
        first = fh.read(150).decode("latin-1")
        m = re.search(r"Image header size: (\d+)", first)
        if not m:
            raise AFMFileError(path, "is not a WSxM file (no 'Image header size')")
        check_declared(path, "the WSxM header", int(m.group(1)), size)
        fh.seek(0)
        return read_at_most(fh, int(m.group(1)), size).decode("latin-1")


def _wsxm_checked(path: Path, itemsize: int) -> str:
    """The header of a WSxM file, after checking that it names the image size and that
    the file holds that many values of ``itemsize`` bytes (8 in ``.stp``, 2 in ``.top``)."""
    header = _wsxm_header(path)
    dims = []
    for key in ("Number of rows", "Number of columns"):
        m = re.search(rf"{key}: (\d+)", header)
        if not m:
            raise AFMFileError(path, f"corrupt WSxM header: no '{key}'")
        dims.append(int(m.group(1)))
    rows, cols = dims
    if rows < 1 or cols < 1:
        raise AFMFileError(path, f"corrupt WSxM header: an image of {rows} x {cols} pixels")
    need = len(header.encode("latin-1")) + rows * cols * itemsize
    check_declared(path, f"{rows} x {cols} values", need, file_size(path))
    return header


def _list_stp(path: Path) -> list[str]:
    """The channel of a WSxM ``.stp`` file, ``["height"]``, after checking its header."""
    _wsxm_checked(path, 8)
    return ["height"]


def _list_top(path: Path) -> list[str]:
    """The channel of a WSxM ``.top`` file, ``["height"]``, after checking its header."""
    _wsxm_checked(path, 2)
    return ["height"]


def _wsxm_int16(path: Path, header: str) -> np.ndarray:
    """The raw int16 data after a WSxM header, as float ``(rows, cols)``."""
    rows = int(re.search(r"Number of rows: (\d+)", header).group(1))
    cols = int(re.search(r"Number of columns: (\d+)", header).group(1))
    buf = path.read_bytes()[len(header.encode("latin-1")) :]
    if len(buf) < rows * cols * 2:
        raise AFMFileError(path, "the file is truncated")
    return np.frombuffer(buf, "<i2", count=rows * cols).reshape(rows, cols).astype(float)


def _read_stp(path: Path, channel: str | None) -> Raw:
    """Read a WSxM ``.stp`` file (heights and pixel size in nm)."""
    stp = _afmreader("stp")
    header = _wsxm_checked(path, 8)
    _pick_channel(path, channel, ["height"])
    try:
        image, px = stp.load_stp(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated WSxM file ({_short(exc)})") from exc
    return (
        np.asarray(image),
        float(px),
        "height",
        None,
        {"channels": ["height"], "z_unit": "nm", "header_bytes": len(header)},
    )


def _read_top(path: Path, channel: str | None) -> Raw:
    """Read a WSxM ``.top`` file (heights and pixel size in nm, z range corrected)."""
    top = _afmreader("top")
    header = _wsxm_checked(path, 2)
    _pick_channel(path, channel, ["height"])
    try:
        image, px = top.load_top(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated WSxM file ({_short(exc)})") from exc
    image = np.asarray(image, dtype=np.float64)
    meta: dict[str, Any] = {"channels": ["height"], "z_unit": "nm"}
    m = re.search(r"Z Amplitude: ([0-9.eE+-]+)\s*(\S+)", header)
    if m:
        try:
            z_full = float(m.group(1)) * (_length_factor(m.group(2)) or 1.0)
            z_trunc = float(int(float(m.group(1))))  # what AFMReader 0.0.7 uses
        except (ValueError, OverflowError) as exc:
            raise AFMFileError(path, f"corrupt WSxM header: Z Amplitude {m.group(1)!r}") from exc
        meta["z_amplitude_nm"] = z_full
        if z_trunc > 0 and z_full != z_trunc:
            image = image * (z_full / z_trunc)
            meta["z_amplitude_corrected_from"] = z_trunc
        elif z_trunc == 0:
            raw = _wsxm_int16(path, header)
            lo, hi = float(raw.min()), float(raw.max())
            image = (raw - lo) / (hi - lo) * z_full if hi > lo else np.full(raw.shape, np.nan)
            meta["z_amplitude_corrected_from"] = 0.0
    return image, float(px), "height", None, meta
