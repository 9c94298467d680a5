"""The format table (napari_calcite_afm.io.registry): extensions, dispatch, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_calcite_afm.io import (
    SUPPORTED_EXTENSIONS,
    AFMFileError,
    is_supported,
    list_channels,
    read_stack,
)
from napari_calcite_afm.io.registry import FORMATS


def test_supported_extensions_and_is_supported(tmp_path):
    assert all(e == e.lower() and e.startswith(".") for e in SUPPORTED_EXTENSIONS)
    for ext in (".spm", ".000", ".003", ".999", ".ibw", ".gwy", ".jpk", ".h5-jpk", ".asd",
                ".stp", ".top", ".topostats", ".tif", ".tiff", ".npy", ".npz"):  # fmt: skip
        assert ext in SUPPORTED_EXTENSIONS
        assert is_supported(f"scan{ext}")
    assert is_supported("SCAN.IBW") and is_supported("scan.007")
    assert not is_supported("scan.sxm") and not is_supported("scan.1234")
    assert is_supported("scan.nid") and is_supported("scan.MDT")  # the optional extra
    assert not is_supported("scan.txt") and not is_supported(tmp_path / "none")
    assert is_supported(["a.ibw", "b.003"]) and not is_supported(["a.ibw", "b.txt"])


def test_one_table_for_extensions_readers_and_channel_lists():
    # every extension belongs to exactly one format, listed in the table's order
    listed = [ext for f in FORMATS.values() for ext in f.extensions]
    assert tuple(listed) == SUPPORTED_EXTENSIONS and len(set(listed)) == len(listed)
    assert SUPPORTED_EXTENSIONS[:2] == (".spm", ".000") and len(SUPPORTED_EXTENSIONS) == 1015
    for name, fmt in FORMATS.items():
        assert fmt.name == name and callable(fmt.read)
        assert fmt.channels is None or callable(fmt.channels)
        assert fmt.z_unit in ("file", "argument", "reader")
    assert [n for n, f in FORMATS.items() if f.z_unit != "file"] == ["tiff", "npy", "npz"]


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(AFMFileError) as info:
        read_stack(tmp_path / "missing.spm")
    assert info.value.problem == "file not found"
    assert str(info.value) == f"{tmp_path / 'missing.spm'}: file not found"
    odd = tmp_path / "scan.xyz"
    odd.write_bytes(b"123")
    with pytest.raises(AFMFileError) as info:
        read_stack(odd)
    assert "'.xyz'" in info.value.problem and ".ibw" in info.value.problem
    assert ".000-.999" in info.value.problem


@pytest.mark.parametrize(
    "name",
    [
        "scifi_GwiddionReader_chip_legacyGWYO.gwy",
    ],
)
def test_files_without_loader_are_refused(real, name):
    with pytest.raises(AFMFileError) as info:
        read_stack(real(name))
    assert name in str(info.value)
    assert "not supported" in info.value.problem
    with pytest.raises(AFMFileError):
        list_channels(real(name))


def test_unsupported_message_lists_every_supported_extension(tmp_path):
    odd = tmp_path / "scan.sxm"
    odd.write_bytes(b"123")
    with pytest.raises(AFMFileError) as info:
        list_channels(odd)
    problem = info.value.problem
    assert problem.startswith("Nanonis .sxm files are not supported")
    assert problem.endswith(
        "(supported: .spm, .000-.999 (Bruker), .ibw, .gwy, .jpk, .h5-jpk, .asd, .stp, .top, "
        ".topostats, .tif, .tiff, .npy, .npz, .nid, .mdt)"
    )
    assert Path(info.value.path) == odd
