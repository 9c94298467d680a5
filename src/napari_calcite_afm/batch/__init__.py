"""Many movies at once on dask.distributed (``calcite-afm batch``).

:func:`run_batch` runs the one-click pipeline
(:func:`napari_calcite_afm.pipeline.run_pipeline`) on every movie as one dask task, on a
local cluster of worker processes or on an existing scheduler (a SLURM or PBS cluster
through ``dask-jobqueue``; see ``docs/batch.md``). Each movie's folder ``DIR/<movie>/`` is
written atomically; a failing movie is listed in ``DIR/failures.csv`` and never stops the
others; ``DIR/all_movies.csv`` holds every movie's table with a ``movie`` column first and
``DIR/batch_summary.json`` the counts, settings and timings.

- :mod:`~napari_calcite_afm.batch.movies`: inputs, ``--from-list`` files, unique movie
  names, the completeness check of ``--resume``;
- :mod:`~napari_calcite_afm.batch.cluster`: how many workers and threads, the local
  cluster or the scheduler;
- :mod:`~napari_calcite_afm.batch.worker`: the task run per movie, the per-process model
  cache and thread settings;
- :mod:`~napari_calcite_afm.batch.report`: ``failures.csv`` and ``all_movies.csv``;
- :mod:`~napari_calcite_afm.batch.run`: :func:`run_batch` and its progress lines.

Examples
--------
>>> from napari_calcite_afm.batch import movie_names, plan_workers
>>> movie_names(["/data/a/movie.tif", "/data/b/movie.tif"])
['a_movie', 'b_movie']
>>> plan_workers(8, 2, cpus=16)
WorkerPlan(workers=2, threads=8)
"""

from __future__ import annotations

from .cluster import WorkerPlan, open_cluster, plan_workers
from .movies import Movie, collect_movies, is_complete, movie_names, read_movie_list
from .run import BatchResult, format_progress, run_batch
from .worker import cached_model, run_movie

__all__ = [
    "BatchResult",
    "Movie",
    "WorkerPlan",
    "cached_model",
    "collect_movies",
    "format_progress",
    "is_complete",
    "movie_names",
    "open_cluster",
    "plan_workers",
    "read_movie_list",
    "run_batch",
    "run_movie",
]
