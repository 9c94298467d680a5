"""Small helpers shared by the long-running library functions (no Qt)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .io import CalciteAFMError

__all__ = ["Cancelled", "StopFlag", "stop_requested"]

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
