"""The plugin's dock widgets (with the reader and writers, the only place that uses Qt).

One module per widget, registered in ``napari.yaml``:

================================  ===================================================
``clean.CleanWidget``             levelling and drift correction (``level``)
``labels.LabelsWidget``           class labels: paint, propose, save, autosave
``train.TrainWidget``             train the segmentation network (``train``)
``segment.SegmentWidget``         segment a frame or the stack (``predict``)
``statistics.StatisticsWidget``   multimodal Gaussian fits (``stats``)
``oneclick.OneClickWidget``       clean, segment and fit in one go (``pipeline``)
================================  ===================================================

Shared pieces: :mod:`._tasks` (the background-task runner: progress in the widget and
napari's activity dock, notifications, warnings), :mod:`._qt` (layer choosers, plots in
napari's theme, form rows), :mod:`._model_chooser` (the model picker of Segment and
one-click), :mod:`._shortcuts` (the Alt keys), :mod:`._state` (the model just trained)
and :mod:`._autosave` (where labels and checkpoints are kept). Widgets are imported lazily,
so importing this package does not import Qt.
"""

from __future__ import annotations

import importlib

__all__ = [
    "CleanWidget",
    "LabelsWidget",
    "OneClickWidget",
    "SegmentWidget",
    "StatisticsWidget",
    "TrainWidget",
]

_MODULES = {
    "CleanWidget": "clean",
    "LabelsWidget": "labels",
    "TrainWidget": "train",
    "SegmentWidget": "segment",
    "StatisticsWidget": "statistics",
    "OneClickWidget": "oneclick",
}


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(f".{_MODULES[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
