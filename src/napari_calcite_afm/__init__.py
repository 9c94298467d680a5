"""napari-calcite-afm: segment and model AFM movies of dissolving calcite.

The science lives in plain-Python packages (no Qt, no napari), one per stage:

- :mod:`napari_calcite_afm.io` reads AFM stacks (vendor files, TIFF, .npy) and writes TIFF;
- :mod:`napari_calcite_afm.level` removes measurement artifacts;
- :mod:`napari_calcite_afm.synthetic` generates calcite dissolution movies with ground truth;
- :mod:`napari_calcite_afm.segmentation` holds the networks, their training and inference;
- :mod:`napari_calcite_afm.stats` fits the multimodal Gaussian model;
- :mod:`napari_calcite_afm.pipeline` runs the one-click segment-and-fit, and
  :mod:`~napari_calcite_afm.outputs` writes its tables and figures;
- :mod:`napari_calcite_afm.errors` and :mod:`~napari_calcite_afm.labels` are shared by all.

The napari layer (``_napari``: reader, writer, sample data, widgets) and the command
line (``cli``) are thin shells over these.
"""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - source tree without a build
    try:
        from importlib.metadata import version as _v

        __version__ = _v("napari-calcite-afm")
    except Exception:
        __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
