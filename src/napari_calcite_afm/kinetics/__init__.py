"""Dissolution kinetics over a registered movie: drift, local rates (and pit tracking).

- :mod:`~napari_calcite_afm.kinetics.registration`: ``drift.csv``
  (:func:`write_drift_csv`, :func:`read_drift_csv`) for the registration of
  :func:`napari_calcite_afm.level.register_stack` (re-exported here with
  :class:`Registration`): shifts that, applied to frame t as ``scipy.ndimage.shift``
  applies them, align it with frame 0, with a confidence per frame, the rejected
  (interpolated) frames and messages;
- :mod:`~napari_calcite_afm.kinetics.rates`: local dissolution-rate maps in nm/s
  (:func:`rate_maps`) after putting each pair of frames on one height reference
  (:func:`height_reference`, :mod:`~napari_calcite_afm.kinetics.reference`), the
  per-pair table (:func:`rate_table`, :class:`RateTable`) and ``rates.tif``
  (:func:`write_rates_tif`);
- pit tracking: :mod:`~napari_calcite_afm.kinetics.pits` (:func:`find_pits`,
  :func:`measure_components`, :class:`PitSettings`: the pits of one frame, in nm),
  :mod:`~napari_calcite_afm.kinetics.separation` (:func:`separate_touching`: touching
  multilayer pits kept apart), :mod:`~napari_calcite_afm.kinetics.tracking`
  (:func:`track_pits`, :class:`PitTracks`: track ids, merges, splits),
  :mod:`~napari_calcite_afm.kinetics.track_table` (per-track rates; ``pits.csv`` and
  ``tracks.csv``: :func:`write_pits_csv`, :func:`write_tracks_csv`) and
  :mod:`~napari_calcite_afm.kinetics.velocities` (rhombus orientation, obtuse and
  acute step retreat velocities).

Units: heights nm, pixels, times s, rates nm/s and mol m^-2 s^-1, volumes nm^3.

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.kinetics import rate_maps, rate_table, register_stack
>>> rng = np.random.default_rng(0)
>>> movie = np.stack([rng.normal(0, 0.05, (48, 48))] * 3)
>>> movie[1:, :12] -= 0.31                     # a layer dissolved on a quarter
>>> reg = register_stack(movie)
>>> rates = rate_maps(reg.aligned, 300.0)       # nm/s, one map per pair of frames
>>> table = rate_table(rates, 300.0, pixel_size_nm=11.7)
>>> [round(row["rate_nm_s"] * 1e4, 1) + 0.0 for row in table.to_rows()]  # + 0.0: no -0.0
[2.6, 0.0]
"""

from __future__ import annotations

from ..level import Registration, register_stack
from .analysis import (
    KINETICS_FILES,
    TABLE_RATE_COLUMNS,
    KineticsResult,
    add_rates_to_table,
    analyse_kinetics,
    shift_labels,
    write_kinetics,
)
from .figures import kinetics_figure, rate_maps_figure, write_kinetics_figures
from .pits import PIT_COLUMNS, FramePits, PitSettings, find_pits, measure_components
from .rate_gsg import RATE_GSG_COLUMNS, rate_gsg_rows
from .rates import (
    MOLAR_VOLUME_CM3_MOL,
    NM_S_TO_MOL_M2_S,
    RATE_COLUMNS,
    HeightReference,
    KineticsError,
    RateTable,
    height_reference,
    rate_maps,
    rate_table,
    write_rates_tif,
)
from .registration import DRIFT_COLUMNS, read_drift_csv, write_drift_csv
from .separation import separate_touching
from .track_table import PIT_EXTRA_COLUMNS, TRACK_COLUMNS, write_pits_csv, write_tracks_csv
from .tracking import PitTracks, track_pits
from .velocities import (
    RHOMB_ANGLE_DEG,
    RhombOrientation,
    fit_orientation,
    obtuse_sides,
    rhomb_fill,
    robust_slope,
    side_distances,
    side_velocities,
    velocity_ratio,
)

__all__ = [
    "DRIFT_COLUMNS",
    "MOLAR_VOLUME_CM3_MOL",
    "NM_S_TO_MOL_M2_S",
    "RATE_COLUMNS",
    "HeightReference",
    "KineticsError",
    "RateTable",
    "Registration",
    "height_reference",
    "rate_maps",
    "rate_table",
    "read_drift_csv",
    "register_stack",
    "write_drift_csv",
    "write_rates_tif",
    # pit tracking
    "PIT_COLUMNS",
    "PIT_EXTRA_COLUMNS",
    "RHOMB_ANGLE_DEG",
    "TRACK_COLUMNS",
    "FramePits",
    "PitSettings",
    "PitTracks",
    "RhombOrientation",
    "find_pits",
    "fit_orientation",
    "measure_components",
    "obtuse_sides",
    "rhomb_fill",
    "robust_slope",
    "separate_touching",
    "side_distances",
    "side_velocities",
    "track_pits",
    "velocity_ratio",
    "write_pits_csv",
    "write_tracks_csv",
    # the whole analysis (run, kinetics, the napari widget)
    "KINETICS_FILES",
    "TABLE_RATE_COLUMNS",
    "add_rates_to_table",
    "KineticsResult",
    "analyse_kinetics",
    "kinetics_figure",
    "rate_maps_figure",
    "shift_labels",
    "write_kinetics",
    "write_kinetics_figures",
    # GSG models of the rate maps
    "RATE_GSG_COLUMNS",
    "rate_gsg_rows",
]
