"""The embedded sample data: a small synthetic calcite dissolution movie with labels.

The files live in the repository's ``sample_data/`` folder (with the script that made
them) and are shipped inside the package, so the napari sample menu, ``calcite-afm demo``
and the tutorials work without a download.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_IMAGE", "SAMPLE_LABELS", "sample_paths", "load_sample"]

SAMPLE_IMAGE = "calcite_series.tif"
SAMPLE_LABELS = "calcite_labels.tif"


def sample_paths() -> tuple[Path, Path]:
    """Paths of the sample image stack and its ground-truth labels.

    Returns
    -------
    tuple of pathlib.Path
        ``(image, labels)``: float32 heights in nm (10 frames of 256 x 256 pixels) and
        uint8 labels (1 multilayer pit, 2 terrace, 3 monolayer pit), ImageJ TIFF.

    Examples
    --------
    >>> image, labels = sample_paths()
    >>> image.name, labels.name, image.exists()
    ('calcite_series.tif', 'calcite_labels.tif', True)
    """
    folder = resources.files("napari_calcite_afm") / "sample_data"
    return Path(str(folder / SAMPLE_IMAGE)), Path(str(folder / SAMPLE_LABELS))


def load_sample():
    """Read the sample stack and labels.

    Returns
    -------
    stack : napari_calcite_afm.io.AFMStack
        Raw heights in nm, with tilt, bow, scan-line offsets, scars, noise and drift.
    labels : numpy.ndarray
        uint8 ground-truth labels ``(frames, rows, cols)`` that pair pixel by pixel with
        the raw frames.

    Examples
    --------
    >>> stack, labels = load_sample()
    >>> stack.heights.shape, labels.shape, labels.dtype.name
    ((10, 256, 256), (10, 256, 256), 'uint8')
    >>> round(stack.pixel_size_nm, 3) > 0
    True
    """
    from .io import read_labels, read_stack

    image_path, labels_path = sample_paths()
    stack = read_stack(image_path)
    labels = read_labels(labels_path, shape=stack.heights.shape)
    return stack, np.asarray(labels, dtype=np.uint8)
