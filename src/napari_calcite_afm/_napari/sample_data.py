"""napari sample data: the synthetic calcite dissolution movie and its labels.

Registered in ``napari.yaml`` (File > Open Sample > Calcite AFM) as
``calcite_dissolution``.
"""

from __future__ import annotations

from ..data import load_sample
from .layers import image_layer_kwargs, labels_layer_kwargs
from .reader import _follow_viewer

__all__ = ["make_sample_data"]


def make_sample_data() -> list[tuple]:
    """The sample time series (raw heights, nm) and its ground-truth labels.

    Returns
    -------
    list of tuple
        ``(heights, kwargs, "image")`` and ``(labels, kwargs, "labels")``, both
        ``(frames, rows, cols)`` with the pixel size in nm as ``scale`` and the time
        axis in seconds (one frame every 300 s). The viewer gets its scale bar and
        the colorbar "height (nm)".

    Examples
    --------
    >>> (heights, image_kwargs, _), (labels, _, kind) = make_sample_data()
    >>> heights.shape == labels.shape, heights.dtype, kind
    (True, dtype('float32'), 'labels')
    """
    stack, labels = load_sample()
    meta = {"source": str(stack.source), "frame_times_s": None}
    if stack.frame_times_s is not None:
        meta["frame_times_s"] = [float(t) for t in stack.frame_times_s]
    image = (
        stack.heights,
        image_layer_kwargs(stack.heights, stack.pixel_size_nm, "calcite (synthetic)", meta),
        "image",
    )
    timed = {"frame_times_s": meta["frame_times_s"]}
    truth = (
        labels,
        labels_layer_kwargs(labels, stack.pixel_size_nm, "ground truth labels", timed),
        "labels",
    )
    _follow_viewer()
    return [image, truth]
