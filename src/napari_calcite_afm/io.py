"""Read AFM height stacks and write them (and label stacks) as TIFF.

Everything here is plain Python (numpy, tifffile, AFMReader); nothing imports Qt or napari.

Conventions (see ``DEVELOPERS.md``): a height stack is a ``float32`` array
``(frames, rows, cols)`` in **nm**, NaN marks pixels the instrument did not record, the
pixel size is isotropic and given in **nm per pixel**, and label stacks are ``uint8``
with values 0 (unlabelled), 1 (multilayer pit), 2 (terrace), 3 (monolayer pit).

Formats
-------
========================  ==========  ===================================================
extension                 ``format``  reader
========================  ==========  ===================================================
``.spm``, ``.000-.999``   spm         AFMReader ``spm.load_spm`` (pySPM >= 0.6), Bruker
                                      NanoScope; default channel ``Height``
``.ibw``                  ibw         AFMReader ``ibw.load_ibw`` (Asylum Research);
                                      pixel size corrected, channel names cleaned
``.gwy``                  gwy         own parser of Gwyddion 2 (``GWYP``) files
``.jpk``                  jpk         AFMReader ``jpk.load_jpk``
``.h5-jpk``               h5-jpk      AFMReader ``h5_jpk.load_h5jpk`` (movies)
``.asd``                  asd         AFMReader ``asd.load_asd`` (high-speed AFM movies)
``.stp``                  stp         AFMReader ``stp.load_stp`` (WSxM)
``.top``                  top         AFMReader ``top.load_top`` (WSxM), z range corrected
``.topostats``            topostats   AFMReader ``topostats.load_topostats``
``.tif``, ``.tiff``       tiff        tifffile (ImageJ hyperstacks, plain TIFF)
``.tif``, ``.tiff``       park-tiff   own reader of Park Systems TIFF (private tags)
``.npy``, ``.npz``        npy, npz    numpy
========================  ==========  ===================================================

Corrections of AFMReader 0.0.7
------------------------------
- ``.ibw``: AFMReader computes the pixel size as ``SlowScanSize / points per line``,
  which is wrong whenever the scan is not square (e.g. 30 um x 60 um, 256 x 512). Here it
  is ``FastScanSize / points per line`` (the slow axis is checked against it). igor2
  decodes dimension labels with trailing garbage (``'PhaseRetracerace'``); the names
  are re-read from the file's 32-byte label fields, and both spellings are accepted.
  Non-length channels (Phase, in degrees) are not multiplied by 1e9.
- ``.gwy``: AFMReader's parser skips the boolean and array component types (so files
  with them, such as TopoStats' test files, report "channel not found"), reshapes the
  data as ``(xres, yres)`` (transposed and sheared for non-square images) and scales
  every channel by 1e9 whatever its unit. Gwyddion files are therefore read by a small
  parser here (the file layout is documented in the Gwyddion user guide). Legacy
  Gwyddion 1 files (``GWYO``) are refused with an error.
- ``.top``: AFMReader reads ``Z Amplitude`` with an integer pattern (``59.7449 nm``
  becomes 59); the heights are rescaled to the full value.

Files whose pixels are not square keep their rows and columns; ``pixel_size_nm`` is the
fast-axis (column) pixel size, ``metadata["pixel_size_y_nm"]`` the row pitch, and a
``UserWarning`` is issued.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import math
import os
import re
import struct
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AFMFileError, CalciteAFMError
from .labels import labels_to_two_class

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "AFMFileError",
    "AFMStack",
    "CalciteAFMError",
    "is_supported",
    "labels_to_two_class",
    "list_channels",
    "read_labels",
    "read_stack",
    "write_tiff",
]


# ----------------------------------------------------------------------------- the stack
@dataclass
class AFMStack:
    """A stack of AFM height frames with its physical scale.

    Attributes
    ----------
    heights : numpy.ndarray
        ``float32`` array ``(frames, rows, cols)`` of heights in nm; NaN marks pixels
        that were not recorded.
    pixel_size_nm : float
        Pixel size in nm per pixel (isotropic; the fast-axis size where a file has
        non-square pixels, see ``metadata["pixel_size_y_nm"]``).
    channel : str
        Name of the channel that was read.
    frame_times_s : numpy.ndarray or None
        Time of each frame in seconds, where the file records it.
    source : str or None
        The file, folder or list of files the stack came from.
    format : str
        Short name of the file format (``"spm"``, ``"ibw"``, ``"gwy"``, ``"tiff"``...).
    metadata : dict
        Raw metadata, JSON-friendly where possible. Keys set by this module include
        ``z_unit`` (unit of ``heights``: ``"nm"`` for heights), ``channels``,
        ``pixel_size_assumed`` and ``pixel_size_y_nm``.
    """

    heights: np.ndarray
    pixel_size_nm: float
    channel: str = "height"
    frame_times_s: np.ndarray | None = None
    source: str | None = None
    format: str = "unknown"
    metadata: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.heights.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(rows, cols)`` in pixels."""
        return (int(self.heights.shape[-2]), int(self.heights.shape[-1]))

    @property
    def frame_interval_s(self) -> float | None:
        """Median time between frames in seconds, or None where unknown."""
        if self.frame_times_s is None:
            return None
        t = np.asarray(self.frame_times_s, dtype=float)
        if t.size < 2:
            return None
        dt = float(np.median(np.diff(t)))
        return dt if math.isfinite(dt) and dt > 0 else None


# ----------------------------------------------------------------------------- extensions
_NUMBERED_RE = re.compile(r"^\.\d{3}$")

_VENDOR_EXTENSIONS: dict[str, str] = {
    ".spm": "spm",
    ".ibw": "ibw",
    ".gwy": "gwy",
    ".jpk": "jpk",
    ".h5-jpk": "h5-jpk",
    ".asd": "asd",
    ".stp": "stp",
    ".top": "top",
    ".topostats": "topostats",
}
_OTHER_EXTENSIONS: dict[str, str] = {
    ".tif": "tiff",
    ".tiff": "tiff",
    ".npy": "npy",
    ".npz": "npz",
}

#: Every file extension :func:`read_stack` reads (lower case, with the dot). Bruker
#: NanoScope files use numbered extensions, so ``.000`` to ``.999`` are all listed.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".spm",
    *(f".{i:03d}" for i in range(1000)),
    *(ext for ext in _VENDOR_EXTENSIONS if ext != ".spm"),
    *_OTHER_EXTENSIONS,
)
_SUPPORTED_TEXT = ".spm, .000-.999 (Bruker), " + ", ".join(
    e for e in list(_VENDOR_EXTENSIONS)[1:] + list(_OTHER_EXTENSIONS)
)

# Formats that users may try but that no reader here handles.
_KNOWN_UNSUPPORTED: dict[str, str] = {
    ".mdt": "NT-MDT .mdt",
    ".nid": "NanoSurf .nid",
    ".sxm": "Nanonis .sxm",
    ".sm4": "RHK .sm4",
    ".sdf": "Surface Data File",
    ".gsf": "Gwyddion Simple Field",
    ".afm": "Veeco/Bruker .afm",
    ".mi": "Agilent/Keysight .mi",
    ".png": "PNG picture",
    ".jpg": "JPEG picture",
    ".jpeg": "JPEG picture",
    ".bmp": "bitmap picture",
}


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _format_of(path: Path) -> str | None:
    ext = _suffix(path)
    if _NUMBERED_RE.match(ext):
        return "spm"
    return _VENDOR_EXTENSIONS.get(ext) or _OTHER_EXTENSIONS.get(ext)


def is_supported(path: Any) -> bool:
    """Tell whether :func:`read_stack` can read a path, judging by its name.

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        A file, a folder (supported when it holds at least one supported file) or a
        list of files (supported when every one is).

    Returns
    -------
    bool
        True where the extension (``.spm``, ``.000``-``.999``, ``.ibw``, ``.gwy``,
        ``.jpk``, ``.h5-jpk``, ``.asd``, ``.stp``, ``.top``, ``.topostats``, ``.tif``,
        ``.tiff``, ``.npy``, ``.npz``) is supported. Never raises.
    """
    try:
        if isinstance(path, (list, tuple)):
            return len(path) > 0 and all(is_supported(p) for p in path)
        p = Path(path)
        if p.is_dir():
            return any(_is_frame_file(c) for c in p.iterdir())
        return _format_of(p) is not None
    except (OSError, TypeError, ValueError):
        return False


def _is_frame_file(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and _format_of(p) is not None


def _natural_key(path: Path) -> list:
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(s) if s.isdigit() else s for s in parts]


# ----------------------------------------------------------------------------- units
_LENGTH_NM: dict[str, float] = {
    "m": 1e9,
    "meter": 1e9,
    "metre": 1e9,
    "cm": 1e7,
    "mm": 1e6,
    "um": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "micrometre": 1e3,
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "pm": 1e-3,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "ang": 0.1,
}


def _length_factor(unit: Any) -> float | None:
    """nm per ``unit`` for a length unit name, or None if it is not a known length."""
    if unit is None:
        return None
    u = str(unit).strip()
    for micro in ("\\u00B5", "\\u00b5", "µ", "μ"):
        u = u.replace(micro, "u")
    u = u.replace("\u212b", "å").lower()
    return _LENGTH_NM.get(u)


def _z_factor_arg(z_unit: str | None) -> float | None:
    if z_unit is None:
        return None
    f = _length_factor(z_unit)
    if f is None:
        raise CalciteAFMError(
            f"unknown z_unit {z_unit!r}: use a length unit such as 'm', 'um', 'nm', 'pm' or 'A'"
        )
    return f


# ----------------------------------------------------------------------------- helpers
def _jsonable(obj: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of ``obj`` (numpy scalars to Python, bytes decoded...)."""
    if depth > 8:
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, dict):
        return {
            (k.decode("latin-1") if isinstance(k, bytes) else str(k)): _jsonable(v, depth + 1)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("latin-1").rstrip("\x00")
    if isinstance(obj, np.generic):
        return _jsonable(obj.item(), depth + 1)
    if isinstance(obj, np.ndarray):
        if obj.size <= 64:
            return _jsonable(obj.tolist(), depth + 1)
        return f"<array shape={list(obj.shape)} dtype={obj.dtype}>"
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).replace("\n", " ").strip()
    if len(text) > limit:
        text = text[:limit] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _warn(message: str) -> None:
    """Warn at the caller's line outside this module."""
    frame = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)


@contextlib.contextmanager
def _quiet_logs(*names: str):
    """Silence the standard-library loggers of a reader while it runs (their errors
    about a broken file are reported by the AFMFileError raised here instead)."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, b in zip(loggers, before):
            lg.disabled = b


@contextlib.contextmanager
def _no_resource_warnings():
    """Hide the ResourceWarning of files AFMReader opens and never closes (JPK)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


def _pick_channel(
    path: Path,
    requested: str | None,
    available: Sequence[str],
    preferred: Sequence[str] = (),
    aliases: dict[str, str] | None = None,
) -> str:
    """Choose a channel: the requested one (exact, alias, or unique case-insensitive
    match) or, by default, the first of ``preferred`` present, then the first channel
    whose name contains "height", then the first channel."""
    available = list(available)
    if not available:
        raise AFMFileError(path, "the file holds no image channel")
    if requested is not None:
        if requested in available:
            return requested
        if aliases and requested in aliases:
            return aliases[requested]
        folded = [c for c in available if c.lower() == requested.lower()]
        if len(folded) == 1:
            return folded[0]
        raise AFMFileError(
            path, f"channel {requested!r} not found; available channels: {', '.join(available)}"
        )
    for name in preferred:
        if name in available:
            return name
    for name in available:
        if "height" in name.lower():
            return name
    return available[0]


def _afmreader(module: str):
    """Import ``AFMReader.<module>`` lazily and silence its loguru INFO output.

    Each AFMReader module calls ``logger.enable("AFMReader")`` when it is imported, so
    the package is disabled again after every import.
    """
    mod = importlib.import_module(f"AFMReader.{module}")
    try:
        from loguru import logger

        logger.disable("AFMReader")
    except ImportError:  # pragma: no cover - loguru is an AFMReader dependency
        pass
    return mod


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AFMFileError(path, "file not found")
    if path.is_dir():
        raise AFMFileError(path, "is a folder, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AFMFileError(path, f"cannot be read ({_short(exc)})") from exc
    if size == 0:
        raise AFMFileError(path, "the file is empty (0 bytes)")


def _unsupported(path: Path) -> AFMFileError:
    ext = _suffix(path)
    what = _KNOWN_UNSUPPORTED.get(ext)
    lead = f"{what} files are not supported" if what else f"unsupported file type {ext!r}"
    if not ext:
        lead = "the file has no extension, so its format is unknown"
    hint = (
        ""
        if ext in (".png", ".jpg", ".jpeg", ".bmp")
        else ("; open it in Gwyddion and save it as .gwy or as a float TIFF")
    )
    return AFMFileError(path, f"{lead}{hint} (supported: {_SUPPORTED_TEXT})")


# ============================================================================= readers
# Each reader returns (heights ndarray 2D/3D, pixel_size_nm or None, channel, frame
# times or None, metadata dict). Validation and float32 conversion happen afterwards.
_Read = tuple[np.ndarray, "float | None", str, "np.ndarray | None", dict]


# ----------------------------------------------------------------------------- Bruker
def _spm_scan(path: Path):
    pyspm = importlib.import_module("pySPM")
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
        header_len = int(m.group(1)) if m else 1 << 20
        fh.seek(0)
        header = fh.read(header_len)
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
    return scan


def _spm_channels(scan) -> list[str]:
    names = []
    for layer in scan.layers:
        raw = layer.get(b"@2:Image Data", [b""])[0]
        text = raw.decode("latin-1")
        parts = text.split('"')
        names.append(parts[1] if len(parts) > 1 else text.strip())
    return names


def _spm_check_length(path: Path, scan) -> None:
    size = path.stat().st_size
    for layer in scan.layers:
        try:
            off = int(layer[b"Data offset"][0])
            length = int(layer[b"Data length"][0])
        except (KeyError, ValueError, IndexError):
            continue
        if off + length > size:
            raise AFMFileError(
                path,
                f"the file is truncated: an image needs bytes {off}-{off + length} "
                f"but the file has {size} bytes",
            )


def _read_spm(path: Path, channel: str | None) -> _Read:
    spm = _afmreader("spm")
    scan = _spm_scan(path)
    channels = _spm_channels(scan)
    name = _pick_channel(path, channel, channels, preferred=("Height",))
    _spm_check_length(path, scan)
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


# ----------------------------------------------------------------------------- Asylum
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
    note = scan["wave"].get("note", b"")
    if isinstance(note, bytes):
        note = note.decode("latin-1")
    out = {}
    for line in str(note).replace("\\r", "\r").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _read_ibw(path: Path, channel: str | None) -> _Read:
    ibw = _afmreader("ibw")
    from igor2 import binarywave

    _ibw_check_size(path)
    try:
        with _quiet_logs("igor2"):
            scan = binarywave.load(path)
        data = scan["wave"]["wData"]
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated Igor binary wave ({_short(exc)})") from exc
    igor_labels = [
        lab.decode("latin-1") for dim in scan["wave"].get("labels", []) for lab in dim if lab
    ]
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
    rows, cols = image.shape
    try:
        fast = float(note["FastScanSize"]) * 1e9  # m -> nm
        px = fast / cols
    except (KeyError, ValueError) as exc:
        raise AFMFileError(path, "the wave note has no usable FastScanSize") from exc
    with contextlib.suppress(KeyError, ValueError, ZeroDivisionError):
        slow = float(note["SlowScanSize"]) * 1e9
        meta["pixel_size_y_nm"] = slow / rows
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


# ----------------------------------------------------------------------------- Gwyddion
class _GwyTruncated(Exception):
    pass


def _gwy_cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.find(b"\x00", pos)
    if end < 0:
        raise _GwyTruncated("unterminated string")
    return buf[pos:end].decode("utf-8", errors="replace"), end + 1


def _gwy_need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise _GwyTruncated(f"needs {pos + n} bytes, file has {len(buf)}")


_GWY_SCALARS = {"b": ("<?", 1), "c": ("<c", 1), "i": ("<i", 4), "q": ("<q", 8), "d": ("<d", 8)}
_GWY_ARRAYS = {"C": ("u1", 1), "I": ("<i4", 4), "Q": ("<i8", 8), "D": ("<f8", 8)}


def _gwy_object(buf: bytes, pos: int) -> tuple[dict, int]:
    name, pos = _gwy_cstring(buf, pos)
    _gwy_need(buf, pos, 4)
    size = struct.unpack_from("<I", buf, pos)[0]
    pos += 4
    end = pos + size
    _gwy_need(buf, pos, size)
    obj: dict[str, Any] = {"__type__": name}
    while pos < end:
        key, pos = _gwy_cstring(buf, pos)
        _gwy_need(buf, pos, 1)
        kind = chr(buf[pos])
        pos += 1
        if kind in _GWY_SCALARS:
            fmt, n = _GWY_SCALARS[kind]
            _gwy_need(buf, pos, n)
            value: Any = struct.unpack_from(fmt, buf, pos)[0]
            pos += n
        elif kind == "s":
            value, pos = _gwy_cstring(buf, pos)
        elif kind == "o":
            value, pos = _gwy_object(buf, pos)
        elif kind in _GWY_ARRAYS or kind in "SO":
            _gwy_need(buf, pos, 4)
            count = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
            if kind in _GWY_ARRAYS:
                dtype, n = _GWY_ARRAYS[kind]
                _gwy_need(buf, pos, count * n)
                value = np.frombuffer(buf, dtype=dtype, count=count, offset=pos)
                pos += count * n
            elif kind == "S":
                value = []
                for _ in range(count):
                    s, pos = _gwy_cstring(buf, pos)
                    value.append(s)
            else:
                value = []
                for _ in range(count):
                    o, pos = _gwy_object(buf, pos)
                    value.append(o)
        else:
            raise ValueError(f"unknown component type {kind!r} for {key!r}")
        obj[key] = value
    if pos != end:
        raise ValueError(f"object {name!r} overruns its declared size")
    return obj, end


def _gwy_parse(path: Path) -> dict:
    buf = path.read_bytes()
    magic = buf[:4]
    if magic == b"GWYO":
        raise AFMFileError(
            path,
            "is a legacy Gwyddion 1 file (GWYO), which is not supported; "
            "open it in Gwyddion 2 and save it again",
        )
    if magic != b"GWYP":
        raise AFMFileError(path, f"is not a Gwyddion file (starts with {magic!r}, not b'GWYP')")
    try:
        container, _ = _gwy_object(buf, 4)
    except _GwyTruncated as exc:
        raise AFMFileError(path, f"the file is truncated ({exc})") from exc
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise AFMFileError(path, f"corrupt Gwyddion file ({_short(exc)})") from exc
    return container


def _gwy_channels(container: dict) -> dict[str, str]:
    """Channel title -> container key of its GwyDataField."""
    out: dict[str, str] = {}
    keys = []
    for key, value in container.items():
        m = re.fullmatch(r"/(\d+)/data", key)
        if m and isinstance(value, dict) and value.get("__type__") == "GwyDataField":
            keys.append((int(m.group(1)), key))
    for num, key in sorted(keys):
        title = container.get(f"{key}/title")
        title = str(title) if title else f"Channel {num}"
        if title in out:
            title = f"{title} ({num})"
        out[title] = key
    return out


def _gwy_unit(field_obj: dict, name: str) -> str:
    unit = field_obj.get(name)
    if isinstance(unit, dict):
        return str(unit.get("unitstr", ""))
    return ""


def _read_gwy(path: Path, channel: str | None) -> _Read:
    container = _gwy_parse(path)
    channels = _gwy_channels(container)
    if not channels:
        raise AFMFileError(path, "the Gwyddion file holds no image channel (GwyDataField)")
    name = _pick_channel(path, channel, list(channels))
    fobj = container[channels[name]]
    try:
        xres, yres = int(fobj["xres"]), int(fobj["yres"])
        data = np.asarray(fobj["data"], dtype=np.float64)
    except KeyError as exc:
        raise AFMFileError(path, f"channel {name!r} lacks {exc} in the file") from exc
    if data.size != xres * yres:
        raise AFMFileError(
            path, f"channel {name!r} has {data.size} values for {yres} x {xres} pixels"
        )
    image = data.reshape(yres, xres)  # Gwyddion stores rows top to bottom
    xy_unit, z_unit = _gwy_unit(fobj, "si_unit_xy"), _gwy_unit(fobj, "si_unit_z")
    meta: dict[str, Any] = {
        "channels": list(channels),
        "xres": xres,
        "yres": yres,
        "xreal": float(fobj.get("xreal", 1.0)),
        "yreal": float(fobj.get("yreal", 1.0)),
        "si_unit_xy": xy_unit,
        "si_unit_z": z_unit,
    }
    fxy = _length_factor(xy_unit) if xy_unit else None
    px = None
    if fxy:
        px = meta["xreal"] * fxy / xres
        meta["pixel_size_y_nm"] = meta["yreal"] * fxy / yres
    fz = _length_factor(z_unit) if z_unit else None
    if fz:
        image = image * fz
        meta["z_unit"] = "nm"
    else:
        meta["z_unit"] = z_unit or "unknown"
    return image, px, name, None, meta


# ----------------------------------------------------------------------------- JPK
def _read_jpk(path: Path, channel: str | None) -> _Read:
    jpk = _afmreader("jpk")
    import tifffile

    tags = jpk._load_jpk_tags()
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


def _read_h5jpk(path: Path, channel: str | None) -> _Read:
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


# ----------------------------------------------------------------------------- ASD
def _asd_header(path: Path) -> dict:
    asd = _afmreader("asd")
    with path.open("rb") as fh:
        version = asd.read_file_version(fh)
        reader = getattr(asd, f"read_header_file_version_{version}", None)
        if reader is None:
            raise AFMFileError(path, f"unknown .asd file version {version}")
        return reader(fh)


def _read_asd(path: Path, channel: str | None) -> _Read:
    asd = _afmreader("asd")
    try:
        header = _asd_header(path)
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .asd file ({_short(exc)})") from exc
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


# ----------------------------------------------------------------------------- WSxM
def _wsxm_header(path: Path) -> str:
    with path.open("rb") as fh:
        first = fh.read(150).decode("latin-1")
        m = re.search(r"Image header size: (\d+)", first)
        if not m:
            raise AFMFileError(path, "is not a WSxM file (no 'Image header size')")
        fh.seek(0)
        return fh.read(int(m.group(1))).decode("latin-1")


def _read_stp(path: Path, channel: str | None) -> _Read:
    stp = _afmreader("stp")
    header = _wsxm_header(path)
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


def _read_top(path: Path, channel: str | None) -> _Read:
    top = _afmreader("top")
    header = _wsxm_header(path)
    _pick_channel(path, channel, ["height"])
    try:
        image, px = top.load_top(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated WSxM file ({_short(exc)})") from exc
    image = np.asarray(image, dtype=np.float64)
    meta: dict[str, Any] = {"channels": ["height"], "z_unit": "nm"}
    m = re.search(r"Z Amplitude: ([0-9.eE+-]+)\s*(\S+)", header)
    if m:
        z_full = float(m.group(1)) * (_length_factor(m.group(2)) or 1.0)
        z_trunc = float(int(float(m.group(1))))  # what AFMReader 0.0.7 uses
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


def _wsxm_int16(path: Path, header: str) -> np.ndarray:
    rows = int(re.search(r"Number of rows: (\d+)", header).group(1))
    cols = int(re.search(r"Number of columns: (\d+)", header).group(1))
    buf = path.read_bytes()[len(header.encode("latin-1")) :]
    if len(buf) < rows * cols * 2:
        raise AFMFileError(path, "the file is truncated")
    return np.frombuffer(buf, "<i2", count=rows * cols).reshape(rows, cols).astype(float)


# ----------------------------------------------------------------------------- TopoStats
def _read_topostats(path: Path, channel: str | None) -> _Read:
    topostats = _afmreader("topostats")
    try:
        data = topostats.load_topostats(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .topostats file ({_short(exc)})") from exc
    channels = [
        k
        for k, v in data.items()
        if isinstance(v, np.ndarray) and v.ndim == 2 and np.issubdtype(v.dtype, np.number)
    ]
    name = _pick_channel(path, channel, channels, ("image", "image_original"))
    px = data.get("pixel_to_nm_scaling")
    meta = {
        "channels": channels,
        "z_unit": "nm",
        "topostats": {
            k: _jsonable(v) for k, v in data.items() if not isinstance(v, (dict, np.ndarray))
        },
    }
    return np.asarray(data[name]), (float(px) if px else None), name, None, meta


# ----------------------------------------------------------------------------- TIFF
_PARK_MAGIC = 0x0E031301


def _check_tiff_page(path: Path, page, file_size: int) -> None:
    offsets = getattr(page, "dataoffsets", ()) or ()
    counts = getattr(page, "databytecounts", ()) or ()
    for off, cnt in zip(offsets, counts):
        if off + cnt > file_size:
            raise AFMFileError(
                path,
                f"the file is truncated: image data runs to byte {off + cnt} "
                f"but the file has {file_size} bytes",
            )


def _utf16(buf: bytes, offset: int, chars: int) -> str:
    return buf[offset : offset + 2 * chars].decode("utf-16-le", errors="replace").split("\x00")[0]


def _read_park(path: Path, page, channel: str | None) -> _Read:
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


def _tiff_pixel_size(tif, page) -> tuple[float | None, dict]:
    """Pixel size in nm from ImageJ metadata / TIFF resolution tags, or None."""
    info: dict[str, Any] = {}
    ij = tif.imagej_metadata or {}
    tags = page.tags
    if "XResolution" not in tags:
        return None, info
    num, den = tags["XResolution"].value
    if not num or not den:
        return None, info
    per_unit = num / den  # pixels per unit
    ij_unit = ij.get("unit")
    if ij_unit:
        f = _length_factor(ij_unit)
        info["xy_unit"] = str(ij_unit)
        return (f / per_unit if f else None), info
    runit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    unit_nm = {3: 1e7, 4: 1e6, 5: 1e3}.get(runit)  # cm, mm, um (tifffile's extensions)
    if unit_nm:
        return unit_nm / per_unit, info
    if runit == 2 and per_unit not in (1.0, 72.0, 96.0, 300.0):
        info["resolution_dpi"] = per_unit
    return None, info


def _tiff_z_unit(tif, page) -> str | None:
    ij = tif.imagej_metadata or {}
    for key in ("vunit", "zunit", "z_unit", "value_unit"):
        if ij.get(key):
            return str(ij[key])
    text = page.description or ""
    m = re.search(r"\bz_?unit\"?\s*[=:]\s*\"?([A-Za-z\u00b5\u03bc\u00c5\u212b]+)", text)
    return m.group(1) if m else None


def _tiff_info_json(tif) -> dict:
    ij = tif.imagej_metadata or {}
    info = ij.get("Info")
    if isinstance(info, str) and info.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(info)
            if isinstance(parsed, dict) and isinstance(parsed.get("napari_calcite_afm"), dict):
                return parsed["napari_calcite_afm"]
    return {}


def _tiff_array(path: Path, tif) -> np.ndarray:
    """All frames of a TIFF as ``(frames, rows, cols)``; refuses colour images."""
    pages = [p for p in tif.pages if not getattr(p, "is_reduced", False)]
    if not pages:
        raise AFMFileError(path, "the TIFF holds no image")
    size = path.stat().st_size
    for i, page in enumerate(pages):
        photometric = int(getattr(page, "photometric", 1))
        if getattr(page, "samplesperpixel", 1) > 1 or photometric in (2, 5, 6):
            raise AFMFileError(
                path, "is an RGB image, not a height map (export the raw height data instead)"
            )
        if photometric == 3:
            raise AFMFileError(path, "is a palette (indexed colour) image, not a height map")
        if page.shape[-2:] != pages[0].shape[-2:]:
            raise AFMFileError(
                path,
                f"page {i} has shape {tuple(page.shape)} but page 0 has shape "
                f"{tuple(pages[0].shape)}; all frames must share a shape",
            )
        _check_tiff_page(path, page, size)
    rows, cols = pages[0].shape[-2:]
    if len(tif.series) == 1:
        series = tif.series[0]
        if "C" in series.axes and series.shape[series.axes.index("C")] > 1:
            n = series.shape[series.axes.index("C")]
            raise AFMFileError(
                path, f"holds {n} channels (axes {series.axes}); save one channel per file"
            )
        arr = series.asarray()
    else:
        arr = np.stack([p.asarray() for p in pages])
    if arr.size % (rows * cols):
        raise AFMFileError(
            path, f"cannot split data of shape {arr.shape} into {rows} x {cols} frames"
        )
    return arr.reshape(-1, rows, cols)


def _read_tiff(
    path: Path, channel: str | None, z_unit: str | None, pixel_size_nm: float | None
) -> tuple[_Read, str]:
    import tifffile

    try:
        with _quiet_logs("tifffile"):
            tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise AFMFileError(path, f"is not a readable TIFF file ({_short(exc)})") from exc
    with tif, _quiet_logs("tifffile"):
        if not tif.pages:
            raise AFMFileError(path, "the TIFF holds no image")
        page0 = tif.pages[0]
        if 50432 in page0.tags and page0.tags[50432].value == _PARK_MAGIC:
            _check_tiff_page(path, page0, path.stat().st_size)
            try:
                return _read_park(path, page0, channel), "park-tiff"
            except AFMFileError:
                raise
            except Exception as exc:
                raise AFMFileError(path, f"corrupt Park TIFF ({_short(exc)})") from exc
        try:
            arr = _tiff_array(path, tif)
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(path, f"corrupt or truncated TIFF ({_short(exc)})") from exc
        _pick_channel(path, channel, ["height"])
        meta: dict[str, Any] = {"channels": ["height"]}
        saved = _tiff_info_json(tif)
        if saved:
            meta["saved"] = saved
        px, info = _tiff_pixel_size(tif, page0)
        meta.update(info)
        saved_px = saved.get("pixel_size_nm")
        if px and isinstance(saved_px, (int, float)) and abs(saved_px - px) <= 1e-6 * px:
            px = float(saved_px)  # exact value written by write_tiff
        file_unit = _tiff_z_unit(tif, page0) or saved.get("z_unit")
        meta["z_unit"] = "nm"
        if file_unit and _length_factor(file_unit):
            if z_unit and _length_factor(z_unit) != _length_factor(file_unit):
                _warn(
                    f"{path}: the file says its values are in {file_unit!r}; "
                    f"z_unit={z_unit!r} ignored"
                )
            factor = _length_factor(file_unit)
            meta["z_unit_in_file"] = file_unit
        elif file_unit:  # not a length (deg, V...): values kept as they are
            factor = 1.0
            meta["z_unit"] = meta["z_unit_in_file"] = file_unit
        elif z_unit:
            factor = _z_factor_arg(z_unit)
            meta["z_unit_in_file"] = z_unit
        else:
            factor = 1.0
            meta["z_unit_assumed"] = True
        ij = tif.imagej_metadata or {}
        times = None
        fi = ij.get("finterval")
        if isinstance(fi, (int, float)) and fi > 0 and arr.shape[0] > 1:
            times = np.arange(arr.shape[0], dtype=float) * float(fi)
        meta["imagej"] = _jsonable({k: v for k, v in ij.items() if k != "Info"})
        if arr.dtype.kind in "biuf" and arr.dtype.kind != "b":
            values = arr.astype(np.float64) * factor if factor != 1.0 else arr
        else:
            values = arr
        if meta.get("z_unit_assumed") and values.dtype.kind == "f":
            finite = np.abs(values[np.isfinite(values)])
            if finite.size and 0 < finite.max() < 1e-5:
                _warn(
                    f"{path}: the heights are all below 1e-5 and the file gives no unit; "
                    "they look like metres: pass z_unit='m'"
                )
        return (values, px, "height", times, meta), "tiff"


# ----------------------------------------------------------------------------- numpy
def _read_npy(path: Path, channel: str | None) -> _Read:
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


def _read_npz(path: Path, channel: str | None) -> _Read:
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


# ============================================================================= public API
def list_channels(path: Any) -> list[str]:
    """List the image channels of an AFM file.

    Parameters
    ----------
    path : str or os.PathLike
        A file of a supported format (see :data:`SUPPORTED_EXTENSIONS`), or a folder
        (the channels of its first file in natural order).

    Returns
    -------
    list of str
        Channel names as :func:`read_stack` accepts them (e.g. ``["Height",
        "Amplitude"]`` for Bruker, ``["height_trace", ...]`` for JPK). Single-channel
        formats (TIFF, .npy, WSxM) return ``["height"]``; .npz returns its array names.

    Raises
    ------
    AFMFileError
        If the file is missing, unsupported or unreadable.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted((c for c in p.iterdir() if _is_frame_file(c)), key=_natural_key)
        if not files:
            raise AFMFileError(
                p, f"the folder holds no supported AFM file (supported: {_SUPPORTED_TEXT})"
            )
        p = files[0]
    _check_readable(p)
    fmt = _format_of(p)
    if fmt is None:
        raise _unsupported(p)
    if fmt == "spm":
        _afmreader("spm")
        return _spm_channels(_spm_scan(p))
    if fmt == "gwy":
        return list(_gwy_channels(_gwy_parse(p)))
    if fmt == "ibw":
        _afmreader("ibw")
        from igor2 import binarywave

        try:
            scan = binarywave.load(p)
        except Exception as exc:
            raise AFMFileError(p, f"corrupt or truncated Igor binary wave ({_short(exc)})") from exc
        igor = [
            lab.decode("latin-1") for dim in scan["wave"].get("labels", []) for lab in dim if lab
        ]
        clean = _ibw_clean_labels(p)
        return clean if clean is not None and len(clean) == len(igor) else igor
    if fmt == "asd":
        try:
            header = _asd_header(p)
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(p, f"corrupt or truncated .asd file ({_short(exc)})") from exc
        return [c for c in (header.get("channel1"), header.get("channel2")) if c]
    if fmt in ("stp", "top", "npy"):
        return ["height"]
    # the remaining formats are cheap enough to read in full
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(read_stack(p).metadata.get("channels", []))


def _read_one(
    path: Path, channel: str | None, z_unit: str | None, pixel_size_nm: float | None
) -> AFMStack:
    _check_readable(path)
    fmt = _format_of(path)
    if fmt is None:
        raise _unsupported(path)
    readers = {
        "spm": _read_spm,
        "ibw": _read_ibw,
        "gwy": _read_gwy,
        "jpk": _read_jpk,
        "h5-jpk": _read_h5jpk,
        "asd": _read_asd,
        "stp": _read_stp,
        "top": _read_top,
        "topostats": _read_topostats,
        "npy": _read_npy,
        "npz": _read_npz,
    }
    if fmt == "tiff":
        (values, px, name, times, meta), fmt = _read_tiff(path, channel, z_unit, pixel_size_nm)
        factor = 1.0
    else:
        values, px, name, times, meta = readers[fmt](path, channel)
        factor = 1.0
        if fmt in ("npy", "npz"):
            if z_unit is not None:
                factor = _z_factor_arg(z_unit)
                meta["z_unit_in_file"] = z_unit
            else:
                meta["z_unit_assumed"] = True
            meta["z_unit"] = "nm"
    if px is None:  # the file has no scale
        if pixel_size_nm is not None:
            px = pixel_size_nm
            meta["pixel_size_from"] = "argument"
        else:
            px = 1.0
            meta["pixel_size_assumed"] = True
    heights = _validate(path, values, factor)
    px = float(px)
    if not (math.isfinite(px) and px > 0):
        raise AFMFileError(path, f"the pixel size in the file is not a positive number ({px})")
    py = meta.get("pixel_size_y_nm")
    if isinstance(py, float) and math.isfinite(py) and py > 0 and abs(py - px) > 1e-3 * px:
        meta["non_square_pixels"] = True
        _warn(
            f"{path}: pixels are not square ({px:.6g} nm wide, {py:.6g} nm high); "
            f"pixel_size_nm is the width"
        )
    if times is not None:
        times = np.asarray(times, dtype=float).reshape(-1)
        if times.size != heights.shape[0]:
            meta["frame_times_ignored"] = f"{times.size} times for {heights.shape[0]} frames"
            times = None
    return AFMStack(
        heights=heights,
        pixel_size_nm=px,
        channel=name,
        frame_times_s=times,
        source=str(path),
        format=fmt,
        metadata=_jsonable(meta),
    )


def _validate(path: Path, values: Any, factor: float = 1.0) -> np.ndarray:
    """Check and convert reader output to float32 ``(frames, rows, cols)`` in nm."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        what = {"b": "boolean", "c": "complex", "O": "Python objects", "U": "text", "S": "bytes"}
        raise AFMFileError(
            path, f"holds {what.get(arr.dtype.kind, str(arr.dtype))} values, not numeric heights"
        )
    if arr.size == 0:
        raise AFMFileError(path, f"the image is empty (shape {tuple(arr.shape)})")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    elif arr.ndim == 3:
        pass
    elif arr.ndim > 3 and all(n == 1 for n in arr.shape[:-3]):
        arr = arr.reshape(arr.shape[-3:])
    else:
        raise AFMFileError(
            path, f"expected a 2-D image or a 3-D stack (frames, rows, cols), got shape {arr.shape}"
        )
    if factor != 1.0:
        out = (arr.astype(np.float64) * factor).astype(np.float32)
    else:
        out = arr.astype(np.float32, copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = np.nan
    empty = np.isnan(out).all(axis=(1, 2))
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise AFMFileError(
            path,
            f"frame {first} holds no recorded pixel (all NaN)"
            + (f"; {int(empty.sum())} such frames" if empty.sum() > 1 else ""),
        )
    return out


def _combine(
    files: Sequence[Path],
    source: str,
    channel: str | None,
    z_unit: str | None,
    pixel_size_nm: float | None,
) -> AFMStack:
    stacks: list[AFMStack] = []
    for f in files:
        s = _read_one(f, channel, z_unit, pixel_size_nm)
        if stacks:
            first = stacks[0]
            if s.shape != first.shape:
                raise AFMFileError(
                    f,
                    f"frame shape {s.shape} differs from {first.shape} of {files[0]}; "
                    "all frames must share a shape",
                )
            if abs(s.pixel_size_nm - first.pixel_size_nm) > 1e-3 * first.pixel_size_nm:
                raise AFMFileError(
                    f,
                    f"pixel size {s.pixel_size_nm:.6g} nm differs from "
                    f"{first.pixel_size_nm:.6g} nm of {files[0]}",
                )
        stacks.append(s)
    first = stacks[0]
    heights = np.concatenate([s.heights for s in stacks], axis=0)
    formats = sorted({s.format for s in stacks})
    meta = dict(first.metadata)
    meta["files"] = [str(f) for f in files]
    meta["frames_per_file"] = [s.n_frames for s in stacks]
    times = None
    if len(stacks) == 1:
        times = first.frame_times_s
    return AFMStack(
        heights=heights,
        pixel_size_nm=first.pixel_size_nm,
        channel=first.channel,
        frame_times_s=times,
        source=source,
        format=formats[0] if len(formats) == 1 else "mixed",
        metadata=meta,
    )


def read_stack(
    path: Any,
    channel: str | None = None,
    *,
    z_unit: str | None = None,
    pixel_size_nm: float | None = None,
) -> AFMStack:
    """Read an AFM image or movie as a stack of height frames in nm.

    Parameters
    ----------
    path : str, os.PathLike, or list/tuple of them
        A file; a folder (every supported file in it, in natural-sort order of the
        names, e.g. ``frame_2`` before ``frame_10``, becomes one stack: the frames of
        each file are appended in turn); or a list of files (read in the order given).
    channel : str, optional
        Channel to read (see :func:`list_channels`). By default: Bruker ``Height``;
        Asylum the first of ``HeightRetrace``, ``HeightTrace``, ``Height``; Gwyddion the
        first channel whose name contains "Height", else the first; JPK
        ``height_trace``; ASD ``TP``; TopoStats ``image``; .npz ``heights``.
        Matching is exact first, then case-insensitive.
    z_unit : str, optional
        Unit of the stored values for files that do not record one (plain TIFF, .npy,
        .npz): ``"m"``, ``"um"``, ``"nm"``, ``"pm"`` or ``"A"``; values are converted
        to nm. Without it such values are taken as nm (``metadata["z_unit_assumed"]``).
        Vendor files carry their own units and ignore it.
    pixel_size_nm : float, optional
        Pixel size in nm for files that do not record one (plain TIFF, .npy, .npz).
        Without it and without a scale in the file, 1.0 nm is used and
        ``metadata["pixel_size_assumed"]`` is True.

    Returns
    -------
    AFMStack
        ``heights`` is float32 ``(frames, rows, cols)`` in nm, NaN where no pixel was
        recorded (infinite values are turned into NaN); ``pixel_size_nm`` in nm/pixel;
        ``frame_times_s`` in seconds where the file records them (.h5-jpk, .asd,
        ImageJ ``finterval``, .npz ``frame_times_s``).

    Raises
    ------
    AFMFileError
        File or folder not found; unsupported extension (the message lists the supported
        ones); corrupt or truncated file; missing channel (the message lists the
        available ones); empty image; a frame that is entirely NaN; non-numeric data;
        frames of different shapes or pixel sizes (the message names the file that
        differs and both values).
    CalciteAFMError
        Bad argument (e.g. an unknown ``z_unit``).

    Warns
    -----
    UserWarning
        Non-square pixels, or a unit-less TIFF whose values look like metres.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> frame = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> _ = write_tiff(folder / "movie.tif", np.stack([frame, frame + 1]), 2.5,
    ...                frame_interval_s=4.0)
    >>> stack = read_stack(folder / "movie.tif")
    >>> stack.heights.shape, stack.pixel_size_nm, stack.frame_interval_s
    ((2, 3, 4), 2.5, 4.0)
    >>> np.save(folder / "heights_m.npy", frame * 1e-9)
    >>> read_stack(folder / "heights_m.npy", z_unit="m", pixel_size_nm=3.0).heights[0, 0, 1]
    np.float32(1.0)
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise AFMFileError("[]", "the list of files is empty")
        files = [Path(p) for p in path]
        for f in files:
            if f.is_dir():
                raise AFMFileError(f, "is a folder; a list must name files")
        source = f"{len(files)} files starting with {files[0]}"
        return _combine(files, source, channel, z_unit, pixel_size_nm)
    p = Path(path)
    if p.is_dir():
        files = sorted((c for c in p.iterdir() if _is_frame_file(c)), key=_natural_key)
        if not files:
            raise AFMFileError(
                p, f"the folder holds no supported AFM file (supported: {_SUPPORTED_TEXT})"
            )
        return _combine(files, str(p), channel, z_unit, pixel_size_nm)
    stack = _read_one(p, channel, z_unit, pixel_size_nm)
    return stack


# ----------------------------------------------------------------------------- writing
def write_tiff(
    path: Any,
    data: np.ndarray,
    pixel_size_nm: float,
    *,
    frame_interval_s: float | None = None,
    unit: str = "nm",
    metadata: dict | None = None,
    compression: str | None = None,
) -> Path:
    """Write a height or label stack as an ImageJ hyperstack TIFF.

    The file opens in Fiji/ImageJ and napari with its scale (ImageJ ``unit=nm`` and
    ``XResolution = YResolution = 1 / pixel_size_nm``) and is read back by
    :func:`read_stack` / :func:`read_labels` with the same pixel size. The write is
    atomic: the data go to a temporary file in the same folder, which then replaces
    ``path``. Missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.tif`` or ``.tiff``).
    data : numpy.ndarray
        ``(rows, cols)``, ``(frames, rows, cols)`` or, for per-class images such as
        probabilities, ``(frames, channels, rows, cols)`` (ImageJ axes ``TCYX``).
        Integer and boolean arrays whose values lie in 0..255 (label stacks) are written
        as ``uint8``; everything else as ``float32`` (heights, NaN kept).
    pixel_size_nm : float
        Pixel size in nm per pixel (> 0).
    frame_interval_s : float, optional
        Time between frames in seconds (ImageJ ``finterval``).
    unit : str, default "nm"
        Unit of the data values (ImageJ ``vunit``); :func:`read_stack` converts length
        units back to nm.
    metadata : dict, optional
        Extra JSON-serialisable metadata, stored as JSON in the ImageJ ``Info`` property
        under ``"napari_calcite_afm"``; read back into ``AFMStack.metadata["saved"]``.
    compression : str, optional
        TIFF compression understood by tifffile (e.g. ``"zlib"``); None writes
        uncompressed data, which every reader opens fastest.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    CalciteAFMError
        Bad data (not 2-D/3-D/4-D, empty, non-numeric) or bad pixel size / frame interval.
    AFMFileError
        The file cannot be written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sub" / "labels.tif"
    >>> labels = np.zeros((2, 8, 8), dtype=np.uint8)
    >>> labels[:, :4] = 2
    >>> write_tiff(out, labels, 5.0).name
    'labels.tif'
    >>> read_labels(out).dtype, read_stack(out).pixel_size_nm
    (dtype('uint8'), 5.0)
    """
    import tifffile

    out = Path(path)
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise CalciteAFMError(f"{out}: cannot write {arr.dtype} data as TIFF (numeric data needed)")
    if arr.ndim not in (2, 3, 4):
        raise CalciteAFMError(
            f"{out}: data must be (rows, cols), (frames, rows, cols) or "
            f"(frames, channels, rows, cols), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise CalciteAFMError(f"{out}: data are empty (shape {arr.shape})")
    try:
        px = float(pixel_size_nm)
    except (TypeError, ValueError) as exc:
        raise CalciteAFMError(
            f"{out}: pixel_size_nm must be a number, got {pixel_size_nm!r}"
        ) from exc
    if not (math.isfinite(px) and px > 0):
        raise CalciteAFMError(f"{out}: pixel_size_nm must be positive, got {pixel_size_nm!r}")
    if frame_interval_s is not None:
        fi = float(frame_interval_s)
        if not (math.isfinite(fi) and fi > 0):
            raise CalciteAFMError(
                f"{out}: frame_interval_s must be positive, got {frame_interval_s!r}"
            )
    if arr.dtype.kind in "biu" and (arr.dtype.kind == "b" or (arr.min() >= 0 and arr.max() <= 255)):
        arr = arr.astype(np.uint8)
    else:
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    ij: dict[str, Any] = {"axes": "TCYX" if arr.ndim == 4 else "TYX", "unit": "nm"}
    if arr.dtype == np.float32 and unit:
        ij["vunit"] = str(unit)
    if frame_interval_s is not None:
        ij["finterval"] = float(frame_interval_s)
    saved = {"pixel_size_nm": px}
    if arr.dtype == np.float32 and unit:
        saved["z_unit"] = str(unit)
    if frame_interval_s is not None:
        saved["frame_interval_s"] = float(frame_interval_s)
    if metadata:
        saved["metadata"] = _jsonable(metadata)
    ij["Info"] = json.dumps({"napari_calcite_afm": saved}, default=str)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise AFMFileError(out, f"cannot create the file ({_short(exc)})") from exc
    tmp = Path(tmp_name)
    try:
        tifffile.imwrite(
            tmp,
            arr,
            imagej=True,
            resolution=(1.0 / px, 1.0 / px),
            metadata=ij,
            compression=compression,
        )
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AFMFileError(out, f"cannot write the file ({_short(exc)})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


# ----------------------------------------------------------------------------- labels
def read_labels(path: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a label stack (TIFF, .npy or .npz) as ``uint8 (frames, rows, cols)``.

    Parameters
    ----------
    path : str or os.PathLike
        TIFF (e.g. written by :func:`write_tiff` or saved from Fiji/napari), ``.npy``,
        or ``.npz`` (array ``labels``, else the first array).
    shape : tuple of int, optional
        Expected shape, ``(rows, cols)`` or ``(frames, rows, cols)`` in pixels (e.g.
        ``stack.heights.shape``); a 2-D shape checks only the frame size.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(frames, rows, cols)`` with values 0 (unlabelled), 1
        (multilayer pit), 2 (terrace), 3 (monolayer pit).

    Raises
    ------
    AFMFileError
        Missing or unreadable file, non-integer or out-of-range values (not 0..3), or a
        shape that differs from ``shape`` (the message names both shapes).
    """
    p = Path(path)
    _check_readable(p)
    ext = _suffix(p)
    if ext in (".tif", ".tiff"):
        import tifffile

        try:
            with _quiet_logs("tifffile"), tifffile.TiffFile(p) as tif:
                arr = _tiff_array(p, tif)
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(p, f"is not a readable TIFF file ({_short(exc)})") from exc
    elif ext == ".npy":
        arr, *_ = _read_npy(p, None)
    elif ext == ".npz":
        try:
            with np.load(p, allow_pickle=False) as npz:
                if not npz.files:
                    raise AFMFileError(p, "the .npz file holds no array")
                key = "labels" if "labels" in npz.files else npz.files[0]
                arr = npz[key]
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(p, f"corrupt or truncated .npz file ({_short(exc)})") from exc
    else:
        raise AFMFileError(
            p, f"labels must be a TIFF, .npy or .npz file, not {ext or 'no extension'!r}"
        )
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise AFMFileError(p, f"holds {arr.dtype} values, not integer labels")
    if arr.size == 0:
        raise AFMFileError(p, f"the label image is empty (shape {tuple(arr.shape)})")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise AFMFileError(
            p, f"expected (rows, cols) or (frames, rows, cols) labels, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise AFMFileError(p, "labels contain NaN or infinite values")
        if not np.array_equal(arr, np.round(arr)):
            raise AFMFileError(p, "labels are not whole numbers")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > 3:
        raise AFMFileError(
            p, f"label values must be 0..3 (0 unlabelled, 1-3 classes), found {lo:g}..{hi:g}"
        )
    labels = arr.astype(np.uint8)
    if shape is not None:
        want = tuple(int(n) for n in shape)
        got = labels.shape if len(want) == 3 else labels.shape[-2:]
        if len(want) not in (2, 3) or got != want:
            raise AFMFileError(
                p, f"label shape {tuple(labels.shape)} does not match the expected shape {want}"
            )
    return labels
