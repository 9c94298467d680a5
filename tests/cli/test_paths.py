"""Tests of cli._paths: outputs checked against the inputs, outputs written all or none."""

from __future__ import annotations

import contextlib
import os

import pytest

from napari_calcite_afm.cli._common import _UsageError
from napari_calcite_afm.cli._paths import _check_paths, _staged_file
from napari_calcite_afm.errors import AFMFileError


@pytest.fixture
def tree(tmp_path):
    """An input file, a hard link and a symlink to it, a folder of frames, a plain file."""
    (tmp_path / "in.tif").write_bytes(b"input")
    os.link(tmp_path / "in.tif", tmp_path / "hard.tif")
    (tmp_path / "soft.tif").symlink_to(tmp_path / "in.tif")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "f0.tif").write_bytes(b"frame")
    (tmp_path / "plain").write_text("x")
    return tmp_path


def _refused(match, inputs, files=(), folders=()):
    with pytest.raises(_UsageError, match=match) as info:
        _check_paths(inputs, files, folders)
    assert "\n" not in str(info.value) and str(info.value).startswith("calcite-afm: error: ")


def test_an_output_never_overwrites_an_input(tree):
    inp = [("INPUT", str(tree / "in.tif"))]
    for name in ("in.tif", "hard.tif", "soft.tif"):  # the same path, a hard link, a symlink
        _refused(
            "is the input file .* refusing to overwrite an input",
            inp,
            files=[("--out", str(tree / name))],
        )
    # a relative spelling of the same file
    cwd = os.getcwd()
    os.chdir(tree / "frames")
    try:
        _refused("is the input file", inp, files=[("--out", "../in.tif")])
    finally:
        os.chdir(cwd)
    _check_paths(inp, files=[("--out", str(tree / "out.tif"))])  # a new file is fine


def test_a_folder_output_never_holds_an_input(tree):
    frames = [("INPUT", str(tree / "frames"))]
    _refused("is the input folder", frames, folders=[("--out", str(tree / "frames"))])
    _refused("holds the input .* replaced as a whole", frames, folders=[("--out", str(tree))])
    _refused("holds the input", [("--model", str(tree / "in.tif"))], folders=[("--out", str(tree))])
    _refused(
        "lies inside the input folder",
        frames,
        files=[("--out", str(tree / "frames" / "levelled.tif"))],
    )
    _check_paths(frames, folders=[("--out", str(tree / "results"))])
    # the shipped model names are not paths
    _check_paths([("--model", "default")], folders=[("--out", "default")])


def test_outputs_of_the_wrong_kind_or_colliding(tree):
    inp = [("INPUT", str(tree / "in.tif"))]
    _refused("is a folder; --out names a file", inp, files=[("--out", str(tree / "frames"))])
    _refused("exists and is not a folder", inp, folders=[("--out", str(tree / "plain"))])
    _refused("plain is a file, not a folder", inp, files=[("--out", str(tree / "plain" / "a"))])
    same = [("--out", str(tree / "a.tif")), ("--probabilities", str(tree / "a.tif"))]
    _refused("--probabilities .* is also --out", inp, files=same)
    _refused(
        "--out .* lies inside --figures",
        inp,
        files=[("--out", str(tree / "f" / "t.csv"))],
        folders=[("--figures", str(tree / "f"))],
    )
    _check_paths(inp, files=[("--out", str(tree / "a.tif")), ("--probabilities", None)])


def test_staged_files_are_written_all_or_none(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "sub" / "b.tif"
    a.write_text("old")
    with pytest.raises(RuntimeError):
        with contextlib.ExitStack() as stack:
            ta = stack.enter_context(_staged_file(a))
            ta.write_text("new")
            tb = stack.enter_context(_staged_file(b))
            tb.write_text("new")
            raise RuntimeError("the second writer failed")
    assert a.read_text() == "old" and not b.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.tif", "sub"]  # nothing left over
    with contextlib.ExitStack() as stack:
        for path in (a, b):
            stack.enter_context(_staged_file(path)).write_text("new")
        assert a.read_text() == "old"  # nothing replaced before the end
    assert a.read_text() == b.read_text() == "new"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.tif", "b.tif", "sub"]


def test_a_staged_file_that_cannot_be_written_names_it(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(AFMFileError, match=r"plain/a\.tif: cannot write the labels"):
        with _staged_file(tmp_path / "plain" / "a.tif", "the labels"):
            pass
