"""The files of a run: results table (CSV), summary and scores (JSON), figures (PNG)."""

from __future__ import annotations

import csv
import json
import math
import threading

import numpy as np
import pytest

from napari_calcite_afm.errors import AFMFileError
from napari_calcite_afm.outputs import (
    RUN_OUTPUT_FILES,
    TABLE_COLUMNS,
    check_output_folder,
    table_columns,
    write_figures,
    write_json,
    write_outputs,
    write_table_csv,
)
from napari_calcite_afm.pipeline import PipelineConfig, fit_series, run_pipeline
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def fitted():
    s = make_series(3, 64, seed=11)
    rows, fits = fit_series(
        s.clean, s.labels, pixel_size_nm=s.pixel_size_nm, frame_times_s=s.frame_times_s, lags=(1,)
    )
    return s, rows, fits


def test_table_columns():
    assert table_columns()[: len(TABLE_COLUMNS)] == TABLE_COLUMNS
    assert len(set(table_columns(3))) == len(table_columns(3))
    assert {"c_M", "mu_M"} <= set(table_columns(3)) - set(table_columns(2))


def test_table_csv_nan_as_empty_and_column_order(tmp_path):
    rows = [
        {"frame": 0, "c": 0.5, "flags": "", "extra": 1},
        {"frame": 1, "c": math.nan, "flags": "x", "extra": 2},
        {"frame": 2, "c": math.inf, "flags": "", "extra": 3},
    ]
    out = write_table_csv(tmp_path / "sub" / "t.csv", rows, ["c", "frame"])
    assert out == tmp_path / "sub" / "t.csv"
    assert out.read_text().splitlines() == ["c,frame", "0.5,0", ",1", ",2"]
    # default columns: the first row's keys; an empty table gets the leading columns
    assert write_table_csv(out, rows).read_text().splitlines()[0] == "frame,c,flags,extra"
    assert write_table_csv(out, []).read_text().strip() == ",".join(TABLE_COLUMNS)
    assert [p.name for p in out.parent.iterdir()] == ["t.csv"]  # no temporary file left


def test_table_csv_round_trips_the_fit_table(fitted, tmp_path):
    _, rows, _ = fitted
    out = write_table_csv(tmp_path / "t.csv", rows, table_columns(2))
    with out.open() as fh:
        back = list(csv.DictReader(fh))
    assert len(back) == len(rows) and list(back[0]) == table_columns(2)
    assert float(back[1]["c"]) == rows[1]["c"]  # repr of floats: exact
    assert back[0]["retreat_nm_per_min"] == ""  # the first frame has no retreat


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    """Two writers of one path used to share ``path + '.tmp'``; each now gets its own."""
    path = tmp_path / "t.csv"
    tables = [[{"frame": i, "c": k} for i in range(2000)] for k in range(4)]
    errors = []

    def write(rows):
        try:
            for _ in range(5):
                write_table_csv(path, rows)
                write_json(tmp_path / "s.json", {"rows": rows[:50]})
        except Exception as exc:  # pragma: no cover - the failure this guards against
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = path.read_text().splitlines()
    assert len(lines) == 2001 and len({line.split(",")[1] for line in lines[1:]}) == 1
    assert json.loads((tmp_path / "s.json").read_text())["rows"][0]["frame"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "t.csv"]


def test_write_json_strict_and_atomic(tmp_path):
    data = {
        "a": np.float32(1.5),
        "b": [np.int64(2), float("nan"), float("inf")],
        "c": np.arange(3),
        "d": (1, None, True),
        3: "x",
    }
    out = write_json(tmp_path / "d" / "x.json", data)
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "a": 1.5,
        "b": [2, None, None],
        "c": [0, 1, 2],
        "d": [1, None, True],
        "3": "x",
    }
    assert text == json.dumps(json.loads(text), indent=2)  # indented, no trailing newline


def test_unwritable_paths_raise_a_file_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(AFMFileError, match="a-file"):
        write_table_csv(blocker / "t.csv", [{"frame": 0}])
    with pytest.raises(AFMFileError, match="a-file"):
        write_json(blocker / "s.json", {})


def test_write_figures_modes(fitted, tmp_path):
    s, rows, fits = fitted
    assert write_figures(fits, rows, tmp_path / "none", figures="none") == []
    assert not (tmp_path / "none").exists()
    some = write_figures(fits, rows, tmp_path / "s", max_frame_figures=2)
    assert [p.name for p in some] == [
        "fit_frame0000.png",
        "fit_frame0002.png",
        "parameters_vs_time.png",
    ]
    every = write_figures(fits, rows, tmp_path / "a", frame_times_s=s.frame_times_s, figures="all")
    assert len(every) == 4 and all(p.stat().st_size > 1000 for p in every)
    assert every[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in every)
    (tmp_path / "blocker").write_text("")
    with pytest.raises(AFMFileError, match="blocker"):  # one line, not a FileExistsError
        write_figures(fits, rows, tmp_path / "blocker")


def test_write_outputs_fills_files_and_summary(tmp_path):
    s = make_series(2, 48, seed=5)
    res = run_pipeline(
        s.raw,
        pixel_size_nm=s.pixel_size_nm,
        frame_interval_s=60.0,
        config=PipelineConfig(lags=(1,), keep_probabilities=False),
    )
    files = write_outputs(res, tmp_path / "out", figures="all")
    assert list(files) == [
        "cleaned", "labels", "table", "drift", "rates", "rate_table", "pits", "tracks",
        "figures", "summary",
    ]  # fmt: skip
    assert res.files == files and res.summary["files"] == files
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["files"] == files and summary["shape"] == [2, 48, 48]
    assert "with_outputs_s" not in summary["timings_s"]  # only run_pipeline adds it
    assert not (tmp_path / "out" / "probabilities.tif").exists()
    # 2 frames and the parameters against time, then the kinetics and its rate maps
    assert len(list((tmp_path / "out" / "figures").glob("*.png"))) == 5


@pytest.fixture(scope="module")
def small_result():
    s = make_series(2, 48, seed=5)
    cfg = PipelineConfig(lags=(1,), keep_probabilities=False, em=False)
    return run_pipeline(s.raw, pixel_size_nm=s.pixel_size_nm, frame_interval_s=60.0, config=cfg)


def test_check_output_folder_refuses_other_work(tmp_path):
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    folder = tmp_path / "older"
    (folder / "figures").mkdir(parents=True)
    for name in RUN_OUTPUT_FILES:
        (folder / name).write_text("")
    (folder / "figures" / "fit_frame0007.png").write_text("")
    (folder / ".table.csv.x1y2.tmp").write_text("")  # a temporary file of a killed run
    assert check_output_folder(folder) == folder
    (folder / "figures" / "notes.txt").write_text("")
    with pytest.raises(AFMFileError, match=r"holds figures, which calcite-afm did not write"):
        check_output_folder(folder)
    (folder / "figures" / "notes.txt").unlink()
    (folder / "data.tif").write_text("")
    (folder / "table.csv").unlink()
    (folder / "table.csv").mkdir()  # the right name, but not a file
    with pytest.raises(AFMFileError, match=r"holds data\.tif, table\.csv, which"):
        check_output_folder(folder)
    with pytest.raises(AFMFileError, match="exists and is not a folder"):
        check_output_folder(folder / "data.tif")
    figures = tmp_path / "figs"
    figures.mkdir()
    (figures / "parameters_vs_time.png").write_text("")
    assert check_output_folder(figures, (), figures=".") == figures
    with pytest.raises(AFMFileError, match=r"parameters_vs_time\.png"):
        check_output_folder(figures)  # a run folder holds its figures in figures/


def test_write_outputs_replaces_an_older_folder_as_a_whole(small_result, tmp_path):
    out = tmp_path / "out"
    write_outputs(small_result, out, figures="all")
    assert len(list((out / "figures").glob("*.png"))) == 5  # 2 frames, time, 2 kinetics
    write_outputs(small_result, out, figures="none")  # no stale figures remain
    assert sorted(p.name for p in out.iterdir()) == [
        "cleaned.tif", "drift.csv", "labels.tif", "pits.csv", "rates.csv", "rates.tif",
        "summary.json", "table.csv", "tracks.csv",
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing temporary left


def test_an_interrupted_write_leaves_the_older_folder(small_result, tmp_path):
    out = tmp_path / "out"
    write_outputs(small_result, out, figures="none")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(folder):
        assert (folder / "table.csv").exists() and not (out / "figures").exists()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_outputs(small_result, out, figures="all", extra=interrupted)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(AFMFileError, match="exists and is not a folder"):
        write_outputs(small_result, out / "table.csv")
