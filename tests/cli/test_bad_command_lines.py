"""Bad command lines, as a hostile user would type them: each is refused on one line
(status 2, no traceback) before it changes anything: no input overwritten, no file
written, nothing temporary left behind (the commands, the parser's types and
``cli._paths`` together)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series

FIT = "fit in.tif --labels lab.tif --quiet"
RUN = "run in.tif --figures none --quiet"
TRAIN = "train --images in.tif --labels lab.tif --quiet"

#: (command line, what the one-line message must say)
CASES = [
    # --out at an existing file or folder of the wrong kind, or a folder of other work
    ("synth --out file --frames 2 --size 32", "--out file: exists and is not a folder"),
    ("synth --out dir --frames 2 --size 32", "holds notes.txt, which calcite-afm did not write"),
    ("run in.tif --out file --quiet", "--out file: exists and is not a folder"),
    ("run in.tif --out dir --quiet", "holds notes.txt, which calcite-afm did not write"),
    ("demo --out file --quiet", "--out file: exists and is not a folder"),
    ("demo --out dir --quiet", "holds notes.txt"),
    (f"{FIT} --out dir", "--out dir: is a folder; --out names a file"),
    (f"{FIT} --out file/t.csv", "file is a file, not a folder"),
    (f"{FIT} --out t.csv --figures file", "--figures file: exists and is not a folder"),
    (f"{TRAIN} --out dir", "--out dir: is a folder"),
    ("level in.tif --out dir", "--out dir: is a folder"),
    # no output overwrites or replaces an input
    ("level in.tif --out in.tif", "--out in.tif: is the input file in.tif .INPUT.: refusing"),
    ("level in.tif --out hardlink.tif", "is the input file in.tif"),
    ("level frames --out frames/levelled.tif", "lies inside the input folder frames"),
    ("segment in.tif --out in.tif", "--out in.tif: is the input file"),
    ("segment in.tif --out seg.tif --probabilities in.tif", "--probabilities in.tif: is the in"),
    ("segment in.tif --out seg.tif --probabilities seg.tif", "is also --out"),
    ("segment in.tif --out seg.tif --probabilities dir", "--probabilities dir: is a folder"),
    ("segment in.tif --out seg.tif --model seg.tif", "--out seg.tif: is the input file"),
    (f"{FIT} --out lab.tif", "--out lab.tif: is the input file lab.tif .--labels."),
    (f"{FIT} --out t.csv --figures .", "--figures .: holds the input"),
    (f"{FIT} --out figs/t.csv --figures figs", "--out figs/t.csv: lies inside --figures figs"),
    (f"{RUN} --out .", "--out .: holds the input"),
    ("run frames --out frames --quiet", "--out frames: is the input folder frames"),
    (f"{TRAIN} --out in.tif", "--out in.tif: is the input file in.tif .--images."),
    (f"{TRAIN} --out m.pt --val-images in.tif --val-labels m.latest.pt", "latest checkpoint"),
    # numbers that make no sense
    (f"{RUN} --out o --temporal-window 0", "--temporal-window: must be a whole number >= 1"),
    (f"{RUN} --out o --temporal-window 2", "temporal_window must be an odd whole number"),
    ("batch in.tif --out o --temporal-window x", "--temporal-window: must be a whole number"),
    (f"{RUN} --out o --rate-smooth -1", "--rate-smooth: must be a number of pixels from 0"),
    ("batch in.tif --out o --rate-smooth nan", "--rate-smooth: must be a number of pixels"),
    ("level in.tif --out o.tif --order 9", "--order: must be a whole number from 0 to 8"),
    ("level in.tif --out o.tif --order -1", "--order: must be a whole number from 0 to 8"),
    (f"{FIT} --out t.csv --lags 1000000000", "--lags must be smaller than the frame .64 x 64"),
    (f"{FIT} --out t.csv --lags 64 --axis x", "at most 63 px along x.*got 64"),
    (f"{RUN} --out r --lags 1000000000", "lags must be smaller than the frame .64 x 64 pixels"),
    (f"{RUN} --out r --lags 0", "--lags must be positive whole numbers"),
    *[
        (f"{cmd} --frame-interval {v}", "--frame-interval: must be a positive finite number of s")
        for cmd in (f"{FIT} --out t.csv", f"{RUN} --out r")
        for v in ("-1", "nan", "0", "inf", "x")
    ],
    ("synth --out s --frames 0", "--frames: must be a whole number from 1 to"),
    ("synth --out s --size 100000", "--size: must be a whole number from 16 to 2048"),
    ("synth --out s --frames 10000 --size 2048", "--frames x --size.2 must be at most"),
    ("synth --out s --seed -1", "--seed: must be a whole number from 0 to 4294967295"),
    ("synth --out s --pixel-size inf", "--pixel-size: must be a positive finite number of nm"),
    ("synth --out s --pixel-size nan", "--pixel-size: must be a positive finite"),
    ("synth --out s --size 2048 --pixel-size 100", "field of view .* at most 50 um"),
    (f"{TRAIN} --out m.pt --iterations 0", "--iterations: must be a whole number from 1"),
    (f"{TRAIN} --out m.pt --batch-size -4", "--batch-size: must be a whole number from 1 to 256"),
    (f"{TRAIN} --out m.pt --batch-size 1000000", "--batch-size: must be a whole number"),
    (f"{TRAIN} --out m.pt --width 100000", "--width: must be a whole number from 1 to 128"),
    (f"{TRAIN} --out m.pt --levels 9", "--levels: must be a whole number from 1 to 5"),
    (f"{TRAIN} --out m.pt --seed -1", "--seed: must be a whole number"),
    (f"{TRAIN} --out m.pt --dilations 1,100000", "--dilations must be at most 12 values of at"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A 3-frame movie, its labels, a folder of frames, a plain file, a folder of notes."""
    root = tmp_path_factory.mktemp("bad-command-lines")
    s = make_series(3, 64, seed=101)
    write_tiff(root / "in.tif", s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    write_tiff(root / "lab.tif", s.labels_raw, s.pixel_size_nm)
    (root / "frames").mkdir()
    for i in range(3):
        write_tiff(root / "frames" / f"f{i}.tif", s.raw[i], s.pixel_size_nm)
    (root / "file").write_text("not a folder")
    (root / "dir").mkdir()
    (root / "dir" / "notes.txt").write_text("someone's work")
    return root


@pytest.fixture
def work(base, tmp_path, monkeypatch) -> Path:
    """A fresh copy of ``base`` (with a hard link to in.tif) as the working directory."""
    work = tmp_path / "work"
    shutil.copytree(base, work)
    os.link(work / "in.tif", work / "hardlink.tif")
    monkeypatch.chdir(work)
    return work


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[c for c, _ in CASES])
def test_refused_on_one_line_and_nothing_changes(work, capsys, argv, message):
    before = _digests(work)
    assert main(argv.split()) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("calcite-afm"), err
    assert "Traceback" not in err
    assert re.search(message, err), err
    assert _digests(work) == before  # no input changed, no output written...
    assert sorted(p.name for p in work.rglob("*") if p.name.startswith(".")) == []  # ...no temp


def test_a_high_order_is_refused_at_once():
    """``level --order 99`` ran for 16 minutes and wrote +-inf; now a one-line refusal
    (in a subprocess, so that a regression fails instead of hanging the suite)."""
    argv = [sys.executable, "-m", "napari_calcite_afm.cli", "level", "x.tif", "--out", "y.tif"]
    done = subprocess.run(
        [*argv, "--order", "99"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    expected = "must be a whole number from 0 to 8 (no scanner needs a higher order), got '99'"
    assert done.stderr.strip().endswith(expected), done.stderr
