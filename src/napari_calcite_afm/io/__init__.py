"""Read AFM height stacks and write them (and label stacks) as TIFF.

Everything here is plain Python (numpy, tifffile, AFMReader); nothing imports Qt or napari.

Conventions (see ``DEVELOPERS.md``): a height stack is a ``float32`` array
``(frames, rows, cols)`` in **nm**, NaN marks pixels the instrument did not record, the
pixel size is isotropic and given in **nm per pixel**, and label stacks are ``uint8``
with values 0 (unlabelled), 1 (multilayer pit), 2 (terrace), 3 (monolayer pit).

Formats
-------
========================  ==========  ===================================================
extension                 ``format``  reader
========================  ==========  ===================================================
``.spm``, ``.000-.999``   spm         AFMReader ``spm.load_spm`` (pySPM >= 0.6), Bruker
                                      NanoScope; default channel ``Height``
``.ibw``                  ibw         AFMReader ``ibw.load_ibw`` (Asylum Research);
                                      pixel size corrected, channel names cleaned
``.gwy``                  gwy         own parser of Gwyddion 2 (``GWYP``) files
``.jpk``                  jpk         AFMReader ``jpk.load_jpk``
``.h5-jpk``               h5-jpk      AFMReader ``h5_jpk.load_h5jpk`` (movies)
``.asd``                  asd         AFMReader ``asd.load_asd`` (high-speed AFM movies)
``.stp``                  stp         AFMReader ``stp.load_stp`` (WSxM)
``.top``                  top         AFMReader ``top.load_top`` (WSxM), z range corrected
``.topostats``            topostats   AFMReader ``topostats.load_topostats``
``.tif``, ``.tiff``       tiff        tifffile (ImageJ hyperstacks, plain TIFF)
``.tif``, ``.tiff``       park-tiff   own reader of Park Systems TIFF (private tags)
``.npy``, ``.npz``        npy, npz    numpy
``.nid``, ``.mdt``        nid, mdt    Gwyddion's converter through ``gwyddionpy`` (the
                                      optional ``gwyddion`` extra: NanoSurf, NT-MDT)
========================  ==========  ===================================================

Files whose pixels are not square keep their rows and columns; ``pixel_size_nm`` is the
fast-axis (column) pixel size, ``metadata["pixel_size_y_nm"]`` the row pitch, and where
the two differ by more than 1 % ``metadata["non_square_pixels"]`` is True and a
``UserWarning`` is issued.

The package holds one concept per module:

- :mod:`~napari_calcite_afm.io.stack`: :class:`AFMStack`, :func:`read_stack` (files,
  folders, lists) and :func:`list_channels`;
- :mod:`~napari_calcite_afm.io.registry`: the table of formats (extensions, channel
  lister, reader), :data:`SUPPORTED_EXTENSIONS` and :func:`is_supported`;
- one module per vendor family, each with the corrections it makes to AFMReader's
  results: :mod:`~napari_calcite_afm.io.bruker`, :mod:`~napari_calcite_afm.io.asylum`,
  :mod:`~napari_calcite_afm.io.gwyddion`, :mod:`~napari_calcite_afm.io.jpk`,
  :mod:`~napari_calcite_afm.io.asd`, :mod:`~napari_calcite_afm.io.wsxm`,
  :mod:`~napari_calcite_afm.io.topostats`, :mod:`~napari_calcite_afm.io.park`,
  :mod:`~napari_calcite_afm.io.tiff` and :mod:`~napari_calcite_afm.io.arrays`
  (.npy/.npz);
- :mod:`~napari_calcite_afm.io.nanosurf_ntmdt`: NanoSurf ``.nid`` and NT-MDT ``.mdt``
  through the optional Gwyddion converter;
- :mod:`~napari_calcite_afm.io.write`: :func:`write_tiff` and :func:`write_gwy`
  (Gwyddion files, read back as the same stack);
- :mod:`~napari_calcite_afm.io.labels`: :func:`read_labels`;
- :mod:`~napari_calcite_afm.io._common`: the helpers the readers share (errors, units,
  channel choice);
- :mod:`~napari_calcite_afm.io._limits`: what the readers refuse before they trust a
  file (declared sizes against the file size, TIFF directory chains) and the bounds of
  every result (pixel size 1e-3 to 1e6 nm, frames of at least 8 x 8 pixels, heights
  within 1e7 nm).

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from napari_calcite_afm.io import read_stack, write_tiff
>>> path = pathlib.Path(tempfile.mkdtemp()) / "movie.tif"
>>> heights = np.zeros((3, 16, 24), np.float32)         # 3 frames, nm
>>> _ = write_tiff(path, heights, pixel_size_nm=4.0, frame_interval_s=2.0)
>>> stack = read_stack(path)
>>> stack.format, stack.shape, stack.pixel_size_nm, stack.frame_interval_s
('tiff', (16, 24), 4.0, 2.0)
"""

from __future__ import annotations

from ..errors import AFMFileError, CalciteAFMError
from ..labels import labels_to_two_class

# ``_z_factor_arg`` (the ``z_unit`` argument as nm per unit) is private, but imported
# from here by the tests: the redundant alias re-exports it
from ._common import _z_factor_arg as _z_factor_arg
from .labels import read_labels
from .registry import SUPPORTED_EXTENSIONS, is_supported
from .stack import AFMStack, list_channels, read_stack
from .write import write_gwy, write_tiff

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "AFMFileError",
    "AFMStack",
    "CalciteAFMError",
    "is_supported",
    "labels_to_two_class",
    "list_channels",
    "read_labels",
    "read_stack",
    "write_gwy",
    "write_tiff",
]
