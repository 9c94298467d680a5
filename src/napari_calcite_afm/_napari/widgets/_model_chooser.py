"""A model chooser shared by the Segment, one-click and Train widgets.

Offers the shipped default models, the model trained in this session (see
:mod:`._state`) and a model file: :meth:`ModelChooser.spec` says (in the GUI thread)
what to load, :func:`load_spec` loads it (in the worker). The Train widget's "start
from" chooser (``start_from=True``) also offers a new network, and "automatic": the
shipped model of the chosen class count when the labels are scribbles (under
:data:`~napari_calcite_afm.segmentation.SPARSE_FRACTION` of the pixels), a new network
for dense labels (:func:`resolve_start`).
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import CalciteAFMError
from . import _state

__all__ = [
    "AUTO",
    "DEFAULT2",
    "DEFAULT3",
    "FILE",
    "NEW",
    "TRAINED",
    "ModelChooser",
    "load_spec",
    "resolve_start",
]

DEFAULT2 = "default2"
DEFAULT3 = "default3"
TRAINED = "trained"
FILE = "file"
NEW = "new"
AUTO = "auto"


class ModelChooser(QWidget):
    """Pick the segmentation model: shipped default, the one just trained, or a file.

    With ``start_from`` (the Train widget) it picks what training starts from: also
    "automatic" (the default) and a new network; it does not jump to the model just
    trained when one is.
    """

    def __init__(self, *, start_from: bool = False):
        super().__init__()
        self.start_from = start_from
        self.kind = QComboBox()
        if start_from:
            self.kind.addItem(
                "automatic: the shipped model for scribbles, a new network for dense labels",
                AUTO,
            )
            self.kind.addItem("a new network", NEW)
        self.kind.addItem("shipped default (pit / terrace)", DEFAULT2)
        self.kind.addItem("shipped default (3 classes, + monolayer pit)", DEFAULT3)
        self.kind.addItem("the model just trained (Train widget)", TRAINED)
        self.kind.addItem("a model file (.pt)…", FILE)
        self.kind.setToolTip(
            "what training starts from: fine-tuning a trained model needs only a few "
            "scribbled frames and a few hundred iterations (docs/segmentation.md)"
            if start_from
            else "which network segments the heights"
        )
        self.path = QLineEdit()
        self.path.setPlaceholderText("model file (.pt)")
        self.browse = QPushButton("Browse…")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path)
        row.addWidget(self.browse)
        self.file_row = QWidget()
        self.file_row.setLayout(row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.kind)
        layout.addWidget(self.file_row)
        self.kind.currentIndexChanged.connect(self._update)
        self.browse.clicked.connect(lambda *_: self._browse())
        _state.subscribe(self._on_trained)
        self._update()
        self._on_trained(_state.get_trained())

    def _update(self, *args) -> None:
        self.file_row.setVisible(self.kind.currentData() == FILE)

    def _on_trained(self, entry) -> None:
        index = self.kind.findData(TRAINED)
        item = self.kind.model().item(index)
        if item is not None:
            item.setEnabled(entry is not None)
        if entry is not None and not self.start_from:
            self.kind.setCurrentIndex(index)  # what the user most likely wants next
        elif entry is None and self.kind.currentData() == TRAINED:
            self.kind.setCurrentIndex(0)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Segmentation model", "", "Model (*.pt)")
        if path:
            self.set_file(path)

    def set_file(self, path) -> None:
        """Choose the model file ``path``."""
        self.kind.setCurrentIndex(self.kind.findData(FILE))
        self.path.setText(str(path))

    def choice(self) -> str:
        """The kind chosen: ``"default2"``, ``"default3"``, ``"trained"`` or ``"file"``
        (and, with ``start_from``, ``"auto"`` or ``"new"``)."""
        return self.kind.currentData()

    def description(self) -> str:
        """The model chosen, in words (the file name for a file)."""
        kind = self.choice()
        if kind == FILE:
            return Path(self.path.text()).name or "model file"
        return self.kind.currentText()

    def spec(self):
        """What to load (decided in the GUI thread): ``(kind, value)``.

        ``("default", n_classes)``, ``("object", model)``, ``("file", path)``, and with
        ``start_from`` ``("new", None)`` or ``("auto", None)`` (see :func:`resolve_start`).
        """
        kind = self.choice()
        if kind in (NEW, AUTO):
            return (kind, None)
        if kind == DEFAULT2:
            return ("default", 2)
        if kind == DEFAULT3:
            return ("default", 3)
        if kind == TRAINED:
            entry = _state.get_trained()
            if entry is None:
                raise CalciteAFMError("no model has been trained in this session yet (Train)")
            return ("object", entry.model)
        text = self.path.text().strip()
        if not text:
            raise CalciteAFMError("choose a model file (.pt) first")
        return ("file", Path(text))


def resolve_start(spec, labels, n_classes: int):
    """The start of a training run: ``spec`` with "automatic" decided by the labels.

    Parameters
    ----------
    spec : tuple
        :meth:`ModelChooser.spec` of a ``start_from`` chooser.
    labels : sequence of numpy.ndarray
        The label frames training will use.
    n_classes : int
        The class count chosen: "automatic" picks the shipped model that has it.

    Returns
    -------
    tuple
        ``("new", None)`` or a spec for :func:`load_spec`.

    Examples
    --------
    >>> import numpy as np
    >>> scribbles = [np.eye(16, dtype=np.uint8)]  # 6 % of the pixels
    >>> resolve_start(("auto", None), scribbles, 3)
    ('default', 3)
    >>> resolve_start(("auto", None), [np.ones((4, 4))], 2)  # dense labels
    ('new', None)
    """
    from ...segmentation import sparse_labels

    kind, _ = spec
    if kind != AUTO:
        return spec
    return ("default", int(n_classes)) if sparse_labels(labels) else ("new", None)


def load_spec(spec):
    """Load the model named by :meth:`ModelChooser.spec` (call it in the worker)."""
    kind, value = spec
    if kind == "new":
        return None
    if kind == "object":
        return value
    from ...segmentation import load_default_model, load_model

    if kind == "default":
        return load_default_model(value)
    return load_model(value)
