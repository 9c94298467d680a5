"""Movie inputs: unique names, --from-list files, output-folder checks, completeness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from napari_calcite_afm.batch.movies import (
    Movie,
    check_out_dir,
    collect_movies,
    is_complete,
    movie_names,
    read_movie_list,
)
from napari_calcite_afm.errors import AFMFileError, CalciteAFMError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        (["/d/x.tif", "/d/y.gwy"], ["x", "y"]),
        (["/d/a/movie.tif", "/d/b/movie.tif"], ["a_movie", "b_movie"]),
        (["/d/a/run/movie.tif", "/d/b/run/movie.tif"], ["a_run_movie", "b_run_movie"]),
        (["/d/movie.tif", "/d/movie.gwy"], ["movie_tif", "movie_gwy"]),
        (["/d/a/Movie.tif", "/d/b/movie.tif"], ["a_Movie", "b_movie"]),  # case-blind disks
        (["/d/my scan (2).spm"], ["my_scan_2"]),
        (["/d/.hidden.tif", "/d/failures.csv.tif"], ["hidden", "failures.csv_movie"]),
        # a parent that would give a name another movie has: one more parent
        (
            ["/d/a/movie.tif", "/d/b/movie.tif", "/d/a_movie.tif"],
            ["d_a_movie", "d_b_movie", "a_movie"],
        ),
        # names that only differ in characters that are replaced: numbered
        (["/d/a b/m.tif", "/d/a_b/m.tif"], ["d_a_b_m_tif", "d_a_b_m_tif-2"]),
    ],
)
def test_movie_names_are_unique_and_readable(paths, names):
    assert movie_names(paths) == names


def test_a_movie_given_twice_is_refused(tmp_path):
    movie = _touch(tmp_path / "m.tif")
    with pytest.raises(CalciteAFMError, match=r"movie given twice \(inputs 1 and 3\)"):
        movie_names([movie, tmp_path / "n.tif", tmp_path / "." / "m.tif"])


def test_a_list_file_skips_comments_and_reads_paths_from_its_folder(tmp_path):
    a = _touch(tmp_path / "data" / "a.tif")
    b = _touch(tmp_path / "b.tif")
    listing = tmp_path / "data" / "list.txt"
    listing.write_text(f"# movies of Monday\n\n  a.tif  \n{b}\n")
    assert read_movie_list(listing) == [str(a), str(b)]


def test_a_list_naming_a_missing_movie_gives_its_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# header\nnope.tif\n")
    with pytest.raises(AFMFileError, match=r"list\.txt: line 2: nope\.tif: no such file"):
        read_movie_list(listing)
    with pytest.raises(AFMFileError, match="movie list not found"):
        read_movie_list(tmp_path / "other.txt")


def test_collect_movies_checks_every_input(tmp_path):
    frames = tmp_path / "frames"
    _touch(frames / "f1.tif")
    movie = _touch(tmp_path / "m.spm")
    listing = tmp_path / "list.txt"
    listing.write_text("frames\n")
    got = collect_movies([movie], from_list=listing)
    assert got == [Movie("m", str(movie)), Movie("frames", str(frames))]
    with pytest.raises(AFMFileError, match="no such file or folder"):
        collect_movies([tmp_path / "gone.tif"])
    with pytest.raises(AFMFileError, match=r"not a file type calcite-afm reads \(.png\)"):
        collect_movies([_touch(tmp_path / "p.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AFMFileError, match="holds no file that calcite-afm reads"):
        collect_movies([tmp_path / "empty"])
    with pytest.raises(CalciteAFMError, match="no movies given"):
        collect_movies([])


def test_the_output_folder_never_replaces_an_input(tmp_path):
    frames = tmp_path / "m"
    _touch(frames / "f1.tif")
    movies = [Movie("m", str(frames))]
    with pytest.raises(AFMFileError, match="is an input"):
        check_out_dir(tmp_path, movies)
    with pytest.raises(AFMFileError, match="is an input"):  # a folder that holds an input
        check_out_dir(tmp_path, [Movie("m", str(frames / "f1.tif"))])
    with pytest.raises(AFMFileError, match="exists and is not a folder"):
        check_out_dir(frames / "f1.tif", movies)
    assert check_out_dir(tmp_path / "out", movies) == tmp_path / "out"


def _finished(folder: Path, **summary) -> Path:
    folder.mkdir()
    (folder / "table.csv").write_text("frame\n")
    (folder / "labels.tif").write_bytes(b"x")
    files = {"table": str(folder / "table.csv"), "labels": "/elsewhere/labels.tif"}
    (folder / "summary.json").write_text(json.dumps({"files": files, **summary}))
    return folder


def test_complete_means_the_summary_parses_and_its_files_are_there(tmp_path):
    cfg = {"lags": [1, 2], "figures": "none"}
    folder = _finished(tmp_path / "m", config=cfg, model={"source": "/m/default.pt"})
    assert is_complete(folder)
    assert is_complete(folder, config={"lags": (1, 2), "figures": "none"})
    assert not is_complete(folder, config={"lags": [1], "figures": "none"})
    assert is_complete(folder, model_source="/m/default.pt")
    assert not is_complete(folder, model_source="/m/other.pt")
    (folder / "labels.tif").unlink()
    assert not is_complete(folder)
    assert not is_complete(tmp_path / "missing")
    broken = _finished(tmp_path / "broken")
    (broken / "summary.json").write_text('{"files": {"table": ')  # cut short
    assert not is_complete(broken)
    (broken / "summary.json").write_text("[1, 2]")
    assert not is_complete(broken)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_refused_before_it_can_block_a_worker(tmp_path):
    os.mkfifo(tmp_path / "pipe.tif")
    with pytest.raises(AFMFileError, match="not a regular file or a folder"):
        collect_movies([tmp_path / "pipe.tif"])
