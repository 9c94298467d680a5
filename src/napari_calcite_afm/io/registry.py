"""The one table of file formats: extension -> format -> channel lister and reader.

:data:`FORMATS` maps each format name (``"spm"``, ``"ibw"``...) to a :class:`Format`:
the extensions it claims, the function that lists its channels and the function that
reads it. :func:`~napari_calcite_afm.io.stack.read_stack` and
:func:`~napari_calcite_afm.io.stack.list_channels` dispatch through it, and
:data:`SUPPORTED_EXTENSIONS` and :func:`is_supported` are derived from it, so a new
format is one module and one row here. The format is chosen by the extension alone
(case-insensitive); TIFF files are told apart from Park Systems TIFFs
(``"park-tiff"``) by their content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AFMFileError
from .arrays import _list_npy, _read_npy, _read_npz
from .asd import _list_asd, _read_asd
from .asylum import _list_ibw, _read_ibw
from .bruker import _list_spm, _read_spm
from .gwyddion import _list_gwy, _read_gwy
from .jpk import _read_h5jpk, _read_jpk
from .nanosurf_ntmdt import _list_gwyddionpy, _read_gwyddionpy
from .tiff import _read_tiff
from .topostats import _read_topostats
from .wsxm import _list_stp, _list_top, _read_stp, _read_top

__all__ = ["FORMATS", "SUPPORTED_EXTENSIONS", "Format", "is_supported"]


@dataclass(frozen=True)
class Format:
    """One file format that :func:`~napari_calcite_afm.io.stack.read_stack` reads.

    Attributes
    ----------
    name : str
        Short name, as ``AFMStack.format`` reports it (``"spm"``, ``"ibw"``...).
    extensions : tuple of str
        File extensions it claims (lower case, with the dot).
    read : callable
        ``read(path, channel)`` returning the raw read ``(values, pixel_size_nm,
        channel, frame_times_s, metadata)``; where ``z_unit`` is ``"reader"``,
        ``read(path, channel, z_unit)`` returning ``(raw read, format name)``.
    channels : callable or None
        ``channels(path)`` listing the channel names; None where the file is cheap
        enough to read in full and the channels are taken from its metadata.
    z_unit : str
        Where the unit of the values comes from: ``"file"`` (vendor files: the reader
        converts to nm itself), ``"argument"`` (.npy, .npz: the ``z_unit`` argument of
        ``read_stack``, else nm) or ``"reader"`` (TIFF: the reader weighs the file's
        unit against the argument).

    Examples
    --------
    >>> FORMATS["gwy"].extensions
    ('.gwy',)
    >>> FORMATS["npz"].z_unit
    'argument'
    """

    name: str
    extensions: tuple[str, ...]
    read: Callable[..., Any]
    channels: Callable[[Path], list[str]] | None = None
    z_unit: str = "file"


# Bruker NanoScope files use numbered extensions (.000 to .999).
_NUMBERED_RE = re.compile(r"^\.\d{3}$")
_NUMBERED = tuple(f".{i:03d}" for i in range(1000))

#: Every format, in the order the supported extensions are listed.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("spm", (".spm", *_NUMBERED), _read_spm, _list_spm),
        Format("ibw", (".ibw",), _read_ibw, _list_ibw),
        Format("gwy", (".gwy",), _read_gwy, _list_gwy),
        Format("jpk", (".jpk",), _read_jpk),
        Format("h5-jpk", (".h5-jpk",), _read_h5jpk),
        Format("asd", (".asd",), _read_asd, _list_asd),
        Format("stp", (".stp",), _read_stp, _list_stp),
        Format("top", (".top",), _read_top, _list_top),
        Format("topostats", (".topostats",), _read_topostats),
        Format("tiff", (".tif", ".tiff"), _read_tiff, z_unit="reader"),
        Format("npy", (".npy",), _read_npy, _list_npy, z_unit="argument"),
        Format("npz", (".npz",), _read_npz, z_unit="argument"),
        # through the optional gwyddion extra (Gwyddion's converter, GPL-2)
        Format("nid", (".nid",), _read_gwyddionpy, _list_gwyddionpy),
        Format("mdt", (".mdt",), _read_gwyddionpy, _list_gwyddionpy),
    )
}

_BY_EXTENSION: dict[str, str] = {ext: f.name for f in FORMATS.values() for ext in f.extensions}

#: Every file extension :func:`~napari_calcite_afm.io.stack.read_stack` reads (lower
#: case, with the dot). Bruker NanoScope files use numbered extensions, so ``.000`` to
#: ``.999`` are all listed.
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_BY_EXTENSION)

_SUPPORTED_TEXT = ".spm, .000-.999 (Bruker), " + ", ".join(
    ext for f in FORMATS.values() if f.name != "spm" for ext in f.extensions
)

# Formats that users may try but that no reader here handles.
_KNOWN_UNSUPPORTED: dict[str, str] = {
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
    """The name of the format that reads ``path`` (by its extension), or None."""
    ext = _suffix(path)
    if _NUMBERED_RE.match(ext):
        return "spm"
    return _BY_EXTENSION.get(ext)


def _is_frame_file(p: Path) -> bool:
    """A visible file of a supported format (what a folder contributes to a stack)."""
    return p.is_file() and not p.name.startswith(".") and _format_of(p) is not None


def _natural_key(path: Path) -> list:
    """Sort key of file names with numbers in numeric order (``frame_2`` < ``frame_10``)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(s) if s.isdigit() else s for s in parts]


def _unsupported(path: Path) -> AFMFileError:
    """The error for a file whose extension no reader handles (lists the supported ones)."""
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


def is_supported(path: Any) -> bool:
    """Tell whether :func:`~napari_calcite_afm.io.stack.read_stack` can read a path,
    judging by its name.

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
        ``.tiff``, ``.npy``, ``.npz``, and ``.nid``, ``.mdt`` through the optional
        ``gwyddion`` extra) is supported. Never raises.

    Examples
    --------
    >>> is_supported("scan.IBW"), is_supported("scan.007"), is_supported("scan.sxm")
    (True, True, False)
    >>> is_supported(["a.gwy", "b.tif"])
    True
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
