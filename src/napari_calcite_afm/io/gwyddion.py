"""Gwyddion 2 files (``.gwy``, magic ``GWYP``), read by a small parser of their own.

AFMReader 0.0.7's parser skips the boolean and array component types (so files with
them, such as TopoStats' test files, report "channel not found"), reshapes the data as
``(xres, yres)`` (transposed and sheared for non-square images) and scales every
channel by 1e9 whatever its unit. The parser here follows the file layout documented in
the Gwyddion user guide: rows are stored top to bottom, lengths are converted to nm from
the ``si_unit_xy`` / ``si_unit_z`` units, and channels that are not lengths (Phase, in
degrees) keep their values. Legacy Gwyddion 1 files (``GWYO``) are refused with an
error. The default channel is the first whose name contains "height", else the first.
Unit strings are Gwyddion's SI units, so ``"A"`` is the ampere, not the angstrom.

Files written by :func:`~napari_calcite_afm.io.write.write_gwy` (one data field per
frame) describe their stack under :data:`GWY_STACK_KEY`: they list their groups
(``"height"``, ``"labels"``) as channels and read back as the stack written, with its
frame times and NaN where the frames' masks mark pixels that were not recorded. Their
single fields (``"height frame 3"``) can still be read by title.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _length_factor, _pick_channel, _short

#: The container key under which :func:`~napari_calcite_afm.io.write.write_gwy`
#: describes the stack it wrote (JSON): the channel numbers of each group of frames
#: (``"height"``, ``"labels"``), the frame times and whether masks mark NaN pixels.
GWY_STACK_KEY = "/napari-calcite-afm/stack"


class _GwyTruncated(Exception):
    """The file ends inside a component (a truncated file)."""


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
    """The serialised object at ``pos`` as a dict (``"__type__"`` holds its class)."""
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
    """The top-level container of a Gwyddion 2 file as a dict."""
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


def _gwy_length_factor(unit: str) -> float | None:
    """nm per unit of a Gwyddion unit string, or None where it is not a length.

    Gwyddion writes SI units, where ``"A"`` is the ampere (the angstrom is ``"Å"``), so
    a current channel is not taken for heights in angstroms.
    """
    if not unit or unit.strip() in ("A", "a"):
        return None
    return _length_factor(unit)


def _gwy_stack(path: Path, container: dict, channels: dict[str, str]):
    """What :func:`~napari_calcite_afm.io.write.write_gwy` recorded of the stack it wrote:
    ``(groups, frame_times_s, nan_masks, info)`` with ``groups`` mapping each channel
    to the container keys of its frames; None for other Gwyddion files."""
    text = container.get(GWY_STACK_KEY)
    if not isinstance(text, str):
        return None
    try:
        info = json.loads(text)
        groups = {str(k): [f"/{int(n)}/data" for n in v] for k, v in info["groups"].items()}
        times = info.get("frame_times_s")
        times = None if times is None else [float(t) for t in times]
        nan_masks = bool(info.get("nan_masks"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AFMFileError(
            path, f"corrupt stack description {GWY_STACK_KEY!r} ({_short(exc)})"
        ) from exc
    have = set(channels.values())
    for name, keys in groups.items():
        if not keys or any(k not in have for k in keys):
            raise AFMFileError(path, f"the stack {name!r} names data fields that the file lacks")
    if not groups:
        return None
    return groups, times, nan_masks, info


def _gwy_read_field(path: Path, container: dict, key: str, name: str, nan_mask: bool):
    """One data field as ``(image, pixel_size_nm or None, metadata)``, lengths in nm;
    with ``nan_mask``, the pixels of the field's mask (``/N/mask``) become NaN."""
    fobj = container[key]
    try:
        xres, yres = int(fobj["xres"]), int(fobj["yres"])
        data = np.asarray(fobj["data"], dtype=np.float64)
        xreal, yreal = float(fobj.get("xreal", 1.0)), float(fobj.get("yreal", 1.0))
    except KeyError as exc:
        raise AFMFileError(path, f"channel {name!r} lacks {exc} in the file") from exc
    except (TypeError, ValueError) as exc:
        raise AFMFileError(path, f"corrupt Gwyddion channel {name!r} ({_short(exc)})") from exc
    if xres < 1 or yres < 1:
        raise AFMFileError(path, f"channel {name!r} has {yres} x {xres} pixels")
    if data.size != xres * yres:
        raise AFMFileError(
            path, f"channel {name!r} has {data.size} values for {yres} x {xres} pixels"
        )
    image = data.reshape(yres, xres)  # Gwyddion stores rows top to bottom
    mask = container.get(key[: -len("/data")] + "/mask") if nan_mask else None
    if isinstance(mask, dict) and np.size(mask.get("data", ())) == image.size:
        image = np.where(np.asarray(mask["data"]).reshape(image.shape) > 0.5, np.nan, image)
    xy_unit, z_unit = _gwy_unit(fobj, "si_unit_xy"), _gwy_unit(fobj, "si_unit_z")
    meta: dict[str, Any] = {
        "xres": xres,
        "yres": yres,
        "xreal": xreal,
        "yreal": yreal,
        "si_unit_xy": xy_unit,
        "si_unit_z": z_unit,
    }
    fxy = _gwy_length_factor(xy_unit)
    px = None
    if fxy:
        px = meta["xreal"] * fxy / xres
        meta["pixel_size_y_nm"] = meta["yreal"] * fxy / yres
    fz = _gwy_length_factor(z_unit)
    if fz:
        image = image * fz
        meta["z_unit"] = "nm"
    else:
        meta["z_unit"] = z_unit or "unknown"
    return image, px, meta


def _read_gwy_stack(path: Path, container: dict, stack, channel: str | None) -> Raw:
    """Read a group of frames of a file written by ``write_gwy`` as one stack."""
    groups, times, nan_masks, info = stack
    name = _pick_channel(path, channel, list(groups))
    frames = [_gwy_read_field(path, container, k, name, nan_masks) for k in groups[name]]
    image, px, meta = frames[0]
    for other, opx, _ in frames[1:]:
        if other.shape != image.shape or opx != px:
            raise AFMFileError(path, f"the frames of {name!r} differ in shape or pixel size")
    saved = info.get("pixel_size_nm")
    if px is not None and isinstance(saved, (int, float)) and abs(saved - px) <= 1e-9 * px:
        if abs(meta.get("pixel_size_y_nm", px) - px) <= 1e-9 * px:
            meta["pixel_size_y_nm"] = float(saved)
        px = float(saved)  # the value written, without the rounding of xreal / xres
    meta["channels"] = list(groups)
    meta["frame_titles"] = [str(container.get(f"{k}/title", k)) for k in groups[name]]
    extra = container.get(groups[name][0][: -len("/data")] + "/meta")
    if isinstance(extra, dict) and isinstance(extra.get("napari-calcite-afm"), str):
        with contextlib.suppress(ValueError):
            meta["saved"] = {"metadata": json.loads(extra["napari-calcite-afm"])}
    return np.stack([f[0] for f in frames]), px, name, times, meta


def _list_gwy(path: Path) -> list[str]:
    """Channel titles of a Gwyddion file (refuses a file without any); the channels of a
    stack written by ``write_gwy`` (``"height"``, ``"labels"``)."""
    container = _gwy_parse(path)
    channels = _gwy_channels(container)
    if not channels:
        raise AFMFileError(path, "the Gwyddion file holds no image channel (GwyDataField)")
    stack = _gwy_stack(path, container, channels)
    return list(stack[0]) if stack else list(channels)


def _read_gwy(path: Path, channel: str | None) -> Raw:
    """Read one channel of a Gwyddion 2 file (lengths in nm), or a whole stack of a
    file written by :func:`~napari_calcite_afm.io.write.write_gwy`."""
    container = _gwy_parse(path)
    channels = _gwy_channels(container)
    if not channels:
        raise AFMFileError(path, "the Gwyddion file holds no image channel (GwyDataField)")
    stack = _gwy_stack(path, container, channels)
    if stack is not None and (channel is None or channel not in channels):
        return _read_gwy_stack(path, container, stack, channel)
    name = _pick_channel(path, channel, list(channels))
    masks = stack is not None and stack[2]
    image, px, meta = _gwy_read_field(path, container, channels[name], name, masks)
    meta = {"channels": list(channels), **meta}
    return image, px, name, None, meta
