"""Colour themes of the matplotlib figures: black on white, or matched to napari's.

The ``plot_*`` functions of :mod:`napari_calcite_afm.plotting` draw black on white
(:data:`LIGHT`, what the command line writes). :func:`apply_theme` recolours a drawn
figure to another :class:`PlotTheme`: the napari widgets build one from napari's theme
(dark by default) for their plots, and apply :data:`LIGHT` again before exporting.
Only matplotlib and numpy: no pyplot, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

__all__ = ["LIGHT", "PlotTheme", "apply_theme"]


@dataclass(frozen=True)
class PlotTheme:
    """The colours of a figure: its background, its text and axes, and two greys.

    Attributes
    ----------
    background : str
        Figure and axes background.
    text : str
        Text, axes, ticks and the model lines (black on white).
    hist : str
        Fill of the histograms.
    muted : str
        Secondary lines (the within-region part of g).

    Examples
    --------
    >>> PlotTheme.from_colors("#23242b", "#f0f1f2").background
    '#23242b'
    >>> LIGHT.text, LIGHT.hist
    ('black', '0.75')
    """

    background: str = "white"
    text: str = "black"
    hist: str = "0.75"
    muted: str = "0.35"

    @classmethod
    def from_colors(cls, background: str, text: str) -> PlotTheme:
        """A theme from a background and a text colour (the greys lie between them)."""
        bg, fg = np.array(to_rgba(background)[:3]), np.array(to_rgba(text)[:3])

        def mix(t: float) -> str:
            r, g, b = (bg + t * (fg - bg)).round(4)
            return f"#{round(255 * r):02x}{round(255 * g):02x}{round(255 * b):02x}"

        return cls(background=background, text=text, hist=mix(0.35), muted=mix(0.6))


#: Black on white: the figures the command line and the exports write.
LIGHT = PlotTheme()


def _same_color(a, b) -> bool:
    try:
        return bool(np.allclose(to_rgba(a), to_rgba(b), atol=2e-3))
    except (TypeError, ValueError):
        return False


def apply_theme(fig: Figure, theme: PlotTheme) -> Figure:
    """Recolour a drawn figure: background, text, axes, and the black and grey artists.

    Colours of the previous theme (and of :data:`LIGHT`, what the ``plot_*`` functions
    draw with) are replaced by the new theme's; other colours (the modes, the label
    colours, the images) are kept. Applying :data:`LIGHT` brings a figure back to black
    on white, e.g. before saving it.

    Examples
    --------
    >>> fig = Figure()
    >>> ax = fig.subplots()
    >>> (line,) = ax.plot([0, 1], [0, 1], color="k")
    >>> dark = PlotTheme.from_colors("#23242b", "#f0f1f2")
    >>> _ = apply_theme(fig, dark)
    >>> line.get_color(), fig.get_facecolor()[:3] == to_rgba("#23242b")[:3]
    ('#f0f1f2', True)
    >>> _ = apply_theme(fig, LIGHT)
    >>> line.get_color()
    'black'
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.spines import Spine
    from matplotlib.text import Text

    old = getattr(fig, "_calcite_theme", LIGHT)
    swaps = [
        ((LIGHT.text, old.text), theme.text),
        ((LIGHT.hist, old.hist), theme.hist),
        ((LIGHT.muted, old.muted), theme.muted),
    ]

    def swap(color):
        for olds, new in swaps:
            if any(_same_color(color, o) for o in olds):
                return new
        return None

    fig.set_facecolor(theme.background)
    for ax in fig.axes:
        ax.set_facecolor(theme.background)
        for spine in ax.spines.values():
            spine.set_edgecolor(theme.text)
        ax.tick_params(which="both", colors=theme.text)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(theme.background)
    for text in fig.findobj(Text):
        if (new := swap(text.get_color())) is not None:
            text.set_color(new)
    for line in fig.findobj(Line2D):
        if (new := swap(line.get_color())) is not None:
            line.set_color(new)
    axes_patches = [ax.patch for ax in fig.axes]
    for patch in fig.findobj(Patch):
        if isinstance(patch, Spine) or patch is fig.patch or patch in axes_patches:
            continue
        if patch.get_fill() and (new := swap(patch.get_facecolor())) is not None:
            patch.set_facecolor(new)
    fig._calcite_theme = theme
    return fig
