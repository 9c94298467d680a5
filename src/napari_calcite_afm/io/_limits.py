"""What the readers refuse before they trust a file: sizes, scales and shapes no
instrument produces.

Every reader checks the sizes a file declares against the file's own size *before*
it allocates or parses (a corrupt header must not make a reader allocate gigabytes or
loop for minutes), and :func:`~napari_calcite_afm.io.stack.read_stack` checks every
result against the bounds here, refusing with the reason in the message:

=========================  ===============  ===============================================
what                       bound            why
=========================  ===============  ===============================================
pixel size from the file   1e-3 .. 1e6 nm   1 pm is a hundredth of an atomic spacing (the
                                            finest AFM scans are ~1 nm over 1024 pixels,
                                            1e-3 nm/pixel); 1 mm per pixel is 80 times
                                            the coarsest scan, the largest scanner range
                                            (~100 um) over 8 pixels
frame size                 >= 8 x 8         no instrument records an image of a few pixels
heights in nm              abs <= 1e7 nm    1 cm: z scanners move ~25 um at most
TIFF image directories     <= 100,000       and no loops or overlaps in their chain
=========================  ===============  ===============================================

Heights are bounded only where their unit is known (vendor files, or TIFF/.npy/.npz
with a unit in the file or a ``z_unit`` argument): values of unknown unit are kept as
stored. Nothing here imports Qt or napari.

Examples
--------
>>> from napari_calcite_afm.io._limits import check_pixel_size
>>> check_pixel_size("scan.gwy", 3.9)
>>> check_pixel_size("scan.gwy", 3.9e-294)
Traceback (most recent call last):
...
napari_calcite_afm.errors.AFMFileError: scan.gwy: the pixel size in the file, 3.9e-294 nm, \
is outside what an AFM records (0.001 to 1e+06 nm per pixel); the file is corrupt
"""

from __future__ import annotations

import contextlib
import itertools
import math
import struct
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import AFMFileError, CalciteAFMError

#: Smallest and largest pixel size (nm per pixel) a file may declare.
MIN_PIXEL_SIZE_NM = 1e-3
MAX_PIXEL_SIZE_NM = 1e6
#: Smallest frame, in pixels, along each axis.
MIN_FRAME_PIXELS = 8
#: Largest height magnitude, in nm, of a channel whose unit is known to be a length.
MAX_ABS_HEIGHT_NM = 1e7
#: Most TIFF image directories (pages) a TIFF may chain.
MAX_TIFF_PAGES = 100_000


def check_pixel_size(path: Any, px: float, what: str = "the pixel size in the file") -> None:
    """Refuse a pixel size (nm) that is not finite or outside the bounds of the module.

    Raises :class:`~napari_calcite_afm.errors.AFMFileError` naming ``path``, the value
    and the bounds.
    """
    if not (math.isfinite(px) and MIN_PIXEL_SIZE_NM <= px <= MAX_PIXEL_SIZE_NM):
        raise AFMFileError(
            path,
            f"{what}, {px:.6g} nm, is outside what an AFM records "
            f"({MIN_PIXEL_SIZE_NM:g} to {MAX_PIXEL_SIZE_NM:g} nm per pixel); the file is corrupt",
        )


def check_frame_shape(path: Any, shape: tuple[int, ...]) -> None:
    """Refuse frames ``(..., rows, cols)`` under :data:`MIN_FRAME_PIXELS` along an axis.

    >>> check_frame_shape("a.ibw", (1, 128, 1))
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.AFMFileError: a.ibw: frames of 128 x 1 pixels are too small \
for an AFM image (at least 8 x 8); the file is corrupt or not an image
    """
    rows, cols = int(shape[-2]), int(shape[-1])
    if rows < MIN_FRAME_PIXELS or cols < MIN_FRAME_PIXELS:
        raise AFMFileError(
            path,
            f"frames of {rows} x {cols} pixels are too small for an AFM image "
            f"(at least {MIN_FRAME_PIXELS} x {MIN_FRAME_PIXELS}); the file is corrupt or "
            "not an image",
        )


def _magnitude(arr: np.ndarray) -> float:
    """The largest magnitude of the finite values of an array (0.0 where none)."""
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: handled by the caller
        top = max(abs(float(np.nanmax(arr))), abs(float(np.nanmin(arr))))
        if not math.isfinite(top):  # NaN or infinities: measure the finite values only
            finite = arr[np.isfinite(arr)]
            top = float(np.abs(finite).max()) if finite.size else 0.0
    return top


def check_heights(path: Any, values: np.ndarray, factor: float = 1.0) -> None:
    """Refuse heights (``values * factor`` in nm) beyond :data:`MAX_ABS_HEIGHT_NM`.

    Non-finite values are left out (the readers turn them into NaN).

    >>> check_heights("a.topostats", np.array([[1.0, np.nan], [2.7e38, -3.0]]))
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.AFMFileError: a.topostats: heights reach 2.7e+38 nm, beyond \
anything an AFM measures (at most 1e+07 nm); the file is corrupt
    """
    if values.size == 0 or values.dtype.kind not in "iuf":
        return
    top = _magnitude(values) * abs(factor)
    if top > MAX_ABS_HEIGHT_NM:
        raise AFMFileError(
            path,
            f"heights reach {top:.3g} nm, beyond anything an AFM measures "
            f"(at most {MAX_ABS_HEIGHT_NM:g} nm); the file is corrupt",
        )


def file_size(path: Path) -> int:
    """Size of a file in bytes."""
    return path.stat().st_size


def read_at_most(fh: BinaryIO, n: int, size: int) -> bytes:
    """``fh.read(n)``, never asking for more than the ``size`` bytes of the file.

    ``fh.read(n)`` allocates ``n`` bytes before it reads: a header declaring a length
    of 99999999999 bytes would otherwise raise a ``MemoryError``.
    """
    return fh.read(max(0, min(int(n), int(size))))


def check_declared(path: Any, what: str, need: int, size: int) -> None:
    """Refuse a file of ``size`` bytes whose header declares ``need`` bytes of ``what``."""
    if need > size:
        raise AFMFileError(
            path,
            f"the file is truncated or corrupt: its header declares {need} bytes "
            f"({what}) but the file has {size} bytes",
        )


@contextlib.contextmanager
def memory_guard(path: Any):
    """Turn a ``MemoryError``, ``RecursionError`` or ``OverflowError`` escaping a reader
    into an :class:`~napari_calcite_afm.errors.AFMFileError` naming the file.

    The readers check declared sizes first; this is the net under those checks, so
    that no bare ``MemoryError`` (or traceback) reaches a user.
    """
    try:
        yield
    except CalciteAFMError:
        raise
    except MemoryError as exc:
        raise AFMFileError(
            path,
            "reading it needs more memory than is available: the file declares sizes "
            "it does not hold (corrupt) or is too large",
        ) from exc
    except RecursionError as exc:
        raise AFMFileError(path, "corrupt file: its structures nest too deeply") from exc
    except OverflowError as exc:
        raise AFMFileError(path, f"corrupt file: a number in it is out of range ({exc})") from exc


# ----------------------------------------------------------------------------- TIFF
def _tiff_layout(path: Path, head: bytes) -> tuple[str, int, int, int, int]:
    """Byte order, first IFD offset, and the sizes of the IFD count, entry and offset."""
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        raise AFMFileError(path, "is not a readable TIFF file (no 'II' or 'MM' byte-order mark)")
    magic = struct.unpack_from(order + "H", head, 2)[0]
    if magic == 42:
        return order, struct.unpack_from(order + "I", head, 4)[0], 2, 12, 4
    if magic == 43 and len(head) >= 16:  # BigTIFF
        return order, struct.unpack_from(order + "Q", head, 8)[0], 8, 20, 8
    raise AFMFileError(path, f"is not a TIFF file (version {magic}, not 42 or 43)")


def check_tiff_structure(path: Path, max_pages: int = MAX_TIFF_PAGES) -> int:
    """Walk the chain of image directories (IFDs) of a TIFF and count them.

    Refuses a first directory outside the file, a chain that loops or whose directories
    overlap (tifffile follows such a chain for minutes, adding a page per step), and
    more than ``max_pages`` directories. A next-directory offset beyond the end of the
    file ends the chain, as it does in tifffile. Runs before tifffile sees the file.
    """
    size = file_size(path)
    with path.open("rb") as fh:
        order, offset, count_size, entry_size, offset_size = _tiff_layout(path, fh.read(16))
        count_fmt = order + ("H" if count_size == 2 else "Q")
        next_fmt = order + ("I" if offset_size == 4 else "Q")
        spans: list[tuple[int, int]] = []
        starts: set[int] = set()
        while offset:
            if offset + count_size > size:
                if not spans:
                    raise AFMFileError(
                        path, f"the first TIFF directory is at byte {offset}, beyond the file"
                    )
                break
            fh.seek(offset)
            entries = struct.unpack(count_fmt, fh.read(count_size))[0]
            end = offset + count_size + entries * entry_size + offset_size
            if end > size:
                if not spans:
                    raise AFMFileError(path, "the first TIFF directory runs past the end")
                break
            spans.append((offset, end))
            starts.add(offset)
            if len(spans) > max_pages:
                raise AFMFileError(
                    path, f"holds more than {max_pages} TIFF images; split the movie into files"
                )
            fh.seek(end - offset_size)
            offset = struct.unpack(next_fmt, fh.read(offset_size))[0]
            if offset in starts:
                raise AFMFileError(
                    path, f"corrupt TIFF: the directory chain loops back to byte {offset}"
                )
    spans.sort()
    for (_, stop), (start, _) in itertools.pairwise(spans):
        if start < stop:
            raise AFMFileError(path, f"corrupt TIFF: image directories overlap at byte {start}")
    return len(spans)
