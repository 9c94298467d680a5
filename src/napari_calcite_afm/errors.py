"""The errors a user can cause, in one place.

Every error a user can cause (a bad file, a bad shape, a bad argument) is a
:class:`CalciteAFMError` (a ``ValueError``) whose message names the file, if any, and
the problem. The command line prints it on one line and exits with status 2; the napari
widgets show it as a notification. Each stage has its own subclass, so that a caller can
tell a bad file from a bad setting without parsing messages.

Examples
--------
>>> from napari_calcite_afm.errors import AFMFileError, CalciteAFMError
>>> err = AFMFileError("scan.gwy", "file not found")
>>> str(err), isinstance(err, CalciteAFMError), isinstance(err, ValueError)
('scan.gwy: file not found', True, True)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "KineticsError",
    "AFMFileError",
    "CalciteAFMError",
    "Cancelled",
    "LevelError",
    "StatsError",
    "TrainError",
]


class CalciteAFMError(ValueError):
    """Base class of every error a user can cause (bad file, bad shape, bad argument)."""


class AFMFileError(CalciteAFMError):
    """A file (or folder) could not be read; the message names it and the problem.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder concerned.
    problem : str
        What is wrong with it, in words.

    Examples
    --------
    >>> str(AFMFileError("scan.gwy", "file not found"))
    'scan.gwy: file not found'
    """

    def __init__(self, path: Any, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # keep the two-argument signature through pickling
        return (type(self), (self.path, self.problem))


class LevelError(CalciteAFMError):
    """Bad input to a levelling function (wrong shape, unknown method, bad setting)."""


class StatsError(CalciteAFMError):
    """A bad argument to the statistics functions (shape, lag, axis, labels...)."""


class TrainError(CalciteAFMError):
    """Bad training input or configuration (no labels, mismatched shapes...)."""


class KineticsError(CalciteAFMError):
    """Bad input to the kinetics functions (shapes, times, labels, pixel size)."""


class Cancelled(CalciteAFMError):
    """Raised when a long-running function was stopped by its stop flag."""
