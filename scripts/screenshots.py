"""Screenshots of the dock widgets for the documentation.

Run under a virtual display (napari's canvas needs OpenGL)::

    xvfb-run -a python scripts/screenshots.py [--out docs/images] [--iterations 200]

It opens napari, loads the sample movie (``data.load_sample()``), and docks each widget
in a realistic state: Clean with the preview, Labels with a few brush strokes, Train
after a short training, Segment with the masks over the movie, Statistics (both tabs),
the one-click run and its kinetics. Each is saved as ``docs/images/widget-<name>.png``.
The viewer shows what the plugin sets up: the time axis in seconds, the scale bar in nm, the
colorbar "height (nm)", and plots in napari's (dark) theme.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

PLUGIN = "napari-calcite-afm"
ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, timeout: float = 600.0, what: str = "") -> None:
    """Process Qt events until ``condition()`` is true."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    start = time.time()
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.time() - start > timeout:
            raise TimeoutError(f"timed out waiting for {what or condition}")
    settle(0.3)


def settle(seconds: float = 0.5) -> None:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


class Shooter:
    """Docks one widget at a time and saves the window."""

    def __init__(self, viewer, out: Path, dock_width: int = 470):
        self.viewer = viewer
        self.out = out
        self.dock_width = dock_width
        self.dock = None

    def show(self, display_name: str):
        from qtpy.QtCore import Qt

        if self.dock is not None:
            self.viewer.window.remove_dock_widget(self.dock)
        dock, widget = self.viewer.window.add_plugin_dock_widget(PLUGIN, display_name)
        self.dock = dock
        qt_window = self.viewer.window._qt_window
        qt_window.resizeDocks([dock], [self.dock_width], Qt.Horizontal)
        settle(0.5)
        self.viewer.reset_view()
        return getattr(widget, "__wrapped__", widget)

    def save(self, name: str) -> Path:
        settle(0.8)
        path = self.out / f"widget-{name}.png"
        self.viewer.screenshot(path=str(path), canvas_only=False, flash=False)
        print(f"wrote {path}")
        return path


def strokes(truth: np.ndarray, frames=(0, 5, 9), per_class: int = 4, seed: int = 1) -> np.ndarray:
    """A few short brush scribbles inside pits and on terraces, as a user paints them.

    Each scribble is a random walk of a 3-pixel brush, kept well inside one class of the
    ground truth (eroded by 6 pixels, so small registration shifts do not matter).
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    out = np.zeros_like(truth)
    n, rows, cols = truth.shape
    for t in frames:
        if t >= n:
            continue
        for value in (1, 2):
            classes = (2, 3) if value == 2 else (1,)
            inside = ndimage.binary_erosion(np.isin(truth[t], classes), iterations=6)
            points = np.argwhere(inside)
            if not len(points):
                continue
            for _ in range(per_class):
                r, c = points[rng.integers(len(points))].astype(float)
                heading = rng.uniform(0, 2 * np.pi)
                for _ in range(rng.integers(25, 60)):
                    heading += rng.normal(0, 0.25)
                    r2, c2 = r + 1.5 * np.sin(heading), c + 1.5 * np.cos(heading)
                    ri, ci = round(r2), round(c2)
                    if not (0 <= ri < rows and 0 <= ci < cols) or not inside[ri, ci]:
                        heading += np.pi / 2
                        continue
                    r, c = r2, c2
                    out[t, max(ri - 1, 0) : ri + 2, max(ci - 1, 0) : ci + 2] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--size", default="1560x980", help="window size WxH")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NAPARI_CALCITE_AFM_CACHE", str(Path.home() / ".cache" / "calcite-shots"))

    import napari
    from napari.settings import get_settings

    # no toasts over the canvas (e.g. the PyQt5 deprecation warning)
    get_settings().application.gui_notification_level = "error"

    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets._model_chooser import DEFAULT2
    from napari_calcite_afm.data import load_sample

    stack, truth = load_sample()
    viewer = napari.Viewer(title="napari-calcite-afm", show=True)
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window._qt_window.resize(width, height)
    meta = {
        "source": None,
        "frame_times_s": None
        if stack.frame_times_s is None
        else [float(t) for t in stack.frame_times_s],
    }
    name = "calcite movie"
    raw = viewer.add_image(
        stack.heights, **image_layer_kwargs(stack.heights, stack.pixel_size_nm, name, meta)
    )
    viewer.dims.set_current_step(0, 5)
    viewer.reset_view()
    shots = Shooter(viewer, out)

    # 1. Clean: the preview of the current frame, then the whole stack
    clean = shots.show("Clean (levelling & drift)")
    clean.preview.setChecked(True)
    clean.update_preview()
    wait_for(lambda: f"{name} preview" in viewer.layers, what="preview")
    clean.apply()
    wait_for(lambda: not clean.runner.busy, what="levelling")
    cleaned = viewer.layers[f"{name} cleaned"]
    clean.preview.setChecked(False)
    viewer.layers.remove(f"{name} preview")
    # raw (left) and cleaned (right) side by side
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 2)
    viewer.grid.spacing = 0.05
    viewer.reset_view()
    shots.save("clean")
    viewer.grid.enabled = False
    raw.visible = False

    # 2. Labels: a few strokes on three frames of the cleaned movie
    labels_widget = shots.show("Labels")
    labels_widget.image.set_layer(cleaned)
    painted = labels_widget.create_labels(restore=False)
    painted.data = strokes(truth)
    labels_widget.autosave_now()
    labels_widget.set_class(1)
    viewer.layers.selection.active = painted
    shots.save("labels")

    # 3. Train on the strokes (the live prediction is drawn under the strokes)
    train = shots.show("Train")
    train.image.set_layer(cleaned)
    train.labels.set_layer(painted)
    train.iterations.setValue(args.iterations)
    train.live.setChecked(True)
    train.train()
    wait_for(lambda: not train.runner.busy, timeout=1800, what="training")
    preview = viewer.layers[f"{cleaned.name} training preview"]
    preview.opacity = 0.35
    painted.opacity = 0.9
    viewer.layers.move(viewer.layers.index(painted), len(viewer.layers))
    shots.save("train")

    # 4. Segment the cleaned movie with the shipped model (a few strokes on three frames
    #    train a preview, not a model to judge the segmentation by)
    preview.visible = painted.visible = False
    segment = shots.show("Segment")
    segment.image.set_layer(cleaned)
    segment.model.kind.setCurrentIndex(segment.model.kind.findData(DEFAULT2))
    segment.show_uncertainty.setChecked(True)
    segment.segment("all")
    wait_for(lambda: not segment.runner.busy, what="segmentation")
    masks = viewer.layers[f"{cleaned.name} segmentation"]
    viewer.layers[f"{cleaned.name} uncertainty"].visible = False
    viewer.layers.selection.active = masks
    shots.save("segment")

    # 5. Statistics of the cleaned movie and its segmentation (masks as outlines)
    masks.contour = 1
    masks.opacity = 1.0
    stats = shots.show("Statistics")
    stats.image.set_layer(cleaned)
    stats.labels.set_layer(masks)
    stats.update_frame()
    wait_for(lambda: stats.fit is not None and not stats.frame_runner.busy, what="frame fit")
    shots.save("statistics")
    stats.fit_all()
    wait_for(lambda: not stats.runner.busy, what="fits over time")
    shots.save("statistics-time")

    # 6. One click from the raw movie
    for layer in list(viewer.layers):
        if layer is not raw:
            viewer.layers.remove(layer)
    raw.visible = True
    oneclick = shots.show("Segment and fit (one click)")
    oneclick.image.set_layer(raw)
    oneclick.model.kind.setCurrentIndex(oneclick.model.kind.findData(DEFAULT2))
    oneclick.run()
    wait_for(lambda: not oneclick.runner.busy, what="one-click run")
    raw.visible = False
    shots.save("oneclick")

    # 7. Kinetics of that run (docked by the one-click widget): the rate map of a frame
    #    pair, the pit tracks and one pit's area and depth against time
    kinetics = shots.show("Kinetics")
    if kinetics.result is not None and kinetics.result.tracks.tracks:
        rates = kinetics.layers.get("rates")
        if rates is not None:
            rates.visible = True
        longest = max(kinetics.result.tracks.tracks, key=lambda t: t["n_frames"])
        kinetics.table.select_track(int(longest["track_id"]))
        viewer.dims.set_current_step(0, 5)
        shots.save("kinetics")

    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
