"""Benchmark: wall time and peak memory of ``calcite-afm run`` on a long movie.

Generates a synthetic calcite movie (default 50 frames of 512 x 512 pixels, seed 90210,
a seed no test uses), writes it as TIFF, then runs ``calcite-afm run`` on it in a child
process and reports the child's wall time and peak resident memory, with the pipeline's
own per-stage timings. Targets (issue 4): at most 15 s for the whole run, peak memory
under 2 GB, on a 2-core CPU.

    python benchmarks/pipeline.py [--frames 50] [--size 512] [--figures summary]
                                  [--no-kinetics]

``--no-kinetics`` runs without the rate maps and pit tracks (issue 17's cost target: the
kinetics add at most 20 % to the run; compare the wall times of the two runs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=90210)
    ap.add_argument("--figures", default="summary", choices=["summary", "all", "none"])
    ap.add_argument("--no-kinetics", action="store_true", help="skip rates and pit tracks")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        series = make_series(args.frames, args.size, seed=args.seed)
        movie = tmp / "movie.tif"
        write_tiff(
            movie, series.raw, series.pixel_size_nm, frame_interval_s=series.frame_interval_s
        )
        gen_s = time.perf_counter() - t
        print(f"generated {series.raw.shape} in {gen_s:.1f} s (not counted)")

        out = tmp / "run"
        cmd = [
            sys.executable,
            "-m",
            "napari_calcite_afm.cli",
            "run",
            str(movie),
            "--out",
            str(out),
            "--figures",
            args.figures,
            "--quiet",
        ] + (["--no-kinetics"] if args.no_kinetics else [])
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            print(proc.stderr)
            raise SystemExit(proc.returncode)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads((out / "summary.json").read_text())
        stages = summary["timings_s"]
        print()
        print("| measure | value | target |")
        print("| --- | --- | --- |")
        print(f"| frames | {args.frames} x {args.size} x {args.size} | 50 x 512 x 512 |")
        print(f"| wall time of `calcite-afm run` (process) | {wall:.1f} s | <= 15 s |")
        print(f"| peak resident memory | {peak_mb:.0f} MB | < 2048 MB |")
        for key, value in stages.items():
            print(f"| stage {key} | {value:.2f} s | |")
        print(f"| per frame (process wall / frames) | {1000 * wall / args.frames:.0f} ms | |")


if __name__ == "__main__":
    main()
