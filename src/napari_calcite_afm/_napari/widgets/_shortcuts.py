"""Keyboard shortcuts of the dock widgets, bound on the viewer.

napari already uses the plain digits (the Labels layer's modes: 1 erase, 2 paint...),
letters such as T, S and X on some layers, and Control with most letters, so the
plugin's shortcuts all use **Alt** (Option on macOS), which napari leaves free:

========  ===========================================================================
Alt-1     paint class 1, multilayer pit (Labels widget)
Alt-2     paint class 2, terrace
Alt-3     paint class 3, monolayer pit (switches the widget to 3 classes)
Alt-0     erase (class 0)
Alt-T     train (Train widget)
Alt-S     segment (Segment widget)
Alt-X     stop every running task of the plugin (training, segmenting, levelling...)
========  ===========================================================================

A widget registers a callback for an action with :func:`register`; the viewer's key
calls the newest live widget's callback (every one for ``stop``). Callbacks are held
weakly, so a closed widget drops out. A key that something else already bound on the
viewer is left as it is. No Qt here.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

__all__ = ["SHORTCUTS", "register", "shortcut_text"]

#: action -> (key, what it does); see the module docstring.
SHORTCUTS: dict[str, tuple[str, str]] = {
    "class 1": ("Alt-1", "paint class 1, multilayer pit"),
    "class 2": ("Alt-2", "paint class 2, terrace"),
    "class 3": ("Alt-3", "paint class 3, monolayer pit"),
    "erase": ("Alt-0", "erase (class 0)"),
    "train": ("Alt-T", "train"),
    "segment": ("Alt-S", "segment"),
    "stop": ("Alt-X", "stop every running task"),
}

# viewer model -> {action: [weak callbacks]}; viewer model -> {action: key bound?}
_callbacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shortcut_text(action: str) -> str:
    """The key of ``action`` as shown in tooltips.

    Examples
    --------
    >>> shortcut_text("train")
    'Alt+T'
    """
    return SHORTCUTS[action][0].replace("-", "+")


def _weak(callback: Callable) -> weakref.ref:
    if hasattr(callback, "__self__"):
        return weakref.WeakMethod(callback)
    return weakref.ref(callback)


def _live(refs: list) -> list[Callable]:
    alive = [(ref, ref()) for ref in refs]
    refs[:] = [ref for ref, cb in alive if cb is not None]
    return [cb for _, cb in alive if cb is not None]


def _dispatch(model, action: str) -> None:
    callbacks = _live(_callbacks.get(model, {}).get(action, []))
    targets = callbacks if action == "stop" else callbacks[-1:]
    for callback in targets:
        try:
            callback()
        except RuntimeError:  # a widget whose Qt object is gone
            pass


def register(viewer, action: str, callback: Callable[[], object]) -> bool:
    """Call ``callback()`` when the key of ``action`` is pressed in ``viewer``.

    Returns False when the key was already bound on the viewer by someone else (it is
    then left alone).

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> from napari.utils.key_bindings import coerce_keybinding
    >>> viewer = ViewerModel()
    >>> pressed = []
    >>> def train():
    ...     pressed.append("train")
    >>> register(viewer, "train", train)
    True
    >>> viewer.keymap[coerce_keybinding("Alt-T")](viewer)
    >>> pressed
    ['train']
    """
    model = getattr(viewer, "__wrapped__", viewer)
    _callbacks.setdefault(model, {}).setdefault(action, []).append(_weak(callback))
    bound = _bound.setdefault(model, {})
    if action in bound:
        return bound[action]
    ref = weakref.ref(model)

    def on_key(viewer=None) -> None:
        target = ref()
        if target is not None:
            _dispatch(target, action)

    on_key.__name__ = f"calcite_afm_{action.replace(' ', '_')}"
    try:
        model.bind_key(SHORTCUTS[action][0], on_key)
        bound[action] = True
    except ValueError:  # already bound by the user or another plugin
        bound[action] = False
    return bound[action]
