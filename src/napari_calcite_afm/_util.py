"""Small helpers shared by the long-running library functions (no Qt)."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any

from .io import CalciteAFMError

__all__ = [
    "Cancelled",
    "StopFlag",
    "available_cpus",
    "settings_from_dict",
    "stop_requested",
    "thread_map",
]

#: A stop request: a callable returning True to stop, or a ``threading.Event``.
StopFlag = Callable[[], bool] | threading.Event


class Cancelled(CalciteAFMError):
    """Raised when a long-running function was stopped by its stop flag."""


def stop_requested(stop: StopFlag | None) -> bool:
    """True when ``stop`` (None, a callable or a ``threading.Event``) asks to stop."""
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_map(fn: Callable[[Any], Any], items: Iterable, workers: int | None) -> Iterator:
    """``fn(item)`` for each item, in order, computed on up to ``workers`` threads.

    Lazy, with at most ``2 * workers`` results pending, so a long stack is never held
    twice in memory; numpy and scipy release the GIL in their array loops, which is where
    the threads overlap. ``workers`` None means one per available core; 1 runs everything
    in the calling thread. Closing the iterator early (a stop request) cancels the work
    not yet started.
    """
    n = available_cpus() if workers is None else int(workers)
    if n < 1:
        raise CalciteAFMError(f"workers must be a positive integer or None, got {workers!r}")
    if n == 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def settings_from_dict(cls: type, d: dict, error: type[Exception], what: str):
    """``cls(**d)`` for a settings dataclass, naming unknown keys in an ``error``.

    ``what`` names the kind of setting in the message ("levelling", "training").
    """
    if not isinstance(d, dict):
        raise error(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise error(
            f"unknown {what} setting(s) {', '.join(map(repr, unknown))}; "
            f"known settings: {', '.join(sorted(known))}"
        )
    return cls(**d)
