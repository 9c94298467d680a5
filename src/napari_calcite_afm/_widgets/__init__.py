"""The plugin's dock widgets (the only place, with the reader and writer, that uses Qt).

One module per widget, registered in ``napari.yaml``:

========================  ===============================================
``clean.CleanWidget``     levelling and drift correction (``level``)
``labels.LabelsWidget``   class labels: paint, propose, save, autosave
``train.TrainWidget``     train the dilated CNN (``train``)
``segment.SegmentWidget`` segment a frame or the stack (``predict``)
``statistics.StatisticsWidget``  multimodal Gaussian fits (``stats``)
``oneclick.OneClickWidget``      clean, segment and fit in one go (``pipeline``)
========================  ===============================================

Shared helpers live in :mod:`._common`, the model just trained in :mod:`._state`.
Widgets are imported lazily, so importing this package does not import Qt.
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
