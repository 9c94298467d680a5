"""The napari layer of the plugin: the only place that uses napari and Qt.

The modules are registered in ``napari.yaml``; the science lives in the core modules
(:mod:`napari_calcite_afm.io`, ``level``, ``predict``, ``stats``...), these only turn
it into layers and dock widgets:

========================  =========================================================
:mod:`.reader`            ``napari_get_reader``: every AFM format ``io`` reads
:mod:`.writer`            label and image layers to TIFF, pixel size in nm
:mod:`.sample_data`       the synthetic calcite dissolution movie and its labels
:mod:`.layers`            the keyword arguments of the layers, and reading them back
:mod:`.widgets`           the dock widgets (Clean, Labels, Train, Segment, ...)
========================  =========================================================

Importing this package imports neither napari nor Qt (the reader, writers and sample
data import napari only when napari calls them).
"""
