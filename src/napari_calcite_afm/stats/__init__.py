"""Multimodal Gaussian (and generalized sub-Gaussian) model of AFM heights and increments.

This package implements the section "The multimodal Gaussian model" of the science notes
(``shared/docs/science.md``); ``docs/statistics.md`` gives the formulas, the meaning of every
output and the edge-case behaviour.

For one levelled frame ``Z`` (nm) and its segmentation (labels 1 = multilayer pit, region A;
2 = terrace, region B; 3 = monolayer etch pit, region M; 0 = unlabelled), :func:`fit_frame`
computes

- the zero-mean fluctuation ``Z' = Z - <Z>`` (mean over valid, labelled pixels);
- per region ``i``: the area fraction ``w_i`` (``c = w_A``), the mean ``mu_i`` and standard
  deviation ``sigma_i`` of ``Z'`` over the region;
- per lag ``s`` (pixels along ``x`` = columns, ``y`` = rows, or both pooled): the Pearson
  correlation ``rho_i(s)`` of ``Z'(x)`` and ``Z'(x + s)`` over the pairs with both ends in
  region ``i``, and the pair-type fractions ``p_ij(s)``;
- the model densities of heights ``f(z) = sum_i w_i N(z; mu_i, sigma_i)`` and of increments
  ``g(d; s) = sum_ij p_ij N(d; m_ij, s_ij)``;
- the goodness of fit of both (Kolmogorov-Smirnov, L1 and Jensen-Shannon distances);
- for comparison, a two-component Gaussian mixture fitted to ``Z'`` alone by EM;
- with ``increment_model="gsg"``, the multimodal generalized sub-Gaussian (GSG) model:
  each mode a GSG field (``alpha``, ``sigma``, ``rho(s)``), step crossings a third kind
  of pair (:attr:`FrameFit.gsg`); :func:`fit_gsg_field` / :func:`fit_gsg_regions` fit
  a GSG to any field (e.g. local dissolution rates).

Everything is vectorised numpy/scipy (no Qt, no napari). The modules:

=================  ==========================================================================
``results``        the result dataclasses (:class:`FrameFit`, :class:`LagStats`, ...), table
                   columns (:func:`row_columns`, :func:`fits_to_rows`)
``mixtures``       Gaussian mixture densities: height model ``f``, increment model ``g``
``sample``         sample statistics (:func:`fluctuation`, :func:`increments`,
                   :func:`pair_fractions`) and binning (:func:`histogram`)
``goodness``       exact KS distance, L1 and Jensen-Shannon distances
``em``             the EM fit of a 1D Gaussian mixture
``lags``           the statistics of one lag (pair sums, ``rho``, ``p``, model ``g``)
``fitting``        :func:`fit_frame`, :func:`fit_stack` and their threading
``gsg``            GSG densities of heights and increments, moments, simulated GSG fields
``gsg_estimate``   the GSG estimators (maximum likelihood, moments)
``gsg_frame``      the multimodal GSG model of a frame (``FrameFit.gsg``)
``gsg_field``      :func:`fit_gsg_field`, :func:`fit_gsg_regions` (any field)
``gsg_results``    :class:`GSGParams`, :class:`GSGFit`, the GSG table columns
=================  ==========================================================================

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.stats import fit_frame
>>> rng = np.random.default_rng(0)
>>> labels = np.full((64, 64), 2, dtype=np.uint8)
>>> labels[16:40, 16:40] = 1                       # a square "pit"
>>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.3, labels.shape)
>>> fit = fit_frame(z, labels, lags=(1, 2), pixel_size_nm=11.7)
>>> round(fit.c, 4)
0.1406
>>> rows = fit.to_rows(frame=0, time_s=0.0)
>>> [r["lag_nm"] for r in rows]
[11.7, 23.4]
"""

from __future__ import annotations

from ..errors import StatsError
from ._checks import AXES
from ._workspace import _Workspace as _Workspace  # (fit_frame's _workspace argument)
from .em import em_gaussian_mixture
from .fitting import INCREMENT_MODELS, fit_frame, fit_stack
from .goodness import histogram_distances, ks_distance
from .gsg import (
    gsg_cdf,
    gsg_correlation,
    gsg_cross_components,
    gsg_height_components,
    gsg_increment_cdf,
    gsg_increment_components,
    gsg_increment_pdf,
    gsg_moments,
    gsg_pdf,
    simulate_gsg_field,
    subordinator_moment,
)
from .gsg_field import fit_gsg_field, fit_gsg_regions
from .gsg_results import GSG_METHODS, GSGFit, GSGLag, GSGParams, better_model, gsg_columns
from .mixtures import (
    height_cdf,
    height_pdf,
    increment_cdf,
    increment_pdf,
    mixture_cdf,
    mixture_logpdf,
    mixture_pdf,
)
from .results import (
    REGION_NAMES,
    EMFit,
    FrameFit,
    Histogram,
    LagStats,
    RegionParams,
    fits_to_rows,
    row_columns,
)
from .sample import _MAX_BINS as _MAX_BINS
from .sample import _MIN_BINS as _MIN_BINS
from .sample import fluctuation, histogram, increments, pair_fractions

__all__ = [
    "AXES",
    "GSG_METHODS",
    "INCREMENT_MODELS",
    "REGION_NAMES",
    "EMFit",
    "FrameFit",
    "GSGFit",
    "GSGLag",
    "GSGParams",
    "Histogram",
    "LagStats",
    "RegionParams",
    "StatsError",
    "better_model",
    "em_gaussian_mixture",
    "fit_frame",
    "fit_gsg_field",
    "fit_gsg_regions",
    "fit_stack",
    "fits_to_rows",
    "fluctuation",
    "gsg_cdf",
    "gsg_columns",
    "gsg_correlation",
    "gsg_cross_components",
    "gsg_height_components",
    "gsg_increment_cdf",
    "gsg_increment_components",
    "gsg_increment_pdf",
    "gsg_moments",
    "gsg_pdf",
    "height_cdf",
    "height_pdf",
    "histogram",
    "histogram_distances",
    "increment_cdf",
    "increment_pdf",
    "increments",
    "ks_distance",
    "mixture_cdf",
    "mixture_logpdf",
    "mixture_pdf",
    "pair_fractions",
    "row_columns",
    "simulate_gsg_field",
    "subordinator_moment",
]
