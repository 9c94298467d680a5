"""The files a batch writes beside its movie folders, each atomically.

- ``failures.csv``: ``movie, error`` (the one-line message), one row per failed movie
  (only the header when none failed);
- ``all_movies.csv``: the ``table.csv`` of every complete movie, one after the other,
  with a ``movie`` column first;
- ``batch_summary.json``: counts, settings, cluster, wall time and one record per movie.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .._util import atomic_write
from .movies import REPORT_FILES

__all__ = ["write_all_movies", "write_failures"]

FAILURES, ALL_MOVIES, SUMMARY = REPORT_FILES


def write_failures(out_dir: str | Path, records: Sequence[dict]) -> Path:
    """Write ``out_dir/failures.csv``: ``movie, error`` for each failed record.

    Parameters
    ----------
    out_dir : str or Path
        The batch's output folder.
    records : sequence of dict
        Movie records (``movie``, ``status``, ``error``); those with status ``failed``
        are written.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> recs = [{"movie": "a", "status": "ok", "error": ""},
    ...         {"movie": "b", "status": "failed", "error": "b.tif: truncated file"}]
    >>> write_failures(tempfile.mkdtemp(), recs).read_text().splitlines()
    ['movie,error', 'b,b.tif: truncated file']
    """
    path = Path(out_dir) / FAILURES
    with atomic_write(path, "w", what="the failures table", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["movie", "error"])
        for rec in records:
            if rec.get("status") == "failed":
                writer.writerow([rec["movie"], rec.get("error", "")])
    return path


def write_all_movies(out_dir: str | Path, movies: Sequence[str]) -> Path:
    """Write ``out_dir/all_movies.csv``: the tables of ``movies``, with ``movie`` first.

    Each movie's ``out_dir/<movie>/table.csv`` is copied row by row (the values as
    written, so the numbers are those of the movie's own table). Columns are those of
    the first table, then any another one adds (e.g. a three-class model's).

    Parameters
    ----------
    out_dir : str or Path
        The batch's output folder.
    movies : sequence of str
        Names of the complete movies, in the order wanted.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> for name, c in (("a", "0.25"), ("b", "0.5")):
    ...     (out / name).mkdir()
    ...     _ = (out / name / "table.csv").write_text(f"frame,c\\n0,{c}\\n")
    >>> write_all_movies(out, ["a", "b"]).read_text().splitlines()
    ['movie,frame,c', 'a,0,0.25', 'b,0,0.5']
    """
    out = Path(out_dir)
    columns: list[str] = []
    for name in movies:
        with open(out / name / "table.csv", newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        columns += [c for c in header if c not in columns]
    path = out / ALL_MOVIES
    with atomic_write(path, "w", what="the table of all movies", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["movie", *columns], restval="")
        writer.writeheader()
        for name in movies:
            with open(out / name / "table.csv", newline="", encoding="utf-8") as src:
                for row in csv.DictReader(src):
                    writer.writerow({"movie": name, **row})
    return path
