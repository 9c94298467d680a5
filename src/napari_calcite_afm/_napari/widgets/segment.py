"""Segment: label multilayer pits and terraces with a trained network.

A thin layer over :func:`napari_calcite_afm.predict.predict_stack`: choose the image and
the model (shipped default, the one just trained, or a file), segment the frame under the
time slider or the whole stack in a background thread, and get a Labels layer with the
package's fixed colours overlaid on the image (plus, optionally, an uncertainty image).
Pit regions that are not closed depressions are relabelled terrace unless "pits are
closed depressions" is unticked (:mod:`napari_calcite_afm.segmentation.closed`).

When the model was trained at a pixel size more than twice finer or coarser than the
image's, a napari warning says so and what to do (:mod:`..pixel_size`); when the
network is unsure about the frames (their mean uncertainty above the model's calibrated
threshold, :mod:`napari_calcite_afm.segmentation.depth`), another says the movie looks
unlike its training data. Alt+S segments, Alt+X stops.
"""

from __future__ import annotations

import warnings

import napari
import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...labels import LABEL_NAMES
from ...segmentation.scale import pixel_size_warning
from ..conventions import apply_conventions
from ..layers import (
    current_frame,
    image_layer_kwargs,
    labels_layer_kwargs,
    layer_stack,
    layer_unit_warning,
    pixel_size_of,
)
from ._model_chooser import ModelChooser, load_spec
from ._qt import LayerChooser, class_legend, form_layout, progress_bar, run_row, status_label
from ._shortcuts import register as register_shortcut
from ._shortcuts import shortcut_text
from ._tasks import TaskRunner, guarded

__all__ = ["SegmentWidget", "show_segmentation"]


def _already_levelled(layer_meta: dict, model) -> bool:
    """True when the layer was cleaned with exactly the model's levelling settings."""
    levelling = (layer_meta or {}).get("levelling")
    try:
        return bool(levelling) and levelling == model.level_settings.to_dict()
    except AttributeError:
        return False


def show_segmentation(viewer, image, labels, frames, *, uncertainty_map=None, name=None):
    """Put ``labels`` (for ``frames`` of ``image``) in the '<image> segmentation' layer.

    The layer has the image's shape; frames not segmented stay 0. Returns the layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    image : napari.layers.Image
        The image segmented (its shape, pixel size in nm and translation are used).
    labels : numpy.ndarray
        ``(len(frames), rows, cols)`` label values.
    frames : list of int
        The frames of ``image`` that ``labels`` belong to.
    uncertainty_map : numpy.ndarray, optional
        ``(len(frames), rows, cols)`` in 0..1, shown in the '<image> uncertainty' layer
        (below the labels).
    name : str, optional
        The labels layer's name (default '<image> segmentation').
    """
    shape = np.shape(image.data)
    name = name or f"{image.name} segmentation"
    px = pixel_size_of(image)
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is None or np.shape(layer.data) != shape:
        if layer is not None:
            viewer.layers.remove(layer)
        data = np.zeros(shape, np.uint8)
        kwargs = labels_layer_kwargs(data, px, name, like=image)
        kwargs["metadata"]["image"] = image.name
        layer = viewer.add_labels(data, **kwargs)
    data = np.asarray(layer.data)
    for k, index in enumerate(frames):
        if data.ndim == 2:
            data[...] = labels[k]
        else:
            data[index] = labels[k]
    layer.data = data
    layer.refresh()
    if uncertainty_map is not None:
        uname = f"{image.name} uncertainty"
        if uname in viewer.layers and np.shape(viewer.layers[uname].data) == shape:
            udata = np.asarray(viewer.layers[uname].data)
        else:
            if uname in viewer.layers:
                viewer.layers.remove(uname)
            udata = np.full(shape, np.nan, np.float32)
        for k, index in enumerate(frames):
            if udata.ndim == 2:
                udata[...] = uncertainty_map[k]
            else:
                udata[index] = uncertainty_map[k]
        if uname in viewer.layers:
            viewer.layers[uname].data = udata
            viewer.layers[uname].refresh()
        else:
            kwargs = image_layer_kwargs(udata, px, uname, {"uncertainty": "entropy"}, like=image)
            kwargs.update(colormap="magma", contrast_limits=(0.0, 1.0), visible=True)
            viewer.add_image(udata, **kwargs)
        # keep the masks on top of the uncertainty
        viewer.layers.move(viewer.layers.index(layer), len(viewer.layers))
    return layer


class SegmentWidget(QWidget):
    """Segment the current frame or the whole stack with the chosen model."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.result_layer = None

        self.image = LayerChooser(viewer, "image")
        self.image.tooltip = "heights in nm (raw or cleaned: the model levels raw frames itself)"
        self.model = ModelChooser()
        self.scope = QComboBox()
        self.scope.addItem("all frames", "all")
        self.scope.addItem("current frame (time slider)", "current")
        self.show_uncertainty = QCheckBox("also show uncertainty (0 certain … 1 undecided)")
        self.show_uncertainty.setToolTip(
            "normalised entropy of the class probabilities: bright where the network hesitates"
        )
        self.closed_pits = QCheckBox("pits are closed depressions")
        self.closed_pits.setChecked(True)
        self.closed_pits.setToolTip(
            "relabel as terrace the pit regions whose surroundings do not stand above them "
            "all round (the foot of a step, a hollow of stepped terrace); off: the "
            "network's labels as they are"
        )
        self.segment_button = QPushButton("Segment")
        self.segment_button.setToolTip(f"segment (shortcut {shortcut_text('segment')})")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(f"stop (shortcut {shortcut_text('stop')})")
        self.progress = progress_bar()
        self.status = status_label()

        form = form_layout()
        form.addRow("image (nm)", self.image.native)
        form.addRow("model", self.model)
        form.addRow("segment", self.scope)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(class_legend(3))
        layout.addWidget(self.closed_pits)
        layout.addWidget(self.show_uncertainty)
        layout.addLayout(run_row(self.segment_button, self.stop_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.runner = TaskRunner(
            self,
            [self.segment_button],
            self.progress,
            self.stop_button,
            self.status,
            name="Segment",
        )
        self.segment_button.clicked.connect(lambda *_: self.segment())
        register_shortcut(viewer, "segment", self.shortcut_segment)
        register_shortcut(viewer, "stop", self.stop_tasks)
        apply_conventions(viewer)

    def shortcut_segment(self) -> None:
        """Alt+S: segment, unless segmenting already."""
        if not self.runner.busy:
            self.segment()

    def stop_tasks(self) -> None:
        """Stop the segmentation running in the background (the Alt+X shortcut)."""
        if self.runner.busy:
            self.runner.stop()

    @guarded
    def segment(self, scope: str | None = None):
        """Segment in a background thread (``scope``: ``"all"`` or ``"current"``)."""
        image = self.image.layer()
        if image is None:
            self.status.setText("choose an image layer first")
            return None
        scope = scope or self.scope.currentData()
        stack = layer_stack(image)
        frames = (
            list(range(stack.shape[0])) if scope == "all" else [current_frame(self.viewer, image)]
        )
        spec = self.model.spec()
        meta = dict(image.metadata or {})
        want_uncertainty = self.show_uncertainty.isChecked()
        closed = self.closed_pits.isChecked()
        description = self.model.description()
        px = pixel_size_of(image)
        what = f"layer {image.name!r}"
        unit_warning = layer_unit_warning(image)

        def work(progress, stop):
            from ...segmentation import assess_depth, predict_stack, uncertainty

            progress({"stage": "loading the model"})
            model = load_spec(spec)
            for text in (unit_warning, pixel_size_warning(model, px, what)):
                if text:
                    warnings.warn(text, UserWarning, stacklevel=1)
            levelled = _already_levelled(meta, model)

            def report(info):
                # predict_stack counts frames done; the bar wants the index just done
                info = dict(info)
                if "frame" in info:
                    info["frame"] = int(info["frame"]) - 1
                progress(info)

            unsure = np.full(len(frames), np.nan)
            labels, probs = predict_stack(
                model,
                stack[frames],
                levelled=levelled,
                return_probabilities=want_uncertainty,
                progress=report,
                stop=stop,
                uncertainty_out=unsure,
                closed=closed,
            )
            # once, unless the pixel-size warning above said it already
            assess_depth(model, px, unsure, stack.shape[-2:], what).warn()
            unc = uncertainty(probs) if want_uncertainty and probs is not None else None
            return model, labels, unc

        def show(result):
            model, labels, unc = result
            self.result_layer = show_segmentation(
                self.viewer, image, labels, frames, uncertainty_map=unc
            )
            counts = np.bincount(labels.ravel(), minlength=model.n_classes + 1)
            total = max(int(counts[1:].sum()), 1)
            shares = ", ".join(
                f"{LABEL_NAMES[k]} {100 * counts[k] / total:.0f} %"
                for k in range(1, model.n_classes + 1)
            )
            where = f"all {len(frames)} frames" if scope == "all" else f"frame {frames[0]}"
            stopped = ""
            if self.runner.stop_event.is_set():
                stopped = " (stopped: later frames not segmented)"
            self.status.setText(
                f"segmented {where} with {description}: {shares} of the pixels{stopped}"
            )

        def report(info):
            if info.get("stage"):
                self.status.setText(str(info["stage"]))
            elif "frame" in info:
                self.status.setText(f"segmented {info['frame'] + 1} of {info['n_frames']} frames")

        return self.runner.start(work, on_done=show, on_progress=report, message="segmenting…")
