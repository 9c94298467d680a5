"""Shared series of the synthetic-package tests (small frames, fast).

128 pixels of 40 nm: a 5 µm frame, the physics of a full frame at a fraction of the cost.
"""

from __future__ import annotations

import pytest

from napari_calcite_afm.synthetic import SyntheticSeries, make_series


@pytest.fixture(scope="session")
def series() -> SyntheticSeries:
    """Six frames with every artifact, two multilayer pits, many monolayer pits."""
    return make_series(
        6, 128, seed=11, n_multilayer=2, monolayer_density_per_um2=2.0, pixel_size_nm=40.0
    )


@pytest.fixture(scope="session")
def flat_series() -> SyntheticSeries:
    """No roughness, no artifacts: heights are whole steps."""
    return make_series(
        5,
        128,
        seed=5,
        n_multilayer=1,
        monolayer_density_per_um2=2.0,
        roughness=0.0,
        artifacts=False,
        drift=False,
        pixel_size_nm=40.0,
    )
