"""Asylum Research / Igor binary wave files (``.ibw``) through AFMReader.

AFMReader's ``ibw.load_ibw`` reads the channel; three of its results are corrected here
(AFMReader 0.0.7):

- the pixel size is the wave's own scaling, the x step per point of the columns
  (``sfA[0]``, in m, as Igor and Gwyddion read it); Asylum sets it to
  ``FastScanSize / (points - 1)``: the scan size is the distance between the first and
  the last point. AFMReader divides the *slow* scan size by the points, which is wrong
  by the ratio of the two sizes whenever the scan is not square (30 um x 60 um over
  256 x 512 pixels). The row pitch (``sfA[1]``) goes to
  ``metadata["pixel_size_y_nm"]``, ``FastScanSize / points`` to
  ``metadata["pixel_size_scan_size_nm"]`` and AFMReader's value to
  ``metadata["pixel_size_afmreader_nm"]`` (docs/reading-and-levelling.md, "Pixel
  size");
- igor2 decodes dimension labels with trailing garbage (``'PhaseRetracerace'``): the
  names are re-read from the file's 32-byte label fields, and both spellings are
  accepted as ``channel``;
- channels that are not lengths (Phase, in degrees) are not multiplied by 1e9.

The default channel is the first of ``HeightRetrace``, ``HeightTrace``, ``Height``.
"""

from __future__ import annotations

import contextlib
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _length_factor, _pick_channel, _quiet_logs, _short


def _ibw_clean_labels(path: Path) -> list[str] | None:
    """Channel labels read straight from an IBW v5 file's 32-byte label fields."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
            version = struct.unpack_from("<h", head, 0)[0]
            if version != 5:
                return None
            wfm, formula, note, data_units = struct.unpack_from("<iiii", head, 4)
            dim_units = struct.unpack_from("<4i", head, 20)
            dim_labels = struct.unpack_from("<4i", head, 36)
            if dim_labels[2] <= 0:
                return None
            offset = 64 + wfm + formula + note + data_units + sum(dim_units)
            offset += dim_labels[0] + dim_labels[1]
            fh.seek(offset)
            raw = fh.read(dim_labels[2])
        if len(raw) != dim_labels[2]:
            return None
        fields = [raw[i : i + 32] for i in range(0, len(raw), 32)]
        labels = [f.split(b"\x00", 1)[0].decode("latin-1") for f in fields]
        return labels[1:]  # the first label names the whole dimension
    except (OSError, struct.error):
        return None


# Igor wave data types (TN003): code -> bytes per value; 0x40 marks unsigned integers
# and 0x01 complex values (two values per point).
_IGOR_ITEMSIZE = {0x02: 4, 0x04: 8, 0x08: 1, 0x10: 2, 0x20: 4, 0x80: 8}
_WAVE_HEADER5 = 320  # bytes of a version-5 wave header, before the data


def _ibw_byte_order(path: Path, head: bytes) -> tuple[str, int]:
    """The byte order (``"<"`` or ``">"``) and the version of an Igor binary wave."""
    if len(head) < 64:
        raise AFMFileError(path, "the file is truncated (shorter than an Igor header)")
    for order in ("<", ">"):
        version = struct.unpack_from(order + "h", head, 0)[0]
        if version in (1, 2, 3, 5):
            return order, version
    raise AFMFileError(
        path, f"is not an Igor binary wave (version field {struct.unpack_from('<h', head)[0]})"
    )


def _ibw_check_size(path: Path) -> None:
    """Refuse an Igor binary wave whose header declares sections or data that the file
    does not hold, before igor2 reads (and allocates) them.

    Asylum images are version 5 waves; older versions hold 1-D waves only and are
    refused. No section size may be negative and all of them must fit in the file;
    the wave header's point count must match its dimensions, its data type and the
    data section.
    """
    with path.open("rb") as fh:
        head = fh.read(64 + _WAVE_HEADER5)
    order, version = _ibw_byte_order(path, head)
    if version != 5:
        raise AFMFileError(
            path, f"is an Igor binary wave of version {version}, which holds no image (Asylum: 5)"
        )
    sizes = struct.unpack_from(order + "iiii4i4iiii", head, 4)
    if min(sizes) < 0:
        raise AFMFileError(path, f"corrupt Igor header: a section size is negative ({min(sizes)})")
    need, have = 64 + sum(sizes), path.stat().st_size
    if need > have:
        raise AFMFileError(
            path, f"the file is truncated: its header declares {need} bytes, the file has {have}"
        )
    if len(head) < 64 + _WAVE_HEADER5:
        raise AFMFileError(path, "the file is truncated (shorter than an Igor wave header)")
    npnts = struct.unpack_from(order + "i", head, 64 + 12)[0]
    dtype = struct.unpack_from(order + "h", head, 64 + 16)[0]
    dims = [d for d in struct.unpack_from(order + "4i", head, 64 + 68) if d > 0]
    base = dtype & ~0x41
    if base not in _IGOR_ITEMSIZE:
        raise AFMFileError(path, f"is not a numeric Igor wave (data type code {dtype})")
    itemsize = _IGOR_ITEMSIZE[base] * (2 if dtype & 0x01 else 1)
    if npnts < 0 or math.prod(dims or [0]) != npnts:
        raise AFMFileError(
            path, f"corrupt Igor header: {npnts} points for dimensions {tuple(dims)}"
        )
    if npnts * itemsize != sizes[0] - _WAVE_HEADER5:
        raise AFMFileError(
            path,
            f"corrupt Igor header: {npnts} points of {itemsize} bytes in a data section of "
            f"{sizes[0] - _WAVE_HEADER5} bytes",
        )


def _ibw_note(scan: dict) -> dict[str, str]:
    """The wave note of an igor2 scan as ``{key: value}`` text."""
    note = scan["wave"].get("note", b"")
    if isinstance(note, bytes):
        note = note.decode("latin-1")
    out = {}
    for line in str(note).replace("\\r", "\r").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _igor_labels(scan: dict) -> list[str]:
    """Channel labels as igor2 decodes them (possibly with trailing garbage)."""
    return [lab.decode("latin-1") for dim in scan["wave"].get("labels", []) for lab in dim if lab]


def _ibw_load(path: Path) -> tuple[dict, list[str], list[str]]:
    """The igor2 scan of an Asylum image with its channel labels: as igor2 decodes them
    and cleaned (re-read from the file's label fields where they can be).

    Refuses a header that declares what the file does not hold (before igor2 reads it),
    a wave that is not 3-D, and labels that are missing, empty or not one per layer.
    """
    from igor2 import binarywave

    _ibw_check_size(path)
    try:
        with _quiet_logs("igor2"):
            scan = binarywave.load(path)
        data = scan["wave"]["wData"]
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated Igor binary wave ({_short(exc)})") from exc
    igor = _igor_labels(scan)
    clean = _ibw_clean_labels(path)
    if clean is None or len(clean) != len(igor):
        clean = list(igor)
    if data.ndim != 3 or not igor:
        raise AFMFileError(
            path, f"is not an Asylum image file (wave shape {tuple(data.shape)}, no channel labels)"
        )
    if len(clean) != data.shape[2] or not all(c.strip() for c in clean):
        raise AFMFileError(
            path, f"corrupt Igor wave: channel labels {clean} for {data.shape[2]} layers"
        )
    return scan, igor, clean


def _list_ibw(path: Path) -> list[str]:
    """Channel names of an Igor binary wave (the cleaned spelling where it can be read)."""
    _afmreader("ibw")
    return _ibw_load(path)[2]


def _ibw_scaling_nm(scan: dict, dim: int) -> float | None:
    """The wave scaling step of dimension ``dim`` in nm, or None where the wave's
    dimension unit is not a length or the step is not a positive number."""
    try:
        header = scan["wave"]["wave_header"]
        unit = b"".join(header["dimUnits"][dim]).decode("latin-1")
        factor = _length_factor(unit)
        step = abs(float(header["sfA"][dim])) * factor if factor else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return step if step is not None and math.isfinite(step) and step > 0 else None


def _ibw_pixel_size(path: Path, scan: dict, note: dict, shape: tuple, meta: dict) -> float:
    """Pixel size in nm: the wave scaling of the columns (Igor's x step per point),
    else ``FastScanSize / (points - 1)`` from the note; the row pitch goes to ``meta``.

    The image is the transposed wave, so its columns are the wave's dimension 0 and
    its rows dimension 1.
    """
    rows, cols = shape
    with contextlib.suppress(KeyError, ValueError, ZeroDivisionError):
        meta["pixel_size_scan_size_nm"] = float(note["FastScanSize"]) * 1e9 / cols
    px, py = _ibw_scaling_nm(scan, 0), _ibw_scaling_nm(scan, 1)
    if px is not None:
        meta["pixel_size_from"] = "wave scaling"
    else:
        try:
            px = float(note["FastScanSize"]) * 1e9 / max(cols - 1, 1)  # m -> nm
        except (KeyError, ValueError) as exc:
            raise AFMFileError(
                path, "neither the wave scaling nor the note (FastScanSize) gives a pixel size"
            ) from exc
        meta["pixel_size_from"] = "FastScanSize / (points - 1)"
        with contextlib.suppress(KeyError, ValueError):
            py = float(note["SlowScanSize"]) * 1e9 / max(rows - 1, 1)
    if py is not None:
        meta["pixel_size_y_nm"] = py
    return px


def _read_ibw(path: Path, channel: str | None) -> Raw:
    """Read one channel of an Asylum ``.ibw`` file (heights in nm, pixel size in nm)."""
    ibw = _afmreader("ibw")
    scan, igor_labels, clean = _ibw_load(path)
    aliases = {g: c for g, c in zip(igor_labels, clean) if g != c}
    name = _pick_channel(
        path, channel, clean, ("HeightRetrace", "HeightTrace", "Height"), aliases=aliases
    )
    igor_name = igor_labels[clean.index(name)]
    try:
        image, _px_afmreader = ibw.load_ibw(path, igor_name)
    except Exception as exc:
        raise AFMFileError(path, f"could not read channel {name!r} ({_short(exc)})") from exc
    note = _ibw_note(scan)
    meta: dict[str, Any] = {"channels": clean, "note": note}
    px = _ibw_pixel_size(path, scan, note, image.shape, meta)
    meta["pixel_size_afmreader_nm"] = float(_px_afmreader)
    low = name.lower()
    if low.startswith("phase"):
        image = image / 1e9  # AFMReader scales every channel from m to nm; phase is in deg
        meta["z_unit"] = "deg"
    elif any(k in low for k in ("height", "zsensor", "amplitude", "deflection")):
        meta["z_unit"] = "nm"
    else:
        image = image / 1e9
        meta["z_unit"] = "unknown"
    return np.asarray(image), px, name, None, meta
