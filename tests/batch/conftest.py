"""Fixtures of the batch tests: tiny movies and a two-process dask cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from napari_calcite_afm.io import write_tiff

#: Synthetic seeds of the batch tests' movies (tests use 0-99).
SEEDS = (21, 22, 23, 24)


def write_movie(path: Path, seed: int, frames: int = 3, size: int = 64) -> Path:
    """A synthetic movie (``make_series``) written as an ImageJ TIFF."""
    from napari_calcite_afm.synthetic import make_series

    s = make_series(frames, size, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tiff(path, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    return path


@pytest.fixture(scope="session")
def movie_files(tmp_path_factory) -> list[Path]:
    """Four 3-frame 64 x 64 movies; two share the stem ``movie`` (folders a/ and b/)."""
    root = tmp_path_factory.mktemp("movies")
    names = ["a/movie.tif", "b/movie.tif", "c.tif", "d.tif"]
    return [write_movie(root / n, seed) for n, seed in zip(names, SEEDS, strict=True)]


@pytest.fixture(scope="session")
def corrupt_file(tmp_path_factory) -> Path:
    """A TIFF that is not one (garbage after the header)."""
    path = tmp_path_factory.mktemp("bad") / "broken.tif"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    return path


@pytest.fixture(scope="module")
def dask_client():
    """A LocalCluster of two worker processes, one thread each, for a module's tests."""
    from distributed import Client, LocalCluster

    saved = dict(os.environ)  # the nanny writes its workers' variables into ours
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(saved)  # later tests' subprocesses must not inherit them
