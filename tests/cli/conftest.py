"""Fixtures of the ``calcite-afm`` command-line tests: small input files."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_calcite_afm.io import write_tiff


@pytest.fixture
def small_stack(tmp_path) -> Path:
    """A 3-frame synthetic movie of 64 x 64 pixels (11.7 nm) as an ImageJ TIFF."""
    from napari_calcite_afm.synthetic import make_series

    s = make_series(3, 64, seed=101)
    path = tmp_path / "small.tif"
    write_tiff(path, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    return path
