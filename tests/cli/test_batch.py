"""``calcite-afm batch``: exit statuses, one-line errors, a run on a local cluster."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from napari_calcite_afm.cli import build_parser, main
from napari_calcite_afm.cli._common import _Parser, _stderr, _UsageError
from napari_calcite_afm.cli.batch import _add_batch_parser, cmd_batch
from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.io import write_tiff

_WIRED = "batch" in build_parser()._subparsers._group_actions[0].choices


def _main(argv: list[str]) -> int:
    """``main(argv)``; until ``batch`` is wired into the parser, the same handling."""
    if _WIRED:
        return main(argv)
    parser = _Parser(prog="calcite-afm")
    _add_batch_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except _UsageError as exc:
        _stderr(str(exc))
        return 2
    except CalciteAFMError as exc:
        _stderr(f"calcite-afm: error: {exc}")
        return 2


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> list[Path]:
    """Two 3-frame 64 x 64 movies (seeds 31, 32) and a corrupt TIFF."""
    from napari_calcite_afm.synthetic import make_series

    root = tmp_path_factory.mktemp("movies")
    paths = []
    for seed in (31, 32):
        s = make_series(3, 64, seed=seed)
        path = root / f"movie{seed}.tif"
        write_tiff(path, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
        paths.append(path)
    bad = root / "broken.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 500)
    return [*paths, bad]


def test_batch_is_a_subcommand_once_wired():
    if not _WIRED:
        pytest.skip("cli/parser.py does not add the batch parser yet")
    args = build_parser().parse_args(["batch", "m.tif", "--out", "o"])
    assert args.func is cmd_batch and args.inputs == ["m.tif"] and args.workers is None


def _bad_lines(movie: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Bad command lines (after ``batch``) and what their error says."""
    m, out, frames = str(movie), str(tmp / "out"), tmp / "frames"
    return {
        "no movie": (["--out", out], "no movies given"),
        "no --out": ([m], "arguments are required: --out"),
        "missing": ([str(tmp / "gone.tif"), "--out", out], "gone.tif: no such file"),
        "unsupported": ([str(tmp / "file.txt"), "--out", out], "not a file type"),
        "twice": ([m, m, "--out", out], "movie given twice"),
        "list missing": (["--from-list", str(tmp / "l.txt"), "--out", out], "list not found"),
        "workers 0": ([m, "--out", out, "--workers", "0"], "--workers must be a positive"),
        "workers x": ([m, "--out", out, "--workers", "x"], "invalid int value"),
        "interval -1": ([m, "--out", out, "--frame-interval", "-1"], "--frame-interval must"),
        "interval nan": ([m, "--out", out, "--frame-interval", "nan"], "--frame-interval must"),
        "interval 0": ([m, "--out", out, "--frame-interval", "0"], "--frame-interval must"),
        "lags": ([m, "--out", out, "--lags", "0"], "lags must be positive"),
        "model": ([m, "--out", out, "--model", str(tmp / "no.pt")], "model file not found"),
        "both": (
            [m, "--out", out, "--workers", "2", "--scheduler", "tcp://h:1"],
            "leave --workers",
        ),
        "scheduler": ([m, "--out", out, "--scheduler", "tcp://127.0.0.1:1"], "cannot reach"),
        "out is a file": ([m, "--out", str(tmp / "file.txt")], "exists and is not a folder"),
        "out replaces input": ([str(frames), "--out", str(tmp)], "is an input"),
    }


@pytest.mark.parametrize("case", list(_bad_lines(Path("m.tif"), Path("/nonexistent"))))
def test_bad_command_lines_exit_2_with_one_line(case, movies, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "frames").mkdir()
    write_tiff(tmp_path / "frames" / "f1.tif", np.zeros((4, 4), np.float32), 1.0)
    argv, message = _bad_lines(movies[0], tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _main(["batch", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert message in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def _records(out: Path) -> list[dict]:
    return json.loads((out / "batch_summary.json").read_text())["records"]


def test_a_batch_on_a_local_cluster_then_resumed(movies, tmp_path, capsys):
    out = tmp_path / "out"
    rc = _main(["batch", *map(str, movies), "--out", str(out), "--workers", "2"])
    captured = capsys.readouterr()
    assert rc == 1  # one movie failed
    err = captured.err.strip().splitlines()
    assert err[0].startswith("batch: 3 movies, 0 complete already, 3 to run on 2 workers")
    assert sorted(line.split()[1] for line in err[1:4]) == ["1/3", "2/3", "3/3"]
    assert sum("broken FAILED: " in line for line in err) == 1
    assert err[-1].startswith("batch: 2 ok, 1 failed, 0 skipped, 0 not run in ")
    assert captured.out.startswith(f"wrote {out}: 2 ok, 1 failed, 0 skipped")
    with open(out / "failures.csv", newline="") as fh:
        assert [r[0] for r in csv.reader(fh)] == ["movie", "broken"]
    records = _records(out)
    for rec in records:  # each local worker runs on its own share of the cores
        assert rec["cpus"] == rec["threads"] >= 1
    summary = json.loads((out / "movie31" / "summary.json").read_text())
    assert summary["files"]["figures"] == str(out / "movie31" / "figures")
    assert (out / "movie31" / "figures" / "parameters_vs_time.png").is_file()

    # resumed with the good movies, from a list: nothing left to run, exit 0
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in movies[:2]))
    rc = _main(["batch", "--from-list", str(listing), "--out", str(out), "--resume"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "all complete already: nothing to run" in captured.err
    assert [r["status"] for r in _records(out)] == ["skipped", "skipped"]
    assert _main(["batch", str(movies[0]), "--out", str(out), "--resume", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "1 skipped" in captured.out
    assert not math.isnan(json.loads((out / "batch_summary.json").read_text())["wall_s"])


def test_batch_passes_the_increment_model_and_kinetics_to_every_movie(monkeypatch, tmp_path):
    import napari_calcite_afm.batch as batch

    seen = {}

    def fake_run_batch(movies, out, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(batch, "run_batch", fake_run_batch)
    movie = tmp_path / "m.tif"
    movie.write_bytes(b"")
    args = ["batch", str(movie), "--out", str(tmp_path / "o"), "--increment-model", "gsg"]
    with pytest.raises(SystemExit):
        main([*args, "--no-kinetics"])
    config = seen["config"]
    assert config.increment_model == "gsg" and config.kinetics is False
