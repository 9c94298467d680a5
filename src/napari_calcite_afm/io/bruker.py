"""Bruker / Veeco NanoScope files (``.spm``, ``.000``-``.999``) through AFMReader.

AFMReader's ``spm.load_spm`` (which reads through pySPM >= 0.6) gives the heights in nm
and the pixel size; the header is checked here first, because pySPM loops forever on a
header without its end marker and reads past the end of a truncated file. The default
channel is ``Height``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _jsonable, _length_factor, _pick_channel, _short
from ._limits import check_declared, file_size, read_at_most

# Bytes per pixel a NanoScope image may declare (pySPM computes 256 ** bytes/pixel:
# a corrupt value of 4294967296 kept it busy for minutes).
_BYTES_PER_PIXEL = (1, 2, 4, 8)


def _spm_scan(path: Path):
    """The ``pySPM.Bruker`` scan of a NanoScope file, after checking its header."""
    pyspm = importlib.import_module("pySPM")
    size = file_size(path)
    with path.open("rb") as fh:
        head = fh.read(64)
        if b"\\*File list" not in head and b"\\*EC File list" not in head:
            if b"Force file list" in head:
                raise AFMFileError(path, "is a Bruker force-curve file, not an image")
            raise AFMFileError(path, "is not a Bruker NanoScope file (no '\\*File list' header)")
        # pySPM loops forever on a header without its end marker: check it first.
        fh.seek(0)
        start = fh.read(2048)
        m = re.search(rb"\\Data length: (\d+)", start)
        header_len = int(m.group(1)) if m else min(size, 1 << 20)
        check_declared(path, "the NanoScope header", header_len, size)
        fh.seek(0)
        header = read_at_most(fh, header_len, size)
    if b"\\*File list end" not in header:
        raise AFMFileError(
            path, "the file is truncated or corrupt: the NanoScope header has no '\\*File list end'"
        )
    try:
        scan = pyspm.Bruker(path)
    except KeyError as exc:
        from importlib.metadata import version

        try:
            v = version("pySPM")
        except Exception:  # pragma: no cover
            v = "unknown"
        raise AFMFileError(
            path,
            f"pySPM {v} cannot parse this NanoScope header ({_short(exc)}); "
            "AFMReader needs pySPM >= 0.6 (pip install 'pySPM>=0.6')",
        ) from exc
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated Bruker file ({_short(exc)})") from exc
    _spm_check_layers(path, scan, size)
    return scan


def _spm_channels(scan) -> list[str]:
    """Channel names (``"Height"``, ``"Amplitude"``...) of a ``pySPM.Bruker`` scan."""
    names = []
    for layer in scan.layers:
        raw = layer.get(b"@2:Image Data", [b""])[0]
        text = raw.decode("latin-1")
        parts = text.split('"')
        names.append(parts[1] if len(parts) > 1 else text.strip())
    return names


def _layer_int(path: Path, layer: dict, key: bytes) -> int | None:
    """An integer field of a NanoScope image header (None where it is absent)."""
    if key not in layer:
        return None
    text = layer[key][0].strip() if layer[key] else b""
    try:
        return int(text)
    except ValueError:
        raise AFMFileError(
            path, f"corrupt NanoScope header: {key.decode()} is {text[:40]!r}, not a number"
        ) from None


def _spm_check_layers(path: Path, scan, size: int) -> None:
    """Refuse image headers whose data lie outside the file or whose bytes per pixel
    no NanoScope writes, before pySPM reads any of them."""
    for layer in scan.layers:
        bpp = _layer_int(path, layer, b"Bytes/pixel")
        if bpp is not None and bpp not in _BYTES_PER_PIXEL:
            raise AFMFileError(path, f"corrupt NanoScope header: {bpp} bytes per pixel")
        for key in (b"Samps/line", b"Number of lines", b"Valid data len X", b"Valid data len Y"):
            n = _layer_int(path, layer, key)
            if n is not None and n < 1:
                raise AFMFileError(path, f"corrupt NanoScope header: {key.decode()} is {n}")
        off = _layer_int(path, layer, b"Data offset")
        length = _layer_int(path, layer, b"Data length")
        if off is None or length is None:
            continue
        if off < 0 or length < 0:
            raise AFMFileError(path, f"corrupt NanoScope header: data at {off}, {length} bytes")
        if off + length > size:
            raise AFMFileError(
                path,
                f"the file is truncated: an image needs bytes {off}-{off + length} "
                f"but the file has {size} bytes",
            )


def _list_spm(path: Path) -> list[str]:
    """Channel names of a NanoScope file (refuses a file without any)."""
    _afmreader("spm")
    names = [n for n in _spm_channels(_spm_scan(path)) if n]
    if not names:
        raise AFMFileError(path, "the NanoScope file holds no named image channel")
    return names


def _read_spm(path: Path, channel: str | None) -> Raw:
    """Read one channel of a NanoScope file (heights in nm, pixel size in nm)."""
    spm = _afmreader("spm")
    scan = _spm_scan(path)
    channels = _spm_channels(scan)
    name = _pick_channel(path, channel, channels, preferred=("Height",))
    try:
        image, px = spm.load_spm(path, name)
    except Exception as exc:
        raise AFMFileError(path, f"could not read Bruker channel {name!r} ({_short(exc)})") from exc
    meta: dict[str, Any] = {"channels": channels}
    idx = channels.index(name)
    layer = scan.layers[idx]
    meta["layer"] = _jsonable({k: v[0] if len(v) == 1 else v for k, v in layer.items()})
    try:
        chan = scan.get_channel(name)
        (px_x, ux), (px_y, uy) = chan.pxs()
        fx, fy = _length_factor(ux), _length_factor(uy)
        if fx and fy and px_x and px_y:
            meta["pixel_size_y_nm"] = float(px_y * fy)
    except Exception:  # the pixel size above is the reference; this is only a check
        pass
    meta["z_unit"] = "nm" if "height" in name.lower() or "sensor" in name.lower() else "unknown"
    return np.asarray(image), float(px), name, None, meta
