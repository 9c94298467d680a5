"""Train: fit the dilated CNN to the labels painted in napari.

A thin layer over :func:`napari_calcite_afm.train.train_model`. Every frame of the chosen
label layer that holds any label is used (sparse scribbles or dense masks). Training runs
in a background thread: napari stays responsive, the plot shows the training loss and the
validation accuracy as they come, Stop ends training cleanly and keeps the best model so
far, which is also checkpointed to the cache folder all along (never lost). The result
goes to the shared registry, so the Segment widget can use "the model just trained".
The model records the pixel size of the frames it learnt from (``info["pixel_size_nm"]``),
so Segment can warn when it meets another scale. Alt+T trains, Alt+X stops; the plot
takes the colours of napari's theme.

"Start from" chooses between a new network and fine-tuning a trained model (the shipped
ones, the model just trained, a file: its network, levelling and normalisation are kept,
and training takes 300 iterations of 4 patches by default). "Automatic", the default, fine-tunes the
shipped model when the labels are scribbles (under 20 % of the pixels of the labelled
frames) and trains a new network on dense labels.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...errors import CalciteAFMError
from ..conventions import apply_conventions
from ..layers import current_frame, layer_stack, pixel_size_of
from . import _state
from ._autosave import cache_dir
from ._model_chooser import DEFAULT2, DEFAULT3, FILE, TRAINED, ModelChooser, load_spec
from ._model_chooser import resolve_start as _resolve_start
from ._qt import LayerChooser, MplCanvas, form_layout, progress_bar, run_row, status_label
from ._shortcuts import register as register_shortcut
from ._shortcuts import shortcut_text
from ._tasks import TaskRunner, guarded, notify_info

__all__ = ["NETWORKS", "TrainWidget", "start_name", "training_pairs"]

#: Network choices: key -> (architecture, dilations, filters, text).
NETWORKS = {
    "unet": ("unet", (1, 2), 8, "U-Net on multiscale features (about 230 px context)"),
    "study": ("dilated", (1, 2, 4), 32, "study: dilated CNN 1, 2, 4 (15 px context)"),
    "wide": ("dilated", (1, 2, 4, 8, 16), 16, "wide: dilated CNN 1 … 16 (63 px context)"),
}


def training_pairs(image_layer, labels_layer) -> tuple[list, list, list[int]]:
    """The frames of ``image_layer`` that hold any label, with their labels.

    Parameters
    ----------
    image_layer, labels_layer : napari.layers.Image, napari.layers.Labels
        Heights in nm and labels of the same shape, a frame or a stack.

    Returns
    -------
    images : list of numpy.ndarray
        The labelled frames' heights (float32, nm).
    labels : list of numpy.ndarray
        Their labels (0 = not labelled).
    frames : list of int
        Their indices.

    Raises
    ------
    CalciteAFMError
        When the shapes differ or nothing is labelled.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> image = SimpleNamespace(name="raw", data=np.zeros((3, 8, 8), np.float32))
    >>> labels = np.zeros((3, 8, 8), np.uint8)
    >>> labels[1, 2, 2] = 1
    >>> _, _, frames = training_pairs(image, SimpleNamespace(name="labels", data=labels))
    >>> frames
    [1]
    """
    images = layer_stack(image_layer)
    labels = np.asarray(labels_layer.data)
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    if labels.shape != images.shape:
        raise CalciteAFMError(
            f"labels {labels_layer.name!r} have shape {labels.shape} but image "
            f"{image_layer.name!r} has shape {images.shape}: paint the labels on this "
            "image (Labels widget → Create labels layer)"
        )
    frames = [t for t in range(labels.shape[0]) if np.any(labels[t])]
    if not frames:
        raise CalciteAFMError(
            f"labels {labels_layer.name!r} are empty: paint a few pits and terraces first"
        )
    return [images[t] for t in frames], [labels[t] for t in frames], frames


def start_name(spec) -> str | None:
    """How a training start (a resolved "start from" spec) is named in ``TrainConfig.init``.

    None for a new network.

    Examples
    --------
    >>> start_name(("default", 3)), start_name(("new", None)), start_name(("file", "m.pt"))
    ('default3', None, 'm.pt')
    """
    kind, value = spec
    if kind == "new":
        return None
    if kind == "default":
        return "default3" if int(value) == 3 else "default"
    if kind == "object":
        return "the model just trained"
    return str(value)


class TrainWidget(QWidget):
    """Train a segmentation model on painted labels, with a live plot and a Stop button."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.result = None
        self.history: list[dict] = []
        self.checkpoint: Path | None = None
        self._preview_index = 0
        self._loss: list[tuple[int, float]] = []

        self.image = LayerChooser(viewer, "image")
        self.image.tooltip = "heights in nm (raw or cleaned); the model levels frames itself"
        self.labels = LayerChooser(viewer, "labels")
        self.labels.tooltip = (
            "painted labels (0 = not labelled, ignored); every frame with any label is used"
        )
        self.start = ModelChooser(start_from=True)
        self.iterations = QSpinBox()
        self.iterations.setRange(10, 100_000)
        self.iterations.setSingleStep(50)
        self.iterations.setValue(300)
        self.iterations.setToolTip(
            "optimiser steps (each a batch of training patches). 300 give a quick first "
            "network; 1500 (the command line's default) train a better one in about 3 "
            "minutes on a 2-core CPU"
        )
        self.batch = QSpinBox()
        self.batch.setRange(0, 256)
        self.batch.setSpecialValueText("auto")  # 0: 8 for a new network, 4 fine-tuning
        self.batch.setValue(0)
        self.batch.setToolTip(
            "training patches (160 x 160 pixels) per step; more patches learn more per "
            "step and take longer. auto: 8 for a new network, 4 when fine-tuning a trained "
            "model. With a GPU, 3200 iterations of 32 patches train a clearly better new "
            "network in a few minutes"
        )
        self.n_classes = QComboBox()
        self.n_classes.addItem("2: multilayer pit, terrace", 2)
        self.n_classes.addItem("3: + monolayer pit", 3)
        self.n_classes.setToolTip("with 2 classes, monolayer-pit labels (3) count as terrace")
        self.width = QSpinBox()
        self.width.setRange(4, 128)
        self.width.setValue(NETWORKS["unet"][2])
        self.width.setToolTip(
            "filters per convolution of the dilated CNN (32 in the study), or of the "
            "U-Net's first stage (8)"
        )
        self.dilations = QComboBox()
        for key, (*_, text) in NETWORKS.items():
            self.dilations.addItem(text, key)
        self.dilations.setToolTip(
            "the U-Net segments pit boundaries best (docs/segmentation.md); the study's "
            "dilated CNN is there for comparison"
        )
        self.dilations.currentIndexChanged.connect(
            lambda _: self.width.setValue(NETWORKS[self.dilations.currentData()][2])
        )
        self.live = QCheckBox("show the live prediction on the current frame")
        self.live.setToolTip(
            "at each validation, segment the frame under the time slider with the model "
            "as it is now ('… training preview' layer)"
        )
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip(f"start training (shortcut {shortcut_text('train')})")
        self.stop_button = QPushButton("Stop (keeps the best model)")
        self.stop_button.setToolTip(f"stop training (shortcut {shortcut_text('stop')})")
        self.save_button = QPushButton("Save model…")
        self.save_button.setEnabled(False)
        self.progress = progress_bar()
        self.plot = MplCanvas(4.0, 2.6, viewer=viewer)
        self.status = status_label()

        form = form_layout()
        form.addRow("image (nm)", self.image.native)
        form.addRow("labels", self.labels.native)
        form.addRow("start from", self.start)
        form.addRow("iterations", self.iterations)
        form.addRow("patches per step", self.batch)
        form.addRow("classes", self.n_classes)
        form.addRow("filters", self.width)
        form.addRow("network", self.dilations)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.live)
        layout.addLayout(run_row(self.train_button, self.stop_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)
        layout.addWidget(self.save_button)
        layout.addWidget(self.status)

        self.runner = TaskRunner(
            self, [self.train_button], self.progress, self.stop_button, self.status, name="Train"
        )
        self.start.kind.currentIndexChanged.connect(lambda *_: self._start_changed())
        self.train_button.clicked.connect(lambda *_: self.train())
        self.save_button.clicked.connect(lambda *_: self.save_model())
        viewer.dims.events.current_step.connect(self._follow_slider)
        self._init_plot()
        register_shortcut(viewer, "train", self.shortcut_train)
        register_shortcut(viewer, "stop", self.stop_tasks)
        apply_conventions(viewer)

    def _start_changed(self) -> None:
        """A trained model to start from fixes the network (and its class count)."""
        kind = self.start.choice()
        shipped = {DEFAULT2: 2, DEFAULT3: 3}
        if kind in shipped:
            self.n_classes.setCurrentIndex(self.n_classes.findData(shipped[kind]))
        fixed = kind in (DEFAULT2, DEFAULT3, TRAINED, FILE)
        for control in (self.width, self.dilations, self.n_classes):
            control.setEnabled(not fixed)

    def shortcut_train(self) -> None:
        """Alt+T: train, unless training already."""
        if not self.runner.busy:
            self.train()

    def stop_tasks(self) -> None:
        """Stop training (the best model so far is kept; the Alt+X shortcut)."""
        if self.runner.busy:
            self.runner.stop()

    # ----------------------------------------------------------------- plot

    def _init_plot(self) -> None:
        fig = self.plot.figure
        fig.clear()
        self.ax_loss = fig.add_subplot(111)
        self.ax_acc = self.ax_loss.twinx()
        self.ax_loss.set_xlabel("iteration")
        self.ax_loss.set_ylabel("training loss", color="tab:red")
        self.ax_acc.set_ylabel("validation accuracy", color="tab:blue")
        self.ax_acc.set_ylim(0, 1.02)
        (self.loss_line,) = self.ax_loss.plot(
            [], [], color="tab:red", lw=1.2, label="training loss"
        )
        (self.acc_line,) = self.ax_acc.plot(
            [], [], "o-", color="tab:blue", ms=3, lw=1.2, label="pixel accuracy"
        )
        (self.macc_line,) = self.ax_acc.plot(
            [], [], "s--", color="tab:cyan", ms=3, lw=1.0, label="mean class accuracy"
        )
        lines = [self.loss_line, self.acc_line, self.macc_line]
        self.ax_loss.legend(
            lines,
            [ln.get_label() for ln in lines],
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=3,
            fontsize="x-small",
            frameon=False,
        )
        self.plot.draw()

    def _update_plot(self) -> None:
        if self._loss:
            it, loss = zip(*self._loss)
            self.loss_line.set_data(it, loss)
        evals = [h for h in self.history if h.get("val_accuracy") is not None]
        if evals:
            its = [h["iteration"] for h in evals]
            self.acc_line.set_data(its, [h["val_accuracy"] for h in evals])
            self.macc_line.set_data(its, [h.get("val_mean_accuracy") or np.nan for h in evals])
        self.ax_loss.set_xlim(0, max(10, self.iterations.value()))
        self.ax_loss.relim()
        self.ax_loss.autoscale_view(scalex=False)
        self.plot.draw()

    # ----------------------------------------------------------------- training

    def _follow_slider(self, event=None) -> None:
        try:
            image = self.image.layer()
            if image is not None:
                self._preview_index = current_frame(self.viewer, image)
        except RuntimeError:  # widget deleted
            pass

    def config(self, checkpoint: Path | None = None, init: str | None = None):
        """The :class:`~napari_calcite_afm.train.TrainConfig` chosen in the widget
        (``init``: the model it starts from, see :func:`start_name`)."""
        from ...segmentation import MODEL_LEVEL_DEFAULTS, TrainConfig

        iterations = self.iterations.value()
        image = self.image.layer()
        levelling = (image.metadata or {}).get("levelling") if image is not None else None
        if levelling:
            # keep the user's levelling choices, but like the shipped models without the
            # final zero mean, so terraces sit at 0 nm whatever the pit area
            levelling = {**levelling, **MODEL_LEVEL_DEFAULTS}
        return TrainConfig(
            iterations=iterations,
            batch_size=self.batch.value() or None,  # "auto": TrainConfig's choice
            n_classes=int(self.n_classes.currentData()),
            architecture=NETWORKS[self.dilations.currentData()][0],
            width=self.width.value(),
            dilations=NETWORKS[self.dilations.currentData()][1],
            eval_every=max(5, min(50, iterations // 15)),
            level=levelling or None,
            checkpoint_path=None if checkpoint is None else str(checkpoint),
            threads=max(1, (os.cpu_count() or 2) - 1),  # leave a core to napari
            init=init,
        )

    @guarded
    def train(self):
        """Start training in a background thread (ignored while training runs)."""
        if self.runner.busy:
            notify_info("training is already running: press Stop to end it")
            return None
        image, labels_layer = self.image.layer(), self.labels.layer()
        if image is None or labels_layer is None:
            self.status.setText("choose an image and a labels layer first")
            return None
        images, labels, frames = training_pairs(image, labels_layer)
        start = _resolve_start(self.start.spec(), labels, int(self.n_classes.currentData()))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.checkpoint = cache_dir() / "models" / f"trained-{stamp}.pt"
        config = self.config(self.checkpoint, start_name(start))
        begun = "a new network" if start[0] == "new" else f"fine-tuning {start_name(start)}"
        self.history, self._loss, self.result = [], [], None
        self._init_plot()
        self.save_button.setEnabled(False)
        self._follow_slider()
        stack = layer_stack(image)
        live = self.live.isChecked()
        px = pixel_size_of(image)
        levelled_cache: dict[int, np.ndarray] = {}
        preview_name = f"{image.name} training preview"

        def work(progress, stop):
            from ...segmentation import predict_frame, train_model

            def monitor(model):
                # in the worker thread, at each validation: the checkpoints record the
                # training pixel size, and the viewed frame is segmented
                model.info.setdefault("pixel_size_nm", px)
                if live:
                    index = self._preview_index
                    if index not in levelled_cache:
                        levelled_cache[index] = model.level(stack[index])
                    now, _ = predict_frame(model, levelled_cache[index], levelled=True)
                    progress({"preview": now, "preview_frame": index})
                return {}

            initial = load_spec(start)  # None: a new network
            cfg = config
            if initial is not None:  # its class count (a file's, the model just trained's)
                cfg = dataclasses.replace(config, n_classes=initial.n_classes)
            return train_model(
                images, labels, cfg, init=initial, progress=progress, stop=stop, monitor=monitor
            )

        def report(info):
            if "preview" in info:
                from .segment import show_segmentation

                show_segmentation(
                    self.viewer,
                    image,
                    info["preview"][None],
                    [info["preview_frame"]],
                    name=preview_name,
                )
                return
            it = int(info.get("iteration", 0))
            if info.get("loss") is not None:
                self._loss.append((it, float(info["loss"])))
            evaluation = it % config.eval_every == 0 or it == info.get("n_iterations")
            if (
                info.get("val_accuracy") is not None
                and evaluation
                and (not self.history or self.history[-1]["iteration"] != it)
            ):
                self.history.append(dict(info))
            self._update_plot()
            acc = info.get("val_accuracy")
            self.status.setText(
                f"iteration {it}/{info.get('n_iterations')}"
                + (f", loss {info['loss']:.3f}" if info.get("loss") is not None else "")
                + (f", validation accuracy {acc:.3f}" if acc is not None else "")
                + f", {info.get('elapsed_s', 0):.0f} s"
            )

        def done(result):
            self._trained(result, px, frames, image.name, begun)

        return self.runner.start(
            work, on_done=done, on_progress=report, message=f"{begun} on frames {frames}…"
        )

    def _trained(self, result, px: float, frames: list[int], name: str, begun: str) -> None:
        """Keep a finished (or stopped) training's model and say what it is."""
        from ...segmentation.scale import record_training_pixel_sizes

        self.result = result
        before = dict(result.model.info)
        result.model.info["pixel_size_nm"] = px
        record_training_pixel_sizes(result.model, [px])  # and the range (fine-tuned: wider)
        if result.model.info != before and self.checkpoint is not None:
            if self.checkpoint.exists():
                result.model.save(self.checkpoint)  # the checkpoint records it too
        self.history = [dict(h) for h in result.history]
        self._update_plot()
        self.save_button.setEnabled(True)
        _state.set_trained(
            _state.TrainedModel(
                model=result.model,
                checkpoint=self.checkpoint,
                description=f"trained on {len(frames)} frame(s) of {name!r}",
                info={"best_val_accuracy": result.best_val_accuracy},
            )
        )
        how = "stopped" if result.stopped else "finished"
        last = result.history[-1]["iteration"] if result.history else None
        which = "best" if result.stopped or result.best_iteration != last else "final"
        self.status.setText(
            f"training ({begun}) {how} after {result.elapsed_s:.0f} s on {len(frames)} "
            f"labelled frame(s); validation accuracy {result.best_val_accuracy:.3f} at "
            f"iteration {result.best_iteration}. That {which} model is kept for Segment and "
            f"saved to {self.checkpoint}"
        )
        notify_info(f"model saved to {self.checkpoint} (use 'Save model…' to keep a copy)")

    # ----------------------------------------------------------------- saving

    @guarded
    def save_model(self, path: str | os.PathLike | None = None):
        """Save the trained model (``.pt``); asks for a file when ``path`` is None."""
        if self.result is None:
            self.status.setText("train a model first")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save model", str(Path.home() / "calcite-model.pt"), "Model (*.pt)"
            )
            if not path:
                return None
        out = self.result.model.save(path)
        self.status.setText(f"saved the model to {out}")
        return Path(str(out))
