"""The ``calcite-afm`` contract: exit status 2 and one line on stderr for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from napari_calcite_afm import cli
from napari_calcite_afm.cli import main
from napari_calcite_afm.io import write_tiff

COMMANDS = ["info", "level", "synth", "train", "segment", "fit", "run", "demo"]


def test_old_names_still_importable():
    for name in cli.__all__:
        assert getattr(cli, name) is not None, name
    assert {f"cmd_{c}" for c in COMMANDS} <= set(cli.__all__)
    for name in ("_UsageError", "_Parser", "_parse_lags", "_progress_printer", "_read_pairs",
                 "_train_budget", "EXIT_USAGE"):  # fmt: skip
        assert hasattr(cli, name), name


def test_bad_input_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "broken.spm"
    bad.write_bytes(b"\x00not an afm file")
    for argv in (
        ["info", str(bad)],
        ["info", str(tmp_path / "missing.tif")],
        ["level", str(tmp_path / "x.unknown"), "--out", str(tmp_path / "o.tif")],
        ["synth"],  # --out missing
        ["level"],
        ["no-such-command"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "napari_calcite_afm.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert lines[0].startswith("calcite-afm")


@pytest.fixture
def tiny(tmp_path):
    """A 2-frame stack of 16 x 16 pixels and its labels."""
    import numpy as np

    img = write_tiff(tmp_path / "img.tif", np.zeros((2, 16, 16), np.float32), 1.0)
    lab = write_tiff(tmp_path / "lab.tif", np.ones((2, 16, 16), np.uint8), 1.0)
    return img, lab


@pytest.mark.parametrize("lags", ["x", "0,1", ",,", "1,-2"])
def test_bad_lags_name_the_option(tiny, tmp_path, capsys, lags):
    img, lab = tiny
    argv = ["fit", str(img), "--labels", str(lab), "--out", str(tmp_path / "t.csv")]
    assert main([*argv, "--lags", lags, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calcite-afm: error: --lags must be")
    assert repr(lags) in err[0]
    assert not (tmp_path / "t.csv").exists()
    assert main(["run", str(img), "--out", str(tmp_path / "r"), "--lags", lags]) == 2
    assert capsys.readouterr().err.startswith("calcite-afm: error: --lags must be")


@pytest.mark.parametrize("dilations", ["a", "0", "1,,x"])
def test_bad_dilations_name_dilations(tiny, tmp_path, capsys, dilations):
    img, lab = tiny
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(tmp_path / "m.pt")]
    assert main([*argv, "--dilations", dilations, "--iterations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("calcite-afm: error: --dilations must be")
    assert "--lags" not in err[0]
    assert not (tmp_path / "m.pt").exists()


def test_no_command_prints_help_and_status_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    for command in COMMANDS:
        assert command in err


def test_version(capsys):
    from napari_calcite_afm import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"calcite-afm {__version__}"


def test_keyboard_interrupt_is_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.commands, "cmd_info", interrupted)
    monkeypatch.setattr(cli.parser, "cmd_info", interrupted)
    assert main(["info", "x.tif"]) == 130
    assert capsys.readouterr().err.strip() == "calcite-afm: interrupted"


def test_running_out_of_memory_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    """A bare MemoryError (a corrupt size field) printed a traceback from ``info``."""
    import napari_calcite_afm.io as io

    def huge(*args, **kw):
        raise MemoryError("Unable to allocate 745. GiB")

    monkeypatch.setattr(io, "read_stack", huge)
    assert main(["info", str(tmp_path / "x.spm")]) == 2
    err = capsys.readouterr().err.strip()
    expected = "calcite-afm: error: out of memory (Unable to allocate 745. GiB): a corrupt input?"
    assert err == expected
