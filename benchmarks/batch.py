"""Benchmark: ``calcite-afm batch`` on 1 and 2 workers against sequential ``run`` calls.

Generates 8 synthetic movies of 20 frames of 512 x 512 pixels (seeds 95000-95007, seeds
no test uses), writes them as TIFF, then measures, one after the other:

- ``calcite-afm run`` called once per movie, in turn (a shell loop: each call a new
  process that imports the library and reads the model);
- :func:`napari_calcite_afm.batch.run_batch` on a local cluster of 1 worker process
  (with every core) and of 2 worker processes (half the cores each), cluster start-up
  included.

It prints the wall times, the wall time per movie, the mean time a worker spent per
movie, the data volume per movie (input TIFF, output folder) and the peak memory of one
``run`` process, and checks that every ``table.csv`` equals the one ``run`` wrote.

    python benchmarks/batch.py [--movies 8] [--frames 20] [--size 512] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from napari_calcite_afm._util import available_cpus
from napari_calcite_afm.batch import run_batch
from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series

SEED0 = 95000


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _movies(folder: Path, n: int, frames: int, size: int) -> list[Path]:
    paths = []
    for i in range(n):
        s = make_series(frames, size, seed=SEED0 + i)
        path = folder / f"movie{i}.tif"
        write_tiff(path, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
        paths.append(path)
    return paths


def _sequential_runs(movies: list[Path], out: Path, figures: str) -> float:
    t = time.perf_counter()
    for movie in movies:
        cmd = [sys.executable, "-m", "napari_calcite_afm.cli", "run", str(movie)]
        cmd += ["--out", str(out / movie.stem), "--figures", figures, "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"run failed on {movie}: {proc.stderr}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movies", type=int, default=8)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--workers", default="1,2", help="worker counts to time (1,2)")
    ap.add_argument("--figures", default="summary", choices=["summary", "all", "none"])
    args = ap.parse_args()
    counts = [int(v) for v in args.workers.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        movies = _movies(tmp / "in", args.movies, args.frames, args.size)
        shape = f"{args.frames} x {args.size} x {args.size}"
        gen_s = time.perf_counter() - t
        print(f"generated {len(movies)} movies of {shape} in {gen_s:.0f} s (not counted)")
        print(f"{available_cpus()} cores")
        seq = _sequential_runs(movies, tmp / "run", args.figures)
        rows = [("sequential `calcite-afm run`", seq, None)]
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        same: dict[int, int] = {}
        for n in counts:
            out = tmp / f"batch{n}"
            t = time.perf_counter()
            result = run_batch(movies, out, workers=n, config={"figures": args.figures})
            wall = time.perf_counter() - t
            if result.exit_status != 0:
                raise SystemExit(f"batch failed: {[r['error'] for r in result.records]}")
            mean = sum(r["seconds"] for r in result.records) / len(result.records)
            threads = result.cluster["threads"]
            rows.append((f"`batch --workers {n}` ({threads} thread(s) each)", wall, mean))
            same[n] = sum(
                (out / m.stem / "table.csv").read_bytes()
                == (tmp / "run" / m.stem / "table.csv").read_bytes()
                for m in movies
            )

        base = rows[0][1]
        print()
        print("| how | wall time | per movie (wall / movies) | speed-up | worker s per movie |")
        print("| --- | --- | --- | --- | --- |")
        for name, wall, mean in rows:
            per = wall / len(movies)
            worker = "" if mean is None else f"{mean:.1f} s"
            print(f"| {name} | {wall:.1f} s | {per:.1f} s | {base / wall:.2f} | {worker} |")
        print()
        print(f"input per movie: {_size_mb(movies[0]):.1f} MB (float32 TIFF)")
        out_mb = _size_mb(tmp / "run" / movies[0].stem)
        print(f"output folder per movie: {out_mb:.1f} MB (figures {args.figures})")
        print(f"peak memory of one run process: {peak_mb:.0f} MB")
        for n, k in same.items():
            print(f"batch --workers {n}: {k} of {len(movies)} table.csv equal to run's")


if __name__ == "__main__":
    main()
