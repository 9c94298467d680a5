"""``calcite-afm level IN --out OUT.gwy``: the levelled stack as a Gwyddion file."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import read_stack


def test_level_writes_gwy_where_the_output_ends_in_gwy(small_stack, tmp_path, capsys):
    gwy, tif = tmp_path / "clean.GWY", tmp_path / "clean.tif"
    for out in (gwy, tif):
        assert main(["level", str(small_stack), "--out", str(out), "--quiet"]) == 0
    assert gwy.read_bytes()[:4] == b"GWYP" and tif.read_bytes()[:2] in (b"II", b"MM")
    assert f"wrote {gwy}" in capsys.readouterr().out
    from_gwy, from_tif = read_stack(gwy), read_stack(tif)
    assert from_gwy.format == "gwy" and from_gwy.channel == "height"
    assert from_gwy.heights.shape == (3, 64, 64)
    np.testing.assert_array_equal(from_gwy.heights, from_tif.heights)  # NaN included
    assert from_gwy.pixel_size_nm == from_tif.pixel_size_nm
    assert from_gwy.frame_interval_s == pytest.approx(from_tif.frame_interval_s)
    saved = from_gwy.metadata["saved"]["metadata"]
    assert saved["source"] == str(small_stack) and "levelling" in saved


def test_level_refuses_to_overwrite_its_input_gwy(small_stack, tmp_path, capsys):
    src = tmp_path / "in.gwy"
    assert main(["level", str(small_stack), "--out", str(src), "--quiet"]) == 0
    before = src.read_bytes()
    assert main(["level", str(src), "--out", str(src), "--quiet"]) == 2
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert src.read_bytes() == before
