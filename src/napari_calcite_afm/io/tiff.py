"""TIFF files (``.tif``, ``.tiff``): ImageJ hyperstacks, plain and multi-page TIFFs.

Every page (or the one series) becomes frames ``(frames, rows, cols)``. The pixel size
comes from the ImageJ ``unit`` with the resolution tags, or from a centimetre /
millimetre / micrometre ``ResolutionUnit``; the value unit from ImageJ ``vunit`` (or a
``z_unit`` in the description). Files written by
:func:`~napari_calcite_afm.io.write.write_tiff` carry their exact pixel size and
metadata as JSON in the ImageJ ``Info`` property (read back into
``metadata["saved"]``). Park Systems TIFFs are recognised by their private tags and
handed to :mod:`~napari_calcite_afm.io.park`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ._common import (
    Raw,
    _check_tiff_page,
    _jsonable,
    _length_factor,
    _pick_channel,
    _quiet_logs,
    _short,
    _warn,
    _z_factor_arg,
)
from ._limits import check_tiff_structure
from .park import _is_park, _read_park

# Largest integer that float32 holds exactly (2 ** 24).
_FLOAT32_EXACT = 1 << 24
# Compressed images may decode to this many times the file size (or this many bytes).
_MAX_DECODED_RATIO = 1000
_MAX_DECODED_FLOOR = 1 << 28


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
    """The unit of the values named in the ImageJ metadata or the description, or None."""
    ij = tif.imagej_metadata or {}
    for key in ("vunit", "zunit", "z_unit", "value_unit"):
        if ij.get(key):
            return str(ij[key])
    text = page.description or ""
    m = re.search(r"\bz_?unit\"?\s*[=:]\s*\"?([A-Za-z\u00b5\u03bc\u00c5\u212b]+)", text)
    return m.group(1) if m else None


def _tiff_info_json(tif) -> dict:
    """What :func:`~napari_calcite_afm.io.write.write_tiff` stored in ImageJ ``Info``."""
    ij = tif.imagej_metadata or {}
    info = ij.get("Info")
    if isinstance(info, str) and info.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(info)
            if isinstance(parsed, dict) and isinstance(parsed.get("napari_calcite_afm"), dict):
                return parsed["napari_calcite_afm"]
    return {}


def _check_pages(path: Path, pages: list) -> None:
    """Refuse colour pages, pages of different shapes, pages whose data run past the
    end of the file, and compressed pages that would decode to far more than the file."""
    size = path.stat().st_size
    decoded = 0
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
        decoded += math.prod(page.shape) * page.dtype.itemsize if page.dtype else 0
    if decoded > max(_MAX_DECODED_RATIO * size, _MAX_DECODED_FLOOR):
        raise AFMFileError(
            path,
            f"its images declare {decoded} bytes once decoded, "
            f"{decoded / size:.0f} times the {size}-byte file; the file is corrupt",
        )


def _series_frames(path: Path, series) -> None:
    """Refuse a series with channels or with more than one axis besides rows and columns.

    A 4-D stack (e.g. ImageJ ``TZYX``: times and slices) is not a movie of frames: it is
    refused rather than flattened into frames. Axes of length 1 do not count.
    """
    axes, shape = series.axes, series.shape
    if "C" in axes and shape[axes.index("C")] > 1:
        n = shape[axes.index("C")]
        raise AFMFileError(path, f"holds {n} channels (axes {axes}); save one channel per file")
    extra = [(a, n) for a, n in zip(axes[:-2], shape[:-2]) if n > 1]
    if len(extra) > 1:
        raise AFMFileError(
            path,
            f"holds a {len(extra) + 2}-D stack (axes {axes}, shape {tuple(shape)}); "
            "only 2-D images and 3-D movies (frames, rows, cols) are read: "
            "save one movie per file",
        )


def _tiff_array(path: Path, tif) -> np.ndarray:
    """All frames of a TIFF as ``(frames, rows, cols)``; refuses colour images, 4-D
    stacks and 64-bit integers beyond what float32 holds exactly."""
    check_tiff_structure(path)
    pages = [p for p in tif.pages if not getattr(p, "is_reduced", False)]
    if not pages:
        raise AFMFileError(path, "the TIFF holds no image")
    _check_pages(path, pages)
    rows, cols = pages[0].shape[-2:]
    if len(tif.series) == 1:
        series = tif.series[0]
        _series_frames(path, series)
        arr = series.asarray()
    else:
        arr = np.stack([p.asarray() for p in pages])
    if arr.size % (rows * cols):
        raise AFMFileError(
            path, f"cannot split data of shape {arr.shape} into {rows} x {cols} frames"
        )
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8 and arr.size:
        top = max(abs(int(arr.max())), abs(int(arr.min())))
        if top > _FLOAT32_EXACT:
            raise AFMFileError(
                path,
                f"holds {arr.dtype} values up to {top}, which float32 heights cannot hold "
                f"exactly (beyond {_FLOAT32_EXACT}); no AFM writes 64-bit integers: "
                "save the heights as float32",
            )
    return arr.reshape(-1, rows, cols)


def _tiff_z_factor(
    path: Path, file_unit: str | None, z_unit: str | None, meta: dict[str, Any]
) -> float:
    """nm per stored value: the file's length unit, else the ``z_unit`` argument.

    A unit in the file wins over ``z_unit`` (with a warning where they differ); a unit
    that is not a length (deg, V...) keeps the values as they are. Records the unit in
    ``meta`` (``z_unit``, ``z_unit_in_file`` or ``z_unit_assumed``).
    """
    meta["z_unit"] = "nm"
    if file_unit and _length_factor(file_unit):
        if z_unit and _length_factor(z_unit) != _length_factor(file_unit):
            _warn(
                f"{path}: the file says its values are in {file_unit!r}; z_unit={z_unit!r} ignored"
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
    return factor


def _read_park_page(path: Path, page0, channel: str | None) -> Raw:
    """:func:`~napari_calcite_afm.io.park._read_park`, any failure as an AFMFileError."""
    _check_tiff_page(path, page0, path.stat().st_size)
    try:
        return _read_park(path, page0, channel)
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"corrupt Park TIFF ({_short(exc)})") from exc


def _read_tiff(path: Path, channel: str | None, z_unit: str | None) -> tuple[Raw, str]:
    """Read a TIFF as heights in nm; returns the raw read and the format.

    The format is ``"park-tiff"`` for a Park Systems TIFF, else ``"tiff"``. ``z_unit``
    (see :func:`~napari_calcite_afm.io.stack.read_stack`) applies only where the file
    names no unit of its own.
    """
    import tifffile

    check_tiff_structure(path)
    try:
        with _quiet_logs("tifffile"):
            tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise AFMFileError(path, f"is not a readable TIFF file ({_short(exc)})") from exc
    with tif, _quiet_logs("tifffile"):
        if not tif.pages:
            raise AFMFileError(path, "the TIFF holds no image")
        page0 = tif.pages[0]
        if _is_park(page0):
            return _read_park_page(path, page0, channel), "park-tiff"
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
        factor = _tiff_z_factor(path, file_unit, z_unit, meta)
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
