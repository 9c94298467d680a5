"""NanoSurf (``.nid``) and NT-MDT (``.mdt``) files, through Gwyddion's file converter.

Both formats are read by the optional ``gwyddion`` extra
(``pip install "napari-calcite-afm[gwyddion]"``): the ``gwyddionpy`` package runs
``gwyconvert``, Gwyddion's own file modules (``ezdfile`` for NanoSurf, ``nt-mdt``), in
a subprocess that writes a ``.gwy`` file, which ``gwyddionpy`` parses. The converter is
GPL-2.0-or-later and ships in its own wheel (``gwyddionpy-converter``), so it stays
optional; without it, reading such a file raises an
:class:`~napari_calcite_afm.errors.AFMFileError` that says how to install it, or to
save the file as ``.gwy`` from Gwyddion (read without the extra).

What comes back follows Gwyddion's values (SI units), converted here:

- channels are Gwyddion's titles (``"Z-Axis forward"``, ``"Amplitude backward"``;
  NT-MDT titles end with the frame number, ``"1F:Iprobe (2)"``); the default channel
  is the first whose name contains "height", else the first whose values are lengths
  (the topography), else the first;
- values in metres become nm (``metadata["z_unit"] = "nm"``); other channels keep
  their SI values and unit (``"V"``, ``"A"``, ``"deg"``);
- the pixel size is Gwyddion's ``xreal / xres`` in nm, and the row pitch
  ``yreal / yres`` goes to ``metadata["pixel_size_y_nm"]``. One exception: for NT-MDT
  MDA frames, Gwyddion takes the extent as ``(points - 1) x step`` of the frame's
  calibration, which makes its pixel size ``(n - 1) / n`` of the step (11.722 nm for
  11.768 nm over 256 points); the step per point, read from the frame's own
  calibration, is the pixel size here (as the wave scaling is for Asylum files),
  and Gwyddion's value is kept in ``metadata["pixel_size_gwyddion_nm"]``;
- the vendor metadata (NanoSurf's header, NT-MDT's frame parameters) is in
  ``metadata["vendor"]``; neither format holds a movie, so no frame times.

The converter runs at most :data:`CONVERTER_TIMEOUT_S` seconds per file; the last two
conversions are kept in memory (keyed by the file's content), so listing the channels
and then reading one converts the file once.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import struct
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _length_factor, _pick_channel, _short

#: Seconds the converter may run on one file before the read fails.
CONVERTER_TIMEOUT_S = 60.0

#: What a user is told when the optional reader is missing.
EXTRA_HINT = (
    'install the optional reader with pip install "napari-calcite-afm[gwyddion]" (or pip '
    'install "gwyddionpy[converter]"): it runs Gwyddion\'s file converter, which is GPL-2 '
    "and therefore optional; or open the file in Gwyddion and save it as .gwy"
)

_VENDOR = {".nid": "NanoSurf .nid", ".mdt": "NT-MDT .mdt"}

_CACHE: OrderedDict[tuple[str, bytes], Any] = OrderedDict()
_CACHE_SIZE = 2
_LOCK = threading.Lock()


def _what(path: Path) -> str:
    return _VENDOR.get(path.suffix.lower(), f"{path.suffix} files")


def converter_available() -> bool:
    """Whether the optional reader is installed: ``gwyddionpy`` and its converter.

    Returns
    -------
    bool
        True where ``.nid`` and ``.mdt`` files can be read. Never raises.

    Examples
    --------
    >>> converter_available() in (True, False)
    True
    """
    try:
        import gwyddionpy  # noqa: F401 - the package first: a stub in sys.modules fails
        from gwyddionpy._run import find_converter

        find_converter()
    except Exception:  # ImportError, gwyddionpy's ConverterNotFoundError...
        return False
    return True


def _gwyddionpy(path: Path):
    """The ``gwyddionpy`` module, or an AFMFileError saying how to install it."""
    try:
        import gwyddionpy
    except ImportError as exc:
        raise AFMFileError(
            path, f"reading {_what(path)} files needs Gwyddion's converter: {EXTRA_HINT}"
        ) from exc
    return gwyddionpy


def _converter_reason(text: str, limit: int = 160) -> str:
    """The converter's reason for refusing a file, from its messages on one line:
    ``cannot load '<file>': <reason>`` and its file module's warnings (GLib's
    ``Module-WARNING **: <time>: <message>``), without the file name."""
    reasons: list[str] = []
    for line in text.splitlines():
        m = re.search(r"cannot load '.*': (.*)$", line)
        w = re.search(r"Module-WARNING \*\*: [\d:.]+: (.*)$", line)
        if m and m.group(1).strip().lower() != "unknown error":
            reasons.append(m.group(1).strip())
        elif w:
            reasons.insert(0, w.group(1).strip())
    text = "; ".join(reasons) or "no reason given"
    return text if len(text) <= limit else text[:limit] + "..."


def _convert(path: Path):
    """The file through Gwyddion's converter (``gwyddionpy.GwyData``), cached."""
    gp = _gwyddionpy(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise AFMFileError(path, f"cannot be read ({_short(exc)})") from exc
    key = (str(path.resolve()), hashlib.blake2b(content, digest_size=16).digest())
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:
        data = gp.load(path, timeout=CONVERTER_TIMEOUT_S)
    except gp.ConverterNotFoundError as exc:
        raise AFMFileError(
            path, f"Gwyddion's converter (gwyconvert) is not installed: {EXTRA_HINT}"
        ) from exc
    except gp.UnsupportedFormatError as exc:
        raise AFMFileError(
            path,
            f"Gwyddion's converter cannot read this {_what(path)} file "
            f"({_converter_reason(str(exc))}): it is corrupt, truncated or of another format",
        ) from exc
    except gp.GwyddionPyError as exc:
        raise AFMFileError(path, f"Gwyddion's converter failed ({_short(exc)})") from exc
    except (OSError, ValueError) as exc:
        raise AFMFileError(path, f"could not be converted ({_short(exc)})") from exc
    with _LOCK:
        _CACHE[key] = data
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return data


def _channels(path: Path) -> dict[str, Any]:
    """Gwyddion's channels of the file (title -> ``gwyddionpy.Channel``)."""
    channels = dict(_convert(path).channels)
    if not channels:
        raise AFMFileError(path, "Gwyddion's converter found no image channel in the file")
    return channels


def _list_gwyddionpy(path: Path) -> list[str]:
    """Channel names of a NanoSurf or NT-MDT file (Gwyddion's titles)."""
    return list(_channels(path))


# ----------------------------------------------------------------------------- NT-MDT
_MDT_MAGIC = b"\x01\xb0\x93\xff"
_MDT_MDA = 106  # frame type of an MDA (multi-dimensional array) frame
_FRAME_HEADER = 22


def _u32(buf: bytes, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _mda_steps(buf: bytes, start: int, end: int) -> tuple[str, list[tuple[float, int]]]:
    """The title of the MDA frame at ``start`` and its dimensions as ``(step in nm,
    points)``; the step is nan where the unit is not a length. Raises struct.error or
    ValueError where the frame does not hold what it declares."""
    p = start + _FRAME_HEADER
    head = _u32(buf, p)
    name_size, comm_size, view_size, spec_size, src_size = struct.unpack_from("<5I", buf, p + 44)
    title = buf[p + head : p + head + name_size].decode("cp1251", errors="replace")
    q = p + head + name_size + comm_size + view_size + spec_size + src_size + 4
    struct_len = _u32(buf, q)
    n_dims = _u32(buf, q + 4 + 12)
    c = q + 4 + struct_len
    dims = []
    for _ in range(min(n_dims, 8)):
        if c + 84 > end:
            raise ValueError("calibration past the end of the frame")
        total, head_len, name_len, comm_len, unit_len = struct.unpack_from("<5I", buf, c)
        scale = struct.unpack_from("<d", buf, c + 52)[0]
        lo, hi = struct.unpack_from("<QQ", buf, c + 60)
        u0 = c + 8 + head_len + name_len + comm_len
        unit = buf[u0 : u0 + min(unit_len, 16)].decode("latin-1", errors="replace")
        factor = _length_factor(unit)
        step = abs(scale) * factor if factor else math.nan
        dims.append((step, int(hi - lo + 1) if hi >= lo else -1))
        if total <= 0:
            raise ValueError("empty calibration record")
        c += total
    return title, dims


def _mdt_mda_frames(path: Path) -> dict[int, tuple[str, list[tuple[float, int]]]]:
    """The MDA frames of an NT-MDT file: frame number (1-based, as Gwyddion appends
    it to the titles) -> ``(title, [(step in nm, points) per dimension])``; an empty
    dict where the frames cannot be walked."""
    try:
        buf = path.read_bytes()
        if buf[:4] != _MDT_MAGIC or len(buf) < 33:
            return {}
        last = struct.unpack_from("<H", buf, 12)[0]
        pos, out = 33, {}
        for i in range(last + 1):
            size, kind = struct.unpack_from("<IH", buf, pos)
            if size < _FRAME_HEADER or pos + size > len(buf):
                return out
            if kind == _MDT_MDA:
                with contextlib.suppress(struct.error, ValueError, OverflowError):
                    out[i + 1] = _mda_steps(buf, pos, pos + size)
            pos += size
        return out
    except (OSError, struct.error):
        return {}


def _mdt_step(path: Path, name: str, shape: tuple[int, int], gwy_px: float, meta: dict):
    """The step per point (nm) of the MDA frame that channel ``name`` comes from,
    ``(px, py)``, where Gwyddion's extent is ``(points - 1) x step``; else None."""
    m = re.search(r"\((\d+)\)$", name)
    if m is None:
        return None
    frame = _mdt_mda_frames(path).get(int(m.group(1)))
    if frame is None:
        return None
    title, dims = frame
    rows, cols = shape
    if len(dims) != 2 or dims[0][1] != cols or dims[1][1] != rows or cols < 2:
        return None
    (sx, _), (sy, _) = dims
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        return None
    if abs(gwy_px * cols / (cols - 1) - sx) > 1e-6 * sx:  # not Gwyddion's MDA extent
        return None
    meta["pixel_size_gwyddion_nm"] = gwy_px
    meta["pixel_size_from"] = f"MDA calibration step of frame {m.group(1)} ({title})"
    return sx, sy


# ----------------------------------------------------------------------------- reading
def _default_channel(channels: dict[str, Any]) -> list[str]:
    """The preferred default: a channel named height, else the first length channel."""
    names = list(channels)
    height = [n for n in names if "height" in n.lower()]
    lengths = [n for n, c in channels.items() if str(getattr(c, "si_unit_z", "")) == "m"]
    return height[:1] + lengths[:1]


def _read_gwyddionpy(path: Path, channel: str | None) -> Raw:
    """Read one channel of a NanoSurf or NT-MDT file (lengths in nm, pixel size in nm)."""
    channels = _channels(path)
    name = _pick_channel(path, channel, list(channels), _default_channel(channels))
    ch = channels[name]
    try:
        image = np.array(ch.data, dtype=np.float64)
        xreal, yreal = float(ch.xreal), float(ch.yreal)
    except (TypeError, ValueError) as exc:
        raise AFMFileError(path, f"corrupt channel {name!r} ({_short(exc)})") from exc
    if image.ndim != 2 or image.size == 0:
        raise AFMFileError(path, f"channel {name!r} is not an image (shape {image.shape})")
    rows, cols = image.shape
    xy_unit, z_unit = str(ch.si_unit_xy or ""), str(ch.si_unit_z or "")
    meta: dict[str, Any] = {
        "channels": list(channels),
        "converter_module": _convert(path).source_format,
        "xreal_m": xreal,
        "yreal_m": yreal,
        "si_unit_xy": xy_unit,
        "si_unit_z": z_unit,
        "vendor": dict(ch.meta),
    }
    px = None
    if xy_unit == "m" and math.isfinite(xreal) and math.isfinite(yreal):
        px, py = xreal * 1e9 / cols, yreal * 1e9 / rows
        if path.suffix.lower() == ".mdt":
            px, py = _mdt_step(path, name, (rows, cols), px, meta) or (px, py)
        meta["pixel_size_y_nm"] = py
    if z_unit == "m":
        image *= 1e9
        meta["z_unit"] = "nm"
    else:
        meta["z_unit"] = z_unit or "unknown"
    return image, px, name, None, meta
