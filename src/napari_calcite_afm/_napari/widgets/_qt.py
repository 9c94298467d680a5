"""Small Qt pieces shared by the dock widgets.

- :class:`LayerChooser`: a magicgui ``ComboBox`` of the viewer's layers of some types,
  kept in sync with the layer list;
- :class:`MplCanvas`: an embedded matplotlib figure in the colours of napari's theme
  (dark by default; :func:`plot_theme_of` turns a napari theme into a
  :class:`~napari_calcite_afm.plot_theme.PlotTheme`), saved black on white;
- :func:`form_layout`, :func:`run_row`, :func:`class_legend`, :func:`progress_bar` and
  :func:`status_label`: the rows every widget is made of.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import ComboBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ...labels import LABEL_COLORS, LABEL_NAMES
from ..layers import is_layer_type

__all__ = [
    "LayerChooser",
    "MplCanvas",
    "class_legend",
    "form_layout",
    "plot_theme_of",
    "progress_bar",
    "run_row",
    "status_label",
]


class LayerChooser(ComboBox):
    """A combo box of the viewer's layers of some types, refreshed as layers change.

    A magicgui :class:`~magicgui.widgets.ComboBox` whose choices are the layers
    themselves (shown by name): put :attr:`native` in a Qt layout and connect to
    :attr:`changed`. When the chosen layer goes, the newest (top) layer of the types
    is chosen.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    layer_types : str or sequence of str
        ``"image"``, ``"labels"``.
    allow_none : bool
        Offer a first empty entry (for optional layers).
    """

    null_string = ""  # the empty entry of an optional layer

    def __init__(self, viewer, layer_types: str | Sequence[str], allow_none: bool = False):
        super().__init__(nullable=allow_none)
        self._viewer = viewer
        self._types = (layer_types,) if isinstance(layer_types, str) else tuple(layer_types)
        self._default_choices = self._layer_choices
        self.native.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.native.setMinimumContentsLength(12)
        events = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered", "renamed"):
            emitter = getattr(events, name, None)
            if emitter is not None:
                emitter.connect(self._on_layers_changed)
        self.refresh()

    def _layer_choices(self, widget=None) -> list[tuple[str, object]]:
        return [(layer.name, layer) for layer in self.layers()]

    def _on_layers_changed(self, event=None) -> None:
        try:
            self.refresh()
        except RuntimeError:  # the Qt object is gone (viewer closing)
            pass

    def layers(self) -> list:
        """The viewer's layers of the chooser's types, bottom to top."""
        return [
            layer
            for layer in self._viewer.layers
            if any(is_layer_type(layer, t) for t in self._types)
        ]

    def refresh(self) -> None:
        """Re-read the layer list, keeping the current choice when it still exists."""
        current = self.value
        with self.changed.blocked():
            self.reset_choices()
            layers = [layer for _, layer in self._layer_choices()]
            if current is not None and any(layer == current for layer in layers):
                self.value = current
            elif current is None and self._nullable:
                self.native.setCurrentIndex(0)  # the empty entry stays chosen
            elif layers:
                # prefer the newest (top) layer of that type
                self.value = layers[-1]
            else:
                self.native.setCurrentIndex(0 if self._nullable else -1)
        if self.value != current:
            self.changed.emit(self.value)

    def layer(self):
        """The chosen layer, or ``None``."""
        layer = self.value
        if layer is not None and layer in self._viewer.layers:
            return layer
        return None

    def set_layer(self, layer_or_name) -> None:
        """Choose a layer (or the layer of that name)."""
        name = str(getattr(layer_or_name, "name", layer_or_name))
        self.refresh()
        for choice_name, layer in self._layer_choices():
            if choice_name == name:
                self.value = layer
                return


def plot_theme_of(viewer=None):
    """The plot colours of a viewer's napari theme (its background and text colours).

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> theme = plot_theme_of(ViewerModel())  # napari's default theme is dark
    >>> theme.background, theme.text
    ('#23242b', '#f0f1f2')
    """
    from napari.utils.theme import get_theme

    from ...plot_theme import PlotTheme

    name = getattr(viewer, "theme", None) or "dark"
    try:
        theme = get_theme(name)
    except (KeyError, ValueError):
        theme = get_theme("dark")
    return PlotTheme.from_colors(theme.background.as_hex(), theme.text.as_hex())


class MplCanvas(QWidget):
    """A matplotlib figure in a Qt widget (with the zoom/save toolbar if ``toolbar``).

    The figure takes the colours of the viewer's napari theme (dark by default) at
    every :meth:`draw` and when the theme changes; :meth:`savefig` writes it black on
    white, as the command line's figures.

    Parameters
    ----------
    width, height : float
        Figure size in inches (the canvas is at least ``60 * height`` pixels high).
    toolbar : bool
        Show matplotlib's navigation toolbar above the figure.
    viewer : napari.viewer.Viewer, optional
        Whose theme to follow (without one: napari's dark theme).
    """

    def __init__(self, width: float = 4.0, height: float = 3.0, toolbar: bool = False, viewer=None):
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(width, height), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.canvas.setMinimumHeight(int(height * 60))
        self._viewer = viewer
        self.theme = plot_theme_of(viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if toolbar:
            from matplotlib.backends.backend_qtagg import NavigationToolbar2QT

            layout.addWidget(NavigationToolbar2QT(self.canvas, self))
        layout.addWidget(self.canvas)
        events = getattr(viewer, "events", None)
        if events is not None and hasattr(events, "theme"):
            events.theme.connect(self._on_theme)

    def _on_theme(self, event=None) -> None:
        try:
            self.theme = plot_theme_of(self._viewer)
            self.draw()
        except RuntimeError:  # the Qt object is gone (viewer closing)
            pass

    def draw(self) -> None:
        """Recolour the figure to the theme and redraw it when Qt is idle."""
        from ...plot_theme import apply_theme

        apply_theme(self.figure, self.theme)
        self.canvas.draw_idle()

    def savefig(self, path, **kwargs) -> None:
        """Save the figure black on white (the theme comes back on screen)."""
        from ...plot_theme import LIGHT, apply_theme

        apply_theme(self.figure, LIGHT)
        try:
            self.figure.savefig(path, **kwargs)
        finally:
            apply_theme(self.figure, self.theme)


def form_layout() -> QFormLayout:
    """A form of right-aligned labels and growing fields."""
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignRight)
    return form


def run_row(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side (e.g. a Run and a Stop button)."""
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row


def class_legend(n_classes: int = 3) -> QLabel:
    """A one-line legend of the fixed label colours (as the Labels layers draw them)."""
    parts = []
    for value in range(1, n_classes + 1):
        r, g, b, _ = (round(255 * v) for v in LABEL_COLORS[value])
        parts.append(
            f'<span style="color: rgb({r},{g},{b}); font-size: 14pt;">&#9632;</span>&nbsp;'
            f"{LABEL_NAMES[value]}"
        )
    label = QLabel("&nbsp;&nbsp; ".join(parts))
    label.setWordWrap(True)
    return label


def progress_bar() -> QProgressBar:
    """A hidden progress bar (shown by :meth:`~._tasks.TaskRunner.start`)."""
    bar = QProgressBar()
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setTextVisible(True)
    bar.setVisible(False)  # shown by TaskRunner.start
    return bar


def rate_smooth_box() -> QDoubleSpinBox:
    """The Gaussian smoothing of the rate maps, pixels (0, the default: none)."""
    box = QDoubleSpinBox()
    box.setRange(0.0, 50.0)
    box.setDecimals(1)
    box.setSingleStep(0.5)
    box.setSuffix(" px")
    box.setToolTip(
        "Gaussian smoothing of the dissolution-rate maps, pixels (0: none, each pixel's "
        "rate; 0.5-1 averages the noise of the heights)"
    )
    return box


def status_label(text: str = "") -> QLabel:
    """A wrapping, selectable one-line status."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label


def output_folder(parent: QWidget, line, folder=None) -> str | None:
    """The output folder: ``folder``, else the text of ``line``, else one the user picks.

    Returns None when the user cancels the dialog; a picked folder is written into
    ``line`` (a ``QLineEdit``).
    """
    folder = folder or line.text().strip()
    if not folder:
        folder = QFileDialog.getExistingDirectory(parent, "Output folder")
        if not folder:
            return None
        line.setText(str(folder))
    return str(folder)


def dock_plugin_widget(viewer, plugin: str, name: str, factory):
    """Dock (or reuse) the plugin's widget ``name``; ``factory(viewer)`` where napari cannot.

    Returns the widget itself (unwrapped).
    """
    try:
        _, widget = viewer.window.add_plugin_dock_widget(plugin, name)
    except Exception as exc:  # plugin not registered (e.g. a bare viewer in scripts)
        from ._tasks import notify_warning

        notify_warning(f"could not dock the {name} widget through napari: {exc}")
        widget = factory(viewer)
        viewer.window.add_dock_widget(widget, name=name)
    return getattr(widget, "__wrapped__", widget)
