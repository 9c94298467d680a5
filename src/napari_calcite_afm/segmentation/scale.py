"""Warn when a model meets heights of another scale than the frames it was trained on.

A segmentation network learns pit edges and terrace roughness at its training pixel
size: the shipped models at 11.7 nm per pixel, while high-speed AFM movies are often
0.5 nm per pixel. :func:`pixel_size_warning` says so, and what to do, when the image's
pixel size differs from the model's by more than a factor of two. A model trained on
frames of several pixel sizes records their range (``info["pixel_size_range_nm"]``,
:func:`model_pixel_size_range`): inside it nothing is said, and the factor of two applies
beyond its ends. The one-click pipeline emits the warning as a Python warning and records
it in the summary JSON, the CLI prints it on one line, and the Segment and one-click
widgets show it as a napari warning. :func:`record_training_pixel_sizes` writes the
record into a model after training. :func:`height_unit_warning` says when the channel
read holds something else than heights in nm (a tip current, a phase).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "SHIPPED_PIXEL_SIZE_NM",
    "height_unit_warning",
    "model_pixel_size",
    "model_pixel_size_range",
    "movie_words",
    "pixel_size_warning",
    "record_training_pixel_sizes",
]

#: Pixel size (nm) of the synthetic frames the shipped models were trained on.
SHIPPED_PIXEL_SIZE_NM = 11.7


def _is_shipped(model) -> bool:
    from ..segmentation import DEFAULT_MODEL_FILES, default_model_path

    source = getattr(model, "source", None)
    if not source:
        return False
    try:
        folder = default_model_path(2).resolve().parent
        return Path(source).resolve().parent == folder and (
            Path(source).name in DEFAULT_MODEL_FILES.values()
        )
    except OSError:
        return False


def model_pixel_size(model) -> tuple[float | None, bool]:
    """The training pixel size of ``model`` (nm) and whether it is assumed.

    It is ``model.info["pixel_size_nm"]`` when the model records it (the shipped models
    and those trained in the Train widget do); for a shipped model file that does not,
    11.7 nm (assumed); otherwise None.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model_pixel_size(SimpleNamespace(info={"pixel_size_nm": 0.5}, source=None))
    (0.5, False)
    >>> model_pixel_size(SimpleNamespace(info={}, source=None))
    (None, False)
    """
    info = getattr(model, "info", None) or {}
    try:
        value = float(info.get("pixel_size_nm"))
        if value > 0:
            return value, False
    except (TypeError, ValueError):
        pass
    if _is_shipped(model):
        return SHIPPED_PIXEL_SIZE_NM, True
    return None, False


def _range_of(value) -> tuple[float, float] | None:
    """``(lo, hi)`` from a ``[lo, hi]`` record, or None when it is not one."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (0 < lo <= hi < float("inf")):
        return None
    return lo, hi


def model_pixel_size_range(model) -> tuple[float, float] | None:
    """The smallest and largest training pixel size of ``model``, nm (None: unknown).

    ``model.info["pixel_size_range_nm"]`` when the model records it (models trained on
    frames of several pixel sizes, e.g. ``scripts/train_default_model.py --generator
    wide``), else the single size of :func:`model_pixel_size` twice.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model_pixel_size_range(SimpleNamespace(info={"pixel_size_range_nm": [2, 20]}))
    (2.0, 20.0)
    >>> model_pixel_size_range(SimpleNamespace(info={"pixel_size_nm": 11.7}, source=None))
    (11.7, 11.7)
    """
    info = getattr(model, "info", None) or {}
    span = _range_of(info.get("pixel_size_range_nm"))
    if span is not None:
        return span
    px, _ = model_pixel_size(model)
    return None if px is None else (px, px)


def record_training_pixel_sizes(model, pixel_sizes_nm) -> None:
    """Record in ``model.info`` the pixel sizes of the frames it was trained on.

    ``pixel_size_nm`` (the median, unless the model already records one) and
    ``pixel_size_range_nm`` (smallest and largest). A model fine-tuned from another
    (``info["fine_tuned_from"]``) keeps what that one learnt: its range widens to
    include the initial model's.

    Parameters
    ----------
    model : SegmentationModel
        The model just trained.
    pixel_sizes_nm : sequence of float
        Pixel size of each training movie or frame, nm (non-positive values ignored).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(info={"fine_tuned_from": {"pixel_size_range_nm": [2, 20]}})
    >>> record_training_pixel_sizes(model, [30.0])
    >>> model.info["pixel_size_nm"], model.info["pixel_size_range_nm"]
    (30.0, [2.0, 30.0])
    """
    values = [float(v) for v in pixel_sizes_nm if v is not None and float(v) > 0]
    if not values:
        return
    info = model.info
    info.setdefault("pixel_size_nm", float(np.median(values)))
    lo, hi = min(values), max(values)
    before = _range_of((info.get("fine_tuned_from") or {}).get("pixel_size_range_nm"))
    if before is not None:
        lo, hi = min(lo, before[0]), max(hi, before[1])
    info["pixel_size_range_nm"] = [lo, hi]


def pixel_size_warning(
    model, pixel_size_nm: float, what: str = "the image", factor: float = 2.0
) -> str | None:
    """The warning for ``model`` applied to heights of ``pixel_size_nm``, or None.

    Parameters
    ----------
    model : SegmentationModel
        The model about to segment.
    pixel_size_nm : float
        The image's pixel size, nm.
    what : str
        The image, in words (e.g. ``"layer 'movie'"``).
    factor : float
        Warn when the pixel sizes differ by more than this factor.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(info={"pixel_size_nm": 11.7}, source=None)
    >>> pixel_size_warning(model, 10.0) is None
    True
    >>> wide = SimpleNamespace(info={"pixel_size_range_nm": [2.0, 20.0]}, source=None)
    >>> pixel_size_warning(wide, 5.0) is None, pixel_size_warning(wide, 39.0) is None
    (True, True)
    >>> pixel_size_warning(wide, 0.5)[:70]
    'the model was trained on frames of 2 to 20 nm per pixel, but the image'
    >>> print(pixel_size_warning(model, 0.5))  # doctest: +NORMALIZE_WHITESPACE
    the model was trained on frames of 11.7 nm per pixel, but the image has 0.5 nm per
    pixel (23.4 times finer): it will judge pits and terraces at the wrong scale. Resample
    the image to about 11.7 nm per pixel (e.g. Gwyddion's Scale), or train a model on your
    own frames (Labels, then Train).
    """
    trained, assumed = model_pixel_size(model)
    span = _range_of((getattr(model, "info", None) or {}).get("pixel_size_range_nm"))
    px = float(pixel_size_nm)
    if (trained is None and span is None) or not px > 0:
        return None
    lo, hi = span if span is not None else (trained, trained)
    ratio = lo / px if px < lo else px / hi
    if ratio <= factor:
        return None
    how = "finer" if px < lo else "coarser"
    if lo == hi:
        note = " (the shipped models' training scale; the file does not record it)"
        return (
            f"the model was trained on frames of {lo:.3g} nm per pixel{note if assumed else ''}"
            f", but {what} has {px:.3g} nm per pixel ({ratio:.1f} times {how}): it will judge "
            f"pits and terraces at the wrong scale. Resample {what} to about {lo:.3g} nm per "
            "pixel (e.g. Gwyddion's Scale), or train a model on your own frames (Labels, then "
            "Train)."
        )
    end = "finest" if px < lo else "coarsest"
    return (
        f"the model was trained on frames of {lo:.3g} to {hi:.3g} nm per pixel, but {what} "
        f"has {px:.3g} nm per pixel ({ratio:.1f} times {how} than the {end}): it will judge "
        f"pits and terraces at the wrong scale. Resample {what} to {lo:.3g}-{hi:.3g} nm per "
        "pixel (e.g. Gwyddion's Scale), or fine-tune the model on your own frames (Labels, "
        "then Train)."
    )


def movie_words(source) -> str:
    """How a warning names a movie: its file or folder name, else "the movie".

    Examples
    --------
    >>> movie_words("/data/hs.tif"), movie_words(None)
    ("'hs.tif'", 'the movie')
    """
    return f"{Path(source).name!r}" if source else "the movie"


def height_unit_warning(z_unit: str | None, channel: str | None, what: str = "the image"):
    """The warning for a channel that does not hold heights in nm, or None.

    The segmentation models, the levelling and the height statistics expect heights in
    nm. A vendor file's other channels (tip current in A, phase in degrees, amplitude or
    deflection in V) are read as they are and keep their unit in ``metadata["z_unit"]``;
    segmenting them gives labels without meaning.

    Parameters
    ----------
    z_unit : str or None
        Unit of the values (the reader's ``metadata["z_unit"]``): ``"nm"`` for heights,
        ``"unknown"`` where the file does not say, None for plain arrays (not judged).
    channel : str or None
        Name of the channel that was read.
    what : str
        The image, in words (e.g. ``"'scan.mdt'"``).

    Examples
    --------
    >>> height_unit_warning("nm", "height") is None, height_unit_warning(None, None) is None
    (True, True)
    >>> print(height_unit_warning("A", "Iprobe", "'scan.mdt'"))  # doctest: +NORMALIZE_WHITESPACE
    channel 'Iprobe' of 'scan.mdt' holds values in A, not heights in nm: the segmentation
    and the height statistics expect heights. Choose a height channel (--channel, or the
    channel list of the Clean widget).
    """
    unit = None if z_unit is None else str(z_unit).strip()
    if not unit or unit == "nm":
        return None
    name = f"channel {channel!r} of {what}" if channel else what
    held = "values of an unknown unit" if unit.lower() == "unknown" else f"values in {unit}"
    return (
        f"{name} holds {held}, not heights in nm: the segmentation and the height "
        "statistics expect heights. Choose a height channel (--channel, or the channel list "
        "of the Clean widget)."
    )
