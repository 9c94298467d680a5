"""Helpers shared by the readers: errors, warnings, quiet loggers, channels and units.

Every reader of the package returns a :data:`Raw` tuple and raises
:class:`~napari_calcite_afm.errors.AFMFileError` (through the helpers here) for a file it
cannot read. Nothing here imports Qt or napari.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._util import json_safe
from ..errors import AFMFileError, CalciteAFMError

#: What every reader returns: ``(values, pixel_size_nm, channel, frame_times_s,
#: metadata)``. ``values`` is a 2-D or 3-D array (heights in nm for height channels),
#: ``pixel_size_nm`` the pixel size in nm per pixel or None where the file records none,
#: ``frame_times_s`` the frame times in seconds or None. Validation and the float32
#: conversion happen afterwards (:func:`~napari_calcite_afm.io.stack.read_stack`).
Raw = tuple[np.ndarray, "float | None", str, "np.ndarray | None", dict]

# The package whose frames :func:`_warn` skips (``napari_calcite_afm.io``).
_PACKAGE = __name__.rpartition(".")[0]


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
    """nm per ``unit`` for a length unit name, or None if it is not a known length.

    Micro signs (``µ``, ``μ``, ``\\u00b5``) count as ``u`` and case is ignored, so
    ``"µm"`` gives 1000.0 and ``"Å"`` 0.1.
    """
    if unit is None:
        return None
    u = str(unit).strip()
    for micro in ("\\u00B5", "\\u00b5", "µ", "μ"):
        u = u.replace(micro, "u")
    u = u.replace("\u212b", "å").lower()
    return _LENGTH_NM.get(u)


def _z_factor_arg(z_unit: str | None) -> float | None:
    """nm per ``z_unit`` for the ``z_unit`` argument of ``read_stack`` (None for None).

    Raises :class:`~napari_calcite_afm.errors.CalciteAFMError` for a name that is not a
    length unit.
    """
    if z_unit is None:
        return None
    f = _length_factor(z_unit)
    if f is None:
        raise CalciteAFMError(
            f"unknown z_unit {z_unit!r}: use a length unit such as 'm', 'um', 'nm', 'pm' or 'A'"
        )
    return f


# ----------------------------------------------------------------------------- messages
def _jsonable(obj: Any) -> Any:
    """A JSON-friendly copy of file metadata (numpy scalars to Python, bytes decoded...).

    :func:`~napari_calcite_afm._util.json_safe` keeping NaN and infinities as floats and
    summarising arrays of more than 64 values as ``"<array shape=... dtype=...>"``.
    """
    return json_safe(obj, finite=False, max_array=64)


def _short(exc: BaseException, limit: int = 200) -> str:
    """``"ExcType: message"`` on one line, cut to ``limit`` characters, for error texts."""
    text = str(exc).replace("\n", " ").strip()
    if len(text) > limit:
        text = text[:limit] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _in_package(module_name: Any) -> bool:
    return module_name == _PACKAGE or str(module_name).startswith(_PACKAGE + ".")


def _warn(message: str) -> None:
    """Issue a ``UserWarning`` at the caller's line outside this package."""
    frame = sys._getframe(0)
    level = 1
    while frame is not None and _in_package(frame.f_globals.get("__name__")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)


# ----------------------------------------------------------------------------- readers
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
    """Refuse a missing path, a folder, an unreadable or an empty (0-byte) file."""
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


def _check_tiff_page(path: Path, page, file_size: int) -> None:
    """Refuse a TIFF page (tifffile ``TiffPage``) whose data run past the end of the file."""
    offsets = getattr(page, "dataoffsets", ()) or ()
    counts = getattr(page, "databytecounts", ()) or ()
    for off, cnt in zip(offsets, counts):
        if off + cnt > file_size:
            raise AFMFileError(
                path,
                f"the file is truncated: image data runs to byte {off + cnt} "
                f"but the file has {file_size} bytes",
            )


# ----------------------------------------------------------------------------- channels
def _pick_channel(
    path: Path,
    requested: str | None,
    available: Sequence[str],
    preferred: Sequence[str] = (),
    aliases: dict[str, str] | None = None,
) -> str:
    """Choose a channel: the requested one (exact, alias, or unique case-insensitive
    match) or, by default, the first of ``preferred`` present, then the first channel
    whose name contains "height", then the first channel.

    Raises :class:`~napari_calcite_afm.errors.AFMFileError` naming the available channels
    when the requested one is not there, or when there is none.
    """
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
