"""Reading label stacks (TIFF, ``.npy``, ``.npz``, ``.gwy``) with the label values checked.

Label values are those of :mod:`napari_calcite_afm.labels`: 0 unlabelled, 1 multilayer
pit, 2 terrace, 3 monolayer pit; every array goes through its
:func:`~napari_calcite_afm.labels.check_labels`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AFMFileError
from ..labels import check_labels
from ._common import _check_readable, _quiet_logs, _short
from .arrays import _read_npy
from .registry import _suffix
from .tiff import _tiff_array

__all__ = ["read_labels"]


def _label_array(p: Path) -> np.ndarray:
    """The array stored in a label file (TIFF frames, ``.npy``, ``.npz`` ``labels``)."""
    ext = _suffix(p)
    if ext in (".tif", ".tiff"):
        import tifffile

        try:
            with _quiet_logs("tifffile"), tifffile.TiffFile(p) as tif:
                return _tiff_array(p, tif)
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(p, f"is not a readable TIFF file ({_short(exc)})") from exc
    if ext == ".npy":
        arr, *_ = _read_npy(p, None)
        return arr
    if ext == ".npz":
        try:
            with np.load(p, allow_pickle=False) as npz:
                if not npz.files:
                    raise AFMFileError(p, "the .npz file holds no array")
                key = "labels" if "labels" in npz.files else npz.files[0]
                return npz[key]
        except AFMFileError:
            raise
        except Exception as exc:
            raise AFMFileError(p, f"corrupt or truncated .npz file ({_short(exc)})") from exc
    if ext == ".gwy":  # written by write_gwy: the "labels" group of fields
        from .gwyddion import _read_gwy

        return _read_gwy(p, "labels")[0]
    raise AFMFileError(
        p, f"labels must be a TIFF, .npy, .npz or .gwy file, not {ext or 'no extension'!r}"
    )


def read_labels(path: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a label stack (TIFF, .npy, .npz or .gwy) as ``uint8 (frames, rows, cols)``.

    Parameters
    ----------
    path : str or os.PathLike
        TIFF (e.g. written by :func:`~napari_calcite_afm.io.write.write_tiff` or saved
        from Fiji/napari), ``.npy``, ``.npz`` (array ``labels``, else the first
        array), or ``.gwy`` written by :func:`~napari_calcite_afm.io.write.write_gwy`
        with labels (its ``"labels"`` fields).
    shape : tuple of int, optional
        Expected shape, ``(rows, cols)`` or ``(frames, rows, cols)`` in pixels (e.g.
        ``stack.heights.shape``); a 2-D shape checks only the frame size.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(frames, rows, cols)`` with values 0 (unlabelled), 1
        (multilayer pit), 2 (terrace), 3 (monolayer pit). A boolean array is read as
        0 and 1.

    Raises
    ------
    AFMFileError
        Missing or unreadable file, non-integer or out-of-range values (not 0..3), or a
        shape that differs from ``shape`` (the message names both shapes).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.npy"
    >>> np.save(path, np.array([[0, 1], [2, 3]]))
    >>> read_labels(path, shape=(2, 2))
    array([[[0, 1],
            [2, 3]]], dtype=uint8)
    >>> np.save(path, np.array([[0, 4]]))
    >>> read_labels(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.AFMFileError: ...labels.npy: labels must be 0 (unlabelled) or 1..3...
    """
    p = Path(path)
    _check_readable(p)
    arr = np.asarray(_label_array(p))
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
    if arr.dtype.kind == "b":  # a mask read as 0 and 1 (check_labels refuses booleans)
        arr = arr.astype(np.uint8)
    labels = check_labels(arr, error=lambda problem: AFMFileError(p, problem), what="labels")
    if shape is not None:
        want = tuple(int(n) for n in shape)
        got = labels.shape if len(want) == 3 else labels.shape[-2:]
        if len(want) not in (2, 3) or got != want:
            raise AFMFileError(
                p, f"label shape {tuple(labels.shape)} does not match the expected shape {want}"
            )
    return labels
