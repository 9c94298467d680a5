"""The batch reports: failures.csv and all_movies.csv."""

from __future__ import annotations

import csv

from napari_calcite_afm.batch.report import write_all_movies, write_failures


def test_failures_lists_only_the_failed_movies_with_their_one_line_error(tmp_path):
    records = [
        {"movie": "a", "status": "ok", "error": ""},
        {"movie": "b", "status": "failed", "error": 'b.tif: bad, "quoted" header'},
        {"movie": "c", "status": "skipped", "error": ""},
    ]
    with open(write_failures(tmp_path, records), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["movie", "error"], ["b", 'b.tif: bad, "quoted" header']]
    with open(write_failures(tmp_path, records[:1]), newline="") as fh:
        assert list(csv.reader(fh)) == [["movie", "error"]]


def test_all_movies_unites_the_columns_of_different_tables(tmp_path):
    for name, text in (("two", "frame,c\n0,0.5\n"), ("three", "frame,c,c_M\n0,0.25,0.1\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "table.csv").write_text(text)
    with open(write_all_movies(tmp_path, ["two", "three"]), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["movie", "frame", "c", "c_M"],
        ["two", "0", "0.5", ""],
        ["three", "0", "0.25", "0.1"],
    ]
    assert write_all_movies(tmp_path, []).read_text().splitlines() == ["movie"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all_movies.csv", "three", "two"]
