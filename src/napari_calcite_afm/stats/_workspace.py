"""Scratch arrays reused between the samples of a frame, and between frames.

A fit needs a few arrays of the frame's size per sample (bucket indices, increments,
the pair-sum stack). :class:`_Workspace` keeps them between calls, and each thread has
its own (:func:`_thread_workspace`), so concurrent fits never share scratch memory.

Examples
--------
>>> work = _Workspace()
>>> a = work.get("t", 10, np.float64)
>>> b = work.get("t", 5, np.float64)  # the same memory, a shorter view
>>> a.size, b.size, np.shares_memory(a, b)
(10, 5, True)
"""

from __future__ import annotations

import threading

import numpy as np


class _Workspace:
    """Scratch arrays reused across the samples of one frame (fewer page faults)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._spares: list[_Workspace] = []

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        """A 1D array ``name`` of at least ``n`` elements of ``dtype``, its first ``n``."""
        a = self._arrays.get(name)
        if a is None or a.size < n or a.dtype != dtype:
            a = np.empty(n, dtype=dtype)
            self._arrays[name] = a
        return a[:n]

    def spares(self, n: int) -> list[_Workspace]:
        """This workspace and ``n - 1`` others kept with it (one per thread)."""
        while len(self._spares) < n - 1:
            self._spares.append(_Workspace())
        return [self, *self._spares[: n - 1]]


_LOCAL = threading.local()


def _thread_workspace() -> _Workspace:
    """This thread's scratch workspace, kept between calls.

    Fresh arrays of a few MB per sample cost page faults on every call; one workspace per
    thread keeps calls from different threads apart (docs/statistics.md, "Speed").
    """
    work = getattr(_LOCAL, "work", None)
    if work is None:
        work = _LOCAL.work = _Workspace()
    return work
