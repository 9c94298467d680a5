"""Drift as a result file: ``drift.csv``.

The registration itself is :func:`napari_calcite_afm.level.register_stack` (the
pipeline's clean stage uses it); this module writes what it found, one row per frame:
``frame, shift_y_px, shift_x_px, confidence``. The shifts are what, applied to frame t
as ``scipy.ndimage.shift(frame, (shift_y_px, shift_x_px))`` applies them, aligns it with
frame 0 (rows = y, columns = x; frames numbered from 0).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..level import Registration
from .rates import KineticsError
from .track_table import _write_csv

__all__ = ["DRIFT_COLUMNS", "read_drift_csv", "write_drift_csv"]

#: The columns of ``drift.csv``, in order.
DRIFT_COLUMNS = ("frame", "shift_y_px", "shift_x_px", "confidence")


def write_drift_csv(path: str | Path, registration: Registration) -> Path:
    """Write ``drift.csv`` (atomically): one row per frame, see :data:`DRIFT_COLUMNS`.

    Shifts are rounded to 0.001 px and confidences to 0.001.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; parent folders are created.
    registration : Registration
        The result of :func:`~napari_calcite_afm.level.register_stack`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    AFMFileError
        When the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from napari_calcite_afm.level import register_stack
    >>> reg = register_stack(np.zeros((2, 8, 8)))
    >>> out = write_drift_csv(Path(tempfile.mkdtemp()) / "drift.csv", reg)
    >>> out.read_text().splitlines()
    ['frame,shift_y_px,shift_x_px,confidence', '0,0.0,0.0,1.0', '1,0.0,0.0,0.0']
    """
    shifts = np.asarray(registration.shifts, dtype=np.float64)
    conf = np.asarray(registration.confidence, dtype=np.float64)
    rows = [
        {
            "frame": i,
            "shift_y_px": round(float(dy), 3),
            "shift_x_px": round(float(dx), 3),
            "confidence": round(float(conf[i]), 3),
        }
        for i, (dy, dx) in enumerate(shifts)
    ]
    return _write_csv(path, rows, DRIFT_COLUMNS, "the drift table")


def read_drift_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``drift.csv`` back: ``(shifts (frames, 2) px, confidence (frames,))``.

    Raises
    ------
    KineticsError
        When the file lacks the columns or holds non-numbers (the message names it).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "drift.csv"
    >>> _ = out.write_text("frame,shift_y_px,shift_x_px,confidence\\n0,0,0,1\\n1,-2.5,1,0.8\\n")
    >>> shifts, conf = read_drift_csv(out)
    >>> shifts.tolist(), conf.tolist()
    ([[0.0, 0.0], [-2.5, 1.0]], [1.0, 0.8])
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise KineticsError(f"{path}: cannot read the drift table: {exc}") from None
    if not rows or any(c not in rows[0] for c in DRIFT_COLUMNS):
        raise KineticsError(f"{path}: a drift table needs the columns {', '.join(DRIFT_COLUMNS)}")
    try:
        shifts = np.array([[float(r["shift_y_px"]), float(r["shift_x_px"])] for r in rows])
        conf = np.array([float(r["confidence"]) for r in rows])
    except (TypeError, ValueError):
        raise KineticsError(f"{path}: the drift table holds values that are not numbers") from None
    return shifts, conf
