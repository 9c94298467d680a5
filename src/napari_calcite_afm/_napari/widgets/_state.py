"""A tiny in-process registry shared by the widgets.

The Train widget puts the model it has just trained here; the Segment and one-click
widgets offer it as "the model just trained". Listeners (plain callables) are told
when it changes. Nothing here imports Qt or napari.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainedModel", "clear", "get_trained", "set_trained", "subscribe", "unsubscribe"]


@dataclass
class TrainedModel:
    """The model trained in this session, with where its best checkpoint was saved."""

    model: Any
    checkpoint: Path | None = None
    description: str = ""
    info: dict = field(default_factory=dict)


_current: TrainedModel | None = None
_listeners: list[weakref.ref] = []  # weak: a closed widget must not stay alive


def get_trained() -> TrainedModel | None:
    """The model trained last in this napari session, or ``None``.

    Examples
    --------
    >>> set_trained(TrainedModel(model="a network", description="trained on 2 frames"))
    >>> get_trained().description
    'trained on 2 frames'
    >>> clear()
    >>> get_trained() is None
    True
    """
    return _current


def set_trained(entry: TrainedModel | None) -> None:
    """Register the model trained last and notify the listeners."""
    global _current
    _current = entry
    for ref in list(_listeners):
        listener = ref()
        if listener is None:
            _listeners.remove(ref)
            continue
        try:
            listener(entry)
        except RuntimeError:  # a widget whose Qt object is gone
            _listeners.remove(ref)


def _ref(listener: Callable) -> weakref.ref:
    if hasattr(listener, "__self__"):
        return weakref.WeakMethod(listener)
    return weakref.ref(listener)


def subscribe(listener: Callable[[TrainedModel | None], None]) -> None:
    """Call ``listener(entry)`` whenever the trained model changes (held weakly)."""
    ref = _ref(listener)
    if ref not in _listeners:
        _listeners.append(ref)


def unsubscribe(listener: Callable[[TrainedModel | None], None]) -> None:
    """Stop calling ``listener`` when the trained model changes."""
    ref = _ref(listener)
    if ref in _listeners:
        _listeners.remove(ref)


def clear() -> None:
    """Forget the trained model (tests)."""
    set_trained(None)
