"""Warn when a model meets heights of another scale than the frames it was trained on.

A segmentation network learns pit edges and terrace roughness at its training pixel
size: the shipped models at 11.7 nm per pixel, while high-speed AFM movies are often
0.5 nm per pixel. :func:`pixel_size_warning` says so, and what to do, when the image's
pixel size differs from the model's by more than a factor of two. The one-click
pipeline emits it as a Python warning and records it in the summary JSON, the CLI prints
it on one line, and the Segment and one-click widgets show it as a napari warning.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED_PIXEL_SIZE_NM", "model_pixel_size", "movie_words", "pixel_size_warning"]

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
    >>> print(pixel_size_warning(model, 0.5))  # doctest: +NORMALIZE_WHITESPACE
    the model was trained on frames of 11.7 nm per pixel, but the image has 0.5 nm per
    pixel (23.4 times finer): it will judge pits and terraces at the wrong scale. Resample
    the image to about 11.7 nm per pixel (e.g. Gwyddion's Scale), or train a model on your
    own frames (Labels, then Train).
    """
    trained, assumed = model_pixel_size(model)
    px = float(pixel_size_nm)
    if trained is None or not px > 0:
        return None
    ratio = max(trained / px, px / trained)
    if ratio <= factor:
        return None
    how = "finer" if px < trained else "coarser"
    note = " (the shipped models' training scale; the file does not record it)" if assumed else ""
    return (
        f"the model was trained on frames of {trained:.3g} nm per pixel{note}, but {what} "
        f"has {px:.3g} nm per pixel ({ratio:.1f} times {how}): it will judge pits and "
        f"terraces at the wrong scale. Resample {what} to about {trained:.3g} nm per pixel "
        "(e.g. Gwyddion's Scale), or train a model on your own frames (Labels, then Train)."
    )


def movie_words(source) -> str:
    """How a warning names a movie: its file or folder name, else "the movie".

    Examples
    --------
    >>> movie_words("/data/hs.tif"), movie_words(None)
    ("'hs.tif'", 'the movie')
    """
    return f"{Path(source).name!r}" if source else "the movie"
