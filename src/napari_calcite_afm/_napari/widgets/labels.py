"""Labels: paint training labels with fixed class names and colours, and never lose them.

- "Create labels layer" adds a uint8 Labels layer the shape of the image, with the
  package's fixed colours (1 multilayer pit, 2 terrace, 3 monolayer pit);
- the legend's buttons set the class the brush paints (``selected_label``);
- "Propose from threshold" fills a starting point by Otsu's threshold on the heights
  (below: pit, above: terrace), per frame, through the Labels layer's history: one
  Ctrl+Z (napari's undo) gives the painted labels back;
- Alt+1, Alt+2, Alt+3 choose the class of the brush, Alt+0 the eraser (see
  :mod:`._shortcuts`);
- labels are saved / loaded as TIFF through :mod:`napari_calcite_afm.io`;
- painted labels are autosaved (debounced) to ``<image stem>.labels.autosave.tif`` next
  to the image, or to the user cache folder (see :mod:`._autosave`); creating labels for
  an image that has an autosave offers to restore it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ...labels import LABEL_COLORS, LABEL_NAMES
from ..conventions import apply_conventions
from ..layers import (
    current_frame,
    labels_layer_kwargs,
    layer_stack,
    pixel_size_of,
    source_path_of,
)
from ._autosave import _inside_package, autosave_path_for, cache_dir
from ._qt import LayerChooser, form_layout, progress_bar, run_row, status_label
from ._shortcuts import register as register_shortcut
from ._shortcuts import shortcut_text
from ._tasks import TaskRunner, expected_errors, guarded, notify_info

__all__ = [
    "AUTOSAVE_DELAY_MS",
    "UNDO_LIMIT_PIXELS",
    "LabelsWidget",
    "apply_proposal",
    "autosave_path_for",
    "cache_dir",
    "otsu_labels",
]

#: Milliseconds of quiet after the last brush stroke before the labels are autosaved.
AUTOSAVE_DELAY_MS = 2000

#: A proposal that changes more pixels than this is not kept in the undo history (about
#: 8 bytes a pixel); the widget then asks before it overwrites painted labels.
UNDO_LIMIT_PIXELS = 8_000_000


def _swatch(rgba) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor.fromRgbF(*rgba))
    return QIcon(pixmap)


def otsu_labels(frame: np.ndarray) -> np.ndarray:
    """1 (pit) below Otsu's threshold of the finite heights, 2 (terrace) above, 0 for NaN.

    A starting point for painting labels on cleaned (levelled) heights in nm.

    Examples
    --------
    >>> import numpy as np
    >>> otsu_labels(np.array([[0.0, 0.0, 5.0], [5.0, np.nan, 5.0]]))
    array([[1, 1, 2],
           [2, 0, 2]], dtype=uint8)
    """
    from skimage.filters import threshold_otsu

    z = np.asarray(frame, dtype=np.float64)
    finite = np.isfinite(z)
    out = np.zeros(z.shape, np.uint8)
    values = z[finite]
    if values.size == 0 or np.ptp(values) == 0:
        return out
    threshold = threshold_otsu(values)
    out[finite & (z <= threshold)] = 1
    out[finite & (z > threshold)] = 2
    return out


def _changes(data: np.ndarray, proposed: dict[int, np.ndarray]):
    """For each proposed frame: the indices (small integers) and values that change."""
    dtype = np.min_scalar_type(max(data.shape))
    for index, frame_labels in proposed.items():
        current = data if data.ndim == 2 else data[index]
        rows, cols = np.nonzero(current != frame_labels)
        if not rows.size:
            continue
        values = frame_labels[rows, cols]
        rows, cols = rows.astype(dtype), cols.astype(dtype)
        if data.ndim == 2:
            yield (rows, cols), values
        else:
            yield (np.full(rows.size, index, dtype=dtype), rows, cols), values


def apply_proposal(layer, proposed: dict[int, np.ndarray], *, undoable: bool = True) -> int:
    """Write proposed labels (frame index -> labels) into a Labels layer.

    With ``undoable``, the change goes through the layer's history
    (``Labels.data_setitem`` inside ``Labels.block_history``): one undo (Ctrl+Z in
    napari) restores the labels as they were. Returns the number of pixels changed.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Labels
    >>> layer = Labels(np.zeros((2, 4, 4), np.uint8))
    >>> layer.data[0, 0, 0] = 2                      # a painted pixel
    >>> apply_proposal(layer, {0: np.ones((4, 4), np.uint8)})
    16
    >>> layer.undo()
    >>> int(layer.data[0, 0, 0]), int(layer.data[0].sum())
    (2, 2)
    """
    data = np.asarray(layer.data)
    changed = 0
    if not undoable:
        for index, frame_labels in proposed.items():
            target = data if data.ndim == 2 else data[index]
            changed += int(np.count_nonzero(target != frame_labels))
            target[...] = frame_labels
        layer.data = data  # a data event: refresh + autosave
    else:
        with layer.block_history():
            for indices, values in _changes(data, proposed):
                layer.data_setitem(indices, values, refresh=False)
                changed += int(values.size)
    layer.refresh()
    return changed


class LabelsWidget(QWidget):
    """Create, paint, propose, save and autosave class labels for an image layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.labels_layer = None
        self.autosave_path: Path | None = None
        self.last_autosave: Path | None = None
        self._dirty = False

        self.image = LayerChooser(viewer, "image")
        self.image.tooltip = "the image the labels belong to (the cleaned heights are best)"
        self.n_classes = QComboBox()
        self.n_classes.addItem("2: multilayer pit, terrace", 2)
        self.n_classes.addItem("3: + monolayer pit", 3)
        self.create_button = QPushButton("Create labels layer")
        self.create_button.setToolTip(
            "add an empty Labels layer the shape of the image (offers to restore an autosave)"
        )

        legend = QGroupBox("Class to paint (fixed colours)")
        legend_layout = QVBoxLayout(legend)
        self.class_buttons = QButtonGroup(self)
        for value in (1, 2, 3):
            button = QRadioButton(f"{value}  {LABEL_NAMES[value]}")
            button.setIcon(_swatch(LABEL_COLORS[value]))
            self.class_buttons.addButton(button, value)
            legend_layout.addWidget(button)
        eraser = QRadioButton(f"0  {LABEL_NAMES[0]} (eraser)")
        eraser.setIcon(_swatch((0.85, 0.85, 0.85, 1.0)))
        self.class_buttons.addButton(eraser, 0)
        legend_layout.addWidget(eraser)
        self.class_buttons.button(1).setChecked(True)

        self.scope = QComboBox()
        self.scope.addItem("current frame", "current")
        self.scope.addItem("all frames", "all")
        self.propose_button = QPushButton("Propose from threshold (Otsu)")
        self.propose_button.setToolTip(
            "a starting point: heights below Otsu's threshold → multilayer pit, above → "
            "terrace. Use it on cleaned (levelled) heights, then correct with the brush. "
            "It overwrites the chosen frame(s); Ctrl+Z (napari's undo, with the labels "
            "layer selected) brings the painted labels back."
        )
        self.save_button = QPushButton("Save labels…")
        self.load_button = QPushButton("Load labels…")
        self.progress = progress_bar()
        self.status = status_label()

        form = form_layout()
        form.addRow("image", self.image.native)
        form.addRow("classes", self.n_classes)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.create_button)
        layout.addWidget(legend)
        propose = form_layout()
        propose.addRow("propose on", self.scope)
        layout.addLayout(propose)
        layout.addWidget(self.propose_button)
        layout.addLayout(run_row(self.save_button, self.load_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.runner = TaskRunner(
            self, [self.propose_button], self.progress, status=self.status, name="Labels"
        )
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self.autosave_timer.timeout.connect(self.autosave_now)

        self.create_button.clicked.connect(lambda *_: self.create_labels())
        self.propose_button.clicked.connect(lambda *_: self.propose())
        self.save_button.clicked.connect(lambda *_: self.save_labels())
        self.load_button.clicked.connect(lambda *_: self.load_labels())
        self.class_buttons.idClicked.connect(self.set_class)
        self.n_classes.currentIndexChanged.connect(self._update_classes)
        self._update_classes()
        for value, action in ((1, "class 1"), (2, "class 2"), (3, "class 3"), (0, "erase")):
            button = self.class_buttons.button(value)
            button.setText(f"{button.text()}   [{shortcut_text(action)}]")
            button.setToolTip(f"paint this class (shortcut {shortcut_text(action)})")
        register_shortcut(viewer, "class 1", self.shortcut_class_1)
        register_shortcut(viewer, "class 2", self.shortcut_class_2)
        register_shortcut(viewer, "class 3", self.shortcut_class_3)
        register_shortcut(viewer, "erase", self.shortcut_erase)
        apply_conventions(viewer)

    # the keyboard shortcuts (bound methods: the registry holds them weakly)
    def shortcut_class_1(self) -> None:
        """Alt+1: paint multilayer pits."""
        self.set_class(1)

    def shortcut_class_2(self) -> None:
        """Alt+2: paint terraces."""
        self.set_class(2)

    def shortcut_class_3(self) -> None:
        """Alt+3: paint monolayer pits (switches to 3 classes)."""
        if self.n_classes.currentData() != 3:
            self.n_classes.setCurrentIndex(self.n_classes.findData(3))
        self.set_class(3)

    def shortcut_erase(self) -> None:
        """Alt+0: erase."""
        self.set_class(0)

    # ----------------------------------------------------------------- classes

    def _update_classes(self, *args) -> None:
        three = self.n_classes.currentData() == 3
        self.class_buttons.button(3).setVisible(three)
        if not three and self.class_buttons.checkedId() == 3:
            self.class_buttons.button(2).setChecked(True)
            self.set_class(2)

    def set_class(self, value: int) -> None:
        """Make the brush paint class ``value`` (0 erases)."""
        button = self.class_buttons.button(int(value))
        if button is not None and not button.isChecked():
            button.setChecked(True)
        if self.labels_layer is not None and self.labels_layer in self.viewer.layers:
            self.labels_layer.selected_label = int(value)
            if int(value) == 0:
                self.labels_layer.mode = "erase"
            elif self.labels_layer.mode == "erase":
                self.labels_layer.mode = "paint"

    def _on_selected_label(self, event=None) -> None:
        try:
            value = int(self.labels_layer.selected_label)
            button = self.class_buttons.button(value)
            if button is not None:
                button.setChecked(True)
        except (RuntimeError, AttributeError):
            pass

    # ----------------------------------------------------------------- layer

    @guarded
    def create_labels(self, restore: bool | None = None):
        """Add '<image> labels' (or reuse it); ``restore`` decides about an autosave.

        ``restore=None`` asks the user when an autosave exists for this image.
        """
        image = self.image.layer()
        if image is None:
            self.status.setText("choose an image layer first")
            return None
        shape = np.shape(image.data)
        name = f"{image.name} labels"
        path = autosave_path_for(image)
        data = np.zeros(shape, np.uint8)
        restored = False
        if path.exists():
            if restore is None:
                restore = self._ask_restore(path)
            if restore:
                data = self._read_labels(path, shape)
                restored = True
            else:  # keep the declined autosave aside rather than overwrite it
                aside = path.name.replace(".autosave", ".previous.autosave")
                os.replace(path, path.with_name(aside))
        if name in self.viewer.layers and not restored:
            layer = self.viewer.layers[name]
            if np.shape(layer.data) != shape:
                self.viewer.layers.remove(name)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            if restored:
                layer.data = data
        else:
            kwargs = labels_layer_kwargs(data, pixel_size_of(image), name, like=image)
            kwargs["metadata"]["image"] = image.name
            layer = self.viewer.add_labels(data, **kwargs)
        self._attach(layer, path)
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        layer.brush_size = max(int(layer.brush_size), 10)
        self.set_class(self.class_buttons.checkedId() if self.class_buttons.checkedId() > 0 else 1)
        self.status.setText(
            (f"restored autosaved labels from {path}" if restored else f"labels layer {name!r}")
            + f"; autosave: {path}"
        )
        return layer

    def _ask_restore(self, path: Path) -> bool:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
        answer = QMessageBox.question(
            self,
            "Restore autosaved labels?",
            f"Labels painted on this image were autosaved on {stamp}:\n{path}\n\nRestore them?",
            QMessageBox.Yes | QMessageBox.No,
            QMessageBox.Yes,
        )
        return answer == QMessageBox.Yes

    @staticmethod
    def _read_labels(path: Path, shape) -> np.ndarray:
        from ...io import read_labels

        labels = np.asarray(read_labels(path, shape=shape), dtype=np.uint8)
        if len(shape) == 2 and labels.ndim == 3 and labels.shape[0] == 1:
            labels = labels[0]
        return labels

    def _attach(self, layer, autosave_path: Path) -> None:
        """Follow ``layer``'s edits for the autosave and its brush class for the legend."""
        if self.labels_layer is not None and self.labels_layer is not layer:
            self._detach()
        self.labels_layer = layer
        self.autosave_path = autosave_path
        layer.metadata["autosave_path"] = str(autosave_path)
        layer.events.paint.connect(self._on_edit)
        layer.events.data.connect(self._on_edit)
        layer.events.selected_label.connect(self._on_selected_label)

    def _detach(self) -> None:
        layer = self.labels_layer
        if layer is None:
            return
        if self._dirty:
            self.autosave_now()
        for emitter, slot in (
            (layer.events.paint, self._on_edit),
            (layer.events.data, self._on_edit),
            (layer.events.selected_label, self._on_selected_label),
        ):
            emitter.disconnect(slot)
        self.labels_layer = None

    def _on_edit(self, event=None) -> None:
        try:
            self._dirty = True
            self.autosave_timer.start()  # restarts: saves once the painting pauses
        except RuntimeError:  # widget deleted
            pass

    # ----------------------------------------------------------------- autosave

    def autosave_now(self) -> Path | None:
        """Write the labels to the autosave file now (the timer's slot)."""
        layer = self.labels_layer
        if layer is None or self.autosave_path is None or layer not in self.viewer.layers:
            return None
        from ...io import write_tiff

        path = self.autosave_path
        data = np.asarray(layer.data).astype(np.uint8)
        try:
            write_tiff(path, data, pixel_size_of(layer))  # atomic (temporary file + rename)
        except (OSError, *expected_errors()) as exc:
            fallback = cache_dir() / "autosave" / path.name
            if path == fallback:
                self.status.setText(f"autosave failed: {exc}")
                return None
            self.autosave_path = fallback
            return self.autosave_now()
        self._dirty = False
        self.last_autosave = path
        self.status.setText(f"autosaved {time.strftime('%H:%M:%S')} → {path}")
        return path

    # ----------------------------------------------------------------- propose

    @guarded
    def propose(self):
        """Otsu threshold per frame (current or all) into the labels layer."""
        image = self.image.layer()
        if image is None:
            self.status.setText("choose an image layer first")
            return None
        if self.labels_layer is None or self.labels_layer not in self.viewer.layers:
            if self.create_labels() is None:
                return None
        layer = self.labels_layer
        stack = layer_stack(image)
        frames = (
            list(range(stack.shape[0]))
            if self.scope.currentData() == "all"
            else [current_frame(self.viewer, image)]
        )

        def work(progress, stop):
            out = {}
            for k, index in enumerate(frames):
                if stop.is_set():
                    break
                out[index] = otsu_labels(stack[index])
                progress({"frame": k, "n_frames": len(frames)})
            return out

        def show(proposed):
            size = sum(int(v.size) for v in proposed.values())
            undoable = size <= UNDO_LIMIT_PIXELS
            if not undoable and not self._confirm_overwrite(layer, proposed):
                self.status.setText("proposal cancelled: the painted labels are kept")
                return
            changed = apply_proposal(layer, proposed, undoable=undoable)
            self.status.setText(
                f"proposed labels on {len(proposed)} frame(s) by Otsu's threshold "
                f"({changed} pixels changed): correct them with the brush"
                + ("; Ctrl+Z on the labels layer undoes the proposal" if undoable else "")
            )

        return self.runner.start(work, on_done=show, message="thresholding…")

    def _confirm_overwrite(self, layer, proposed) -> bool:
        """Ask before a proposal too big for the undo history overwrites painted pixels."""
        data = np.asarray(layer.data)
        painted = sum(
            int(np.count_nonzero(data if data.ndim == 2 else data[index])) for index in proposed
        )
        if painted == 0:
            return True
        answer = QMessageBox.question(
            self,
            "Overwrite painted labels?",
            f"The proposal covers {len(proposed)} frame(s) and would overwrite {painted} "
            "painted pixels. It is too big to be undone with Ctrl+Z. Overwrite them?",
            QMessageBox.Yes | QMessageBox.No,
            QMessageBox.No,
        )
        return answer == QMessageBox.Yes

    # ----------------------------------------------------------------- save / load

    @guarded
    def save_labels(self, path: str | os.PathLike | None = None):
        """Save the labels layer as a uint8 TIFF (asks for a file when ``path`` is None)."""
        layer = self.labels_layer
        if layer is None or layer not in self.viewer.layers:
            self.status.setText("create or load a labels layer first")
            return None
        if path is None:
            default = str(self._default_save_path())
            path, _ = QFileDialog.getSaveFileName(self, "Save labels", default, "TIFF (*.tif)")
            if not path:
                return None
        from ...io import write_tiff

        out = write_tiff(path, np.asarray(layer.data).astype(np.uint8), pixel_size_of(layer))
        self._dirty = False
        self.status.setText(f"saved labels to {out}")
        return Path(str(out))

    def _default_save_path(self) -> Path:
        image = self.image.layer()
        source = source_path_of(image) if image is not None else None
        if source is not None and not _inside_package(source):
            return source.with_name(f"{source.stem}.labels.tif")
        return Path.home() / "labels.tif"

    @guarded
    def load_labels(self, path: str | os.PathLike | None = None):
        """Load labels from a TIFF into the labels layer of the chosen image."""
        image = self.image.layer()
        if image is None:
            self.status.setText("choose an image layer first")
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(
                self, "Load labels", str(self._default_save_path().parent), "TIFF (*.tif *.tiff)"
            )
            if not path:
                return None
        data = self._read_labels(Path(path), np.shape(image.data))
        if self.labels_layer is None or self.labels_layer not in self.viewer.layers:
            self.create_labels(restore=False)
        self.labels_layer.data = data
        if int(data.max(initial=0)) >= 3 and self.n_classes.currentData() != 3:
            self.n_classes.setCurrentIndex(self.n_classes.findData(3))
            notify_info("the labels hold class 3 (monolayer pit): switched to 3 classes")
        self.status.setText(f"loaded labels from {path}")
        return self.labels_layer
