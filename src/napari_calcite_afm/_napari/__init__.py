"""The napari layer of the plugin: the only place that uses napari and Qt.

The modules are registered in ``napari.yaml``; the science lives in the core modules
(:mod:`napari_calcite_afm.io`, ``level``, ``predict``, ``stats``...), these only turn
it into layers and dock widgets:

========================  =========================================================
:mod:`.reader`            ``napari_get_reader``: what is clearly AFM data
:mod:`.writer`            label and image layers to TIFF, pixel size in nm
:mod:`.sample_data`       the synthetic calcite dissolution movie and its labels
:mod:`.layers`            the keyword arguments of the layers, and reading them back
:mod:`.conventions`       scale bar, labelled height colorbar, one time axis per movie
:mod:`.channels`          the channel chosen for each file, remembered
:mod:`.pixel_size`        the warning for a model meeting another pixel size
:mod:`.widgets`           the dock widgets (Clean, Labels, Train, Segment, ...)
========================  =========================================================

Importing this package imports neither napari nor Qt (the reader, writers and sample
data import napari only when napari calls them).
"""
