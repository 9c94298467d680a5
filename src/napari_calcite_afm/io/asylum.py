"""Asylum Research / Igor binary wave files (``.ibw``) through AFMReader.

AFMReader's ``ibw.load_ibw`` reads the channel; three of its results are corrected here
(AFMReader 0.0.7):

- the pixel size is ``FastScanSize / points per line`` in nm (AFMReader divides the
  *slow* scan size, which is wrong whenever the scan is not square, e.g. 30 um x 60 um
  over 256 x 512 pixels); the row pitch ``SlowScanSize / lines`` goes to
  ``metadata["pixel_size_y_nm"]`` and AFMReader's value to
  ``metadata["pixel_size_afmreader_nm"]``;
- igor2 decodes dimension labels with trailing garbage (``'PhaseRetracerace'``): the
  names are re-read from the file's 32-byte label fields, and both spellings are
  accepted as ``channel``;
- channels that are not lengths (Phase, in degrees) are not multiplied by 1e9.

The default channel is the first of ``HeightRetrace``, ``HeightTrace``, ``Height``.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _pick_channel, _quiet_logs, _short


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


def _ibw_check_size(path: Path) -> None:
    """Refuse an IBW v5 file shorter than the sections its header declares."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if len(head) < 64:
        raise AFMFileError(path, "the file is truncated (shorter than an Igor header)")
    version = struct.unpack_from("<h", head, 0)[0]
    if version != 5:
        return
    sizes = struct.unpack_from("<iiii4i4iiii", head, 4)
    need = 64 + sum(sizes)
    have = path.stat().st_size
    if need > have:
        raise AFMFileError(
            path, f"the file is truncated: its header declares {need} bytes, the file has {have}"
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


def _list_ibw(path: Path) -> list[str]:
    """Channel names of an Igor binary wave (the cleaned spelling where it can be read)."""
    _afmreader("ibw")
    from igor2 import binarywave

    try:
        scan = binarywave.load(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated Igor binary wave ({_short(exc)})") from exc
    igor = _igor_labels(scan)
    clean = _ibw_clean_labels(path)
    return clean if clean is not None and len(clean) == len(igor) else igor


def _ibw_pixel_size(path: Path, note: dict, shape: tuple, meta: dict) -> float:
    """Pixel size in nm from the note's FastScanSize (the row pitch goes to ``meta``)."""
    rows, cols = shape
    try:
        fast = float(note["FastScanSize"]) * 1e9  # m -> nm
        px = fast / cols
    except (KeyError, ValueError) as exc:
        raise AFMFileError(path, "the wave note has no usable FastScanSize") from exc
    with contextlib.suppress(KeyError, ValueError, ZeroDivisionError):
        slow = float(note["SlowScanSize"]) * 1e9
        meta["pixel_size_y_nm"] = slow / rows
    return px


def _read_ibw(path: Path, channel: str | None) -> Raw:
    """Read one channel of an Asylum ``.ibw`` file (heights in nm, pixel size in nm)."""
    ibw = _afmreader("ibw")
    from igor2 import binarywave

    _ibw_check_size(path)
    try:
        with _quiet_logs("igor2"):
            scan = binarywave.load(path)
        data = scan["wave"]["wData"]
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated Igor binary wave ({_short(exc)})") from exc
    igor_labels = _igor_labels(scan)
    clean = _ibw_clean_labels(path)
    if clean is None or len(clean) != len(igor_labels):
        clean = list(igor_labels)
    if data.ndim != 3 or not igor_labels:
        raise AFMFileError(
            path, f"is not an Asylum image file (wave shape {tuple(data.shape)}, no channel labels)"
        )
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
    px = _ibw_pixel_size(path, note, image.shape, meta)
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
