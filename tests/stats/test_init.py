"""The stats package keeps every name the old module ``stats.py`` exported, plus the GSG ones."""

from __future__ import annotations

import importlib

import pytest

import napari_calcite_afm.stats as stats
from napari_calcite_afm import errors

OLD_ALL = [
    "AXES", "REGION_NAMES", "EMFit", "FrameFit", "Histogram", "LagStats", "RegionParams",
    "StatsError", "em_gaussian_mixture", "fit_frame", "fit_stack", "fits_to_rows",
    "fluctuation", "height_cdf", "height_pdf", "histogram", "histogram_distances",
    "increment_cdf", "increment_pdf", "increments", "ks_distance", "mixture_cdf",
    "mixture_logpdf", "mixture_pdf", "pair_fractions", "row_columns",
]  # fmt: skip


GSG_ALL = [
    "GSG_METHODS", "INCREMENT_MODELS", "GSGFit", "GSGLag", "GSGParams", "better_model",
    "fit_gsg_field", "fit_gsg_regions", "gsg_cdf", "gsg_columns", "gsg_correlation",
    "gsg_cross_components", "gsg_height_components", "gsg_increment_cdf",
    "gsg_increment_components", "gsg_increment_pdf", "gsg_moments", "gsg_pdf",
    "simulate_gsg_field", "subordinator_moment",
]  # fmt: skip


def test_public_names_are_kept():
    assert sorted(stats.__all__) == sorted(OLD_ALL + GSG_ALL)
    for name in OLD_ALL + GSG_ALL:
        assert getattr(stats, name) is not None, name


def test_private_names_used_by_tests_are_kept():
    assert (stats._MIN_BINS, stats._MAX_BINS) == (50, 200)
    assert callable(stats._Workspace)


def test_the_error_is_the_shared_one():
    assert stats.StatsError is errors.StatsError


@pytest.mark.parametrize(
    "module",
    ["results", "mixtures", "sample", "goodness", "em", "lags", "fitting",
     "gsg", "gsg_estimate", "gsg_frame", "gsg_field", "gsg_results"],
)  # fmt: skip
def test_modules_import_on_their_own(module):
    mod = importlib.import_module(f"napari_calcite_afm.stats.{module}")
    assert mod.__doc__ and ">>>" in mod.__doc__
