"""Shared reader helpers (napari_calcite_afm.io._common): units, errors, warnings, logs."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_calcite_afm import io
from napari_calcite_afm.io import AFMFileError, CalciteAFMError, read_stack, write_tiff


def test_bad_z_unit():
    with pytest.raises(CalciteAFMError, match="unknown z_unit"):
        io._z_factor_arg("furlong")


def test_bad_z_unit_through_read_stack(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 3)))
    with pytest.raises(CalciteAFMError, match="z_unit"):
        read_stack(tmp_path / "a.npy", z_unit="V")


def test_z_unit_names():
    assert io._z_factor_arg(None) is None
    assert [io._z_factor_arg(u) for u in ("m", "um", "µm", "UM", "nm", "pm", "A", "Å")] == [
        1e9, 1e3, 1e3, 1e3, 1.0, 1e-3, 0.1, 0.1,
    ]  # fmt: skip


def test_error_classes():
    err = AFMFileError(Path("a/b.spm"), "broken")
    assert isinstance(err, CalciteAFMError) and isinstance(err, ValueError)
    assert str(err) == f"{Path('a/b.spm')}: broken"
    assert err.path == Path("a/b.spm") and err.problem == "broken"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problem == "broken"


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.ibw"
    empty.write_bytes(b"")
    with pytest.raises(AFMFileError, match="empty"):
        read_stack(empty)


def test_warnings_point_at_the_caller(tmp_path):
    # warnings issued deep inside the package name the caller's line, not the package's
    path = write_tiff(tmp_path / "nm.tif", np.full((8, 8), 3.0), 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_stack(path, z_unit="um")
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]


def test_afmreader_logging_is_silenced(real, capfd):
    read_stack(real("nanoafmr_kpg20080408.007"))
    read_stack(real("afmreader_sample_0.stp"))
    out, err = capfd.readouterr()
    assert "INFO" not in err and "Loading image" not in err + out
