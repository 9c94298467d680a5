"""Synthetic in-situ AFM movies of calcite {10-14} dissolving in water, with ground truth.

The generator renders a physical model of the surface (heights in nm, frame of
reference of frame 0): a vicinal staircase of monolayer steps (0.31 nm) retreating
uphill, many monolayer rhombic etch pits nucleating and growing (pits in pits, opening
into the terrace below, coalescing), a few multilayer (dislocation) pits of concentric
step loops, and correlated roughness. It then adds the artifacts of an AFM scan: tilt,
bow, scan-line offsets, scars, white noise and drift between frames. The design is
described in ``docs/synthetic-data.md``.

Labels (:mod:`napari_calcite_afm.labels`): 1 multilayer pit (its footprint, walls
included), 2 terrace, 3 monolayer pit (a closed depression one step lower than its
surroundings, outside multilayer pits; an opened one is terrace).

Drift convention: the content of raw frame ``k`` appears displaced by
``drift_px[k] = (d_row, d_col)`` pixels with respect to frame 0, i.e. before the other
artifacts ``raw[k][r, c] == surface(t_k)`` sampled at reference position
``(r - d_row, c - d_col)``.  ``scipy.ndimage.shift(raw[k], -drift_px[k])`` registers it
back; registering ``raw[k]`` on ``raw[0]`` (e.g.
``skimage.registration.phase_cross_correlation(raw[0], raw[k])``) finds about
``-drift_px[k]`` (the surface itself changes between frames).

Modules: :mod:`.params` (the settings, :class:`SeriesParams`), :mod:`.crystal`
(rhombus geometry, vicinal steps), :mod:`.pits` (pit nucleation and growth),
:mod:`.surface_model` (the random model of a series), :mod:`.render` (heights and
labels), :mod:`.artifacts` (scan artifacts), :mod:`.fields` (random fields),
:mod:`.generators` (the public generators), :mod:`.wide` (the "wide" variety: settings
drawn from wide ranges).

A second, structurally different generator simulates dissolution on a cellular lattice
(:func:`make_cellular_series`, :func:`make_cellular_frame`): :mod:`.cellular`,
:mod:`.cellular_params`, :mod:`.lattice` (the automaton), :mod:`.lattice_render`
(pixels and labels), :mod:`.scan_model` (its own roughness, noise and artifacts).
:func:`make_training_frames` makes training frames of either by name.

Examples
--------
>>> from napari_calcite_afm.synthetic import make_series, make_frame
>>> s = make_series(n_frames=3, size=128, seed=1)
>>> s.raw.shape, s.raw.dtype, s.labels.dtype
((3, 128, 128), dtype('float32'), dtype('uint8'))
>>> s.frame_times_s
array([  0., 300., 600.])
>>> raw, clean, labels = make_frame(size=64, seed=3)
>>> raw.shape
(64, 64)
"""

from __future__ import annotations

from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from .artifacts import add_artifacts
from .cellular import make_cellular_frame, make_cellular_frames, make_cellular_series
from .cellular_params import CellularParams
from .crystal import (
    OBTUSE_TO_ACUTE_VELOCITY,
    RHOMB_ACUTE_ANGLE_DEG,
    STEP_HEIGHT_NM,
)
from .crystal import _crystal_axes as _crystal_axes  # private, used by tests
from .generators import SyntheticSeries, make_frame, make_frames, make_series
from .generators import _raw_and_labels as _raw_and_labels  # the make_frames worker
from .params import SeriesParams
from .training_sets import GENERATORS, TRAINING_GENERATORS, make_training_frames
from .truth import PitTruth, SeriesTruth, pit_truth

__all__ = [
    "PitTruth",
    "SeriesTruth",
    "pit_truth",
    "CellularParams",
    "GENERATORS",
    "LABEL_MONOLAYER",
    "LABEL_MULTILAYER",
    "LABEL_TERRACE",
    "OBTUSE_TO_ACUTE_VELOCITY",
    "RHOMB_ACUTE_ANGLE_DEG",
    "STEP_HEIGHT_NM",
    "SeriesParams",
    "SyntheticSeries",
    "TRAINING_GENERATORS",
    "add_artifacts",
    "make_cellular_frame",
    "make_cellular_frames",
    "make_cellular_series",
    "make_frame",
    "make_frames",
    "make_series",
    "make_training_frames",
]
