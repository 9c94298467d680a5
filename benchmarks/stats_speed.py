"""Speed of the multimodal Gaussian fit (napari_calcite_afm.stats.fit_frame).

Fits one synthetic 512 x 512 frame drawn from the model (two correlated Gaussian fields
over a pit mask with c = 0.3) at lags 1, 2, 4, 8 px along both axes, with every statistic:
region parameters, rho and p_ij per lag, histograms, exact KS / L1 / JS for heights and
increments, and the EM comparison. Prints the median (and best) wall-clock time per frame
over ``--runs`` runs after one warm-up, and the CPU time of this process, which is less
disturbed by other jobs on a busy machine; then the same through ``fit_stack`` (frames
share their scratch arrays, which saves the page faults of fresh allocations). By
default the height fit and the lags run on one thread per core (``workers=None``); the
``workers=1`` row is the single-thread figure (what the one-click pipeline uses, where the
fit already runs beside the segmentation).

Usage::

    python benchmarks/stats_speed.py [--size 512] [--runs 20] [--n-classes 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy import ndimage as ndi

from napari_calcite_afm.stats import fit_frame, fit_stack


def model_frame(size: int, seed: int = 0, n_classes: int = 2):
    """Heights (nm, float32) and labels of a frame drawn from the two-mode model."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    fields = [ndi.gaussian_filter(rng.normal(size=shape), 3.0, mode="wrap") for _ in range(2)]
    fields = [f / f.std() for f in fields]
    smooth = ndi.gaussian_filter(rng.normal(size=shape), 15.0, mode="wrap")
    pits = smooth < np.quantile(smooth, 0.3)
    z = np.where(pits, -8.0 + 1.0 * fields[0], 0.5 * fields[1])
    labels = np.where(pits, 1, 2).astype(np.uint8)
    if n_classes == 3:  # a few monolayer pits, one 0.31 nm step deep
        mono = ~pits & (ndi.gaussian_filter(rng.normal(size=shape), 4.0, mode="wrap") > 0.05)
        labels[mono] = 3
        z[mono] -= 0.31
    return z.astype(np.float32), labels


def time_fit(z, labels, runs: int, **kwargs) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time, in ms."""
    fit_frame(z, labels, **kwargs)  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fit_frame(z, labels, **kwargs)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e3 * float(np.median(wall)), 1e3 * min(wall), 1e3 * float(np.median(cpu))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="frame size in pixels (square)")
    ap.add_argument("--runs", type=int, default=20, help="timed runs (median reported)")
    ap.add_argument("--n-classes", type=int, default=2, choices=(2, 3))
    args = ap.parse_args()

    z, labels = model_frame(args.size, n_classes=args.n_classes)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}; numpy {np.__version__}"
    )
    print(
        f"frame {args.size} x {args.size}, lags (1, 2, 4, 8) px, axis both, "
        f"{args.n_classes} classes, {args.runs} runs"
    )
    cases = [
        ("all statistics (histograms, KS/L1/JS, EM)", {}),
        ("all statistics, one thread (workers=1)", {"workers": 1}),
        ("without EM", {"em": False}),
        ("without EM and histograms", {"em": False, "histograms": False}),
    ]
    kwargs = {"axis": "both", "pixel_size_nm": 11.7, "n_classes": args.n_classes}
    stack = np.stack([z] * args.runs)
    lab = np.stack([labels] * args.runs)
    fit_stack(stack[:2], lab[:2], (1, 2, 4, 8), **kwargs)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    fit_stack(stack, lab, (1, 2, 4, 8), **kwargs)
    wall = 1e3 * (time.perf_counter() - t0) / args.runs
    cpu = 1e3 * (time.process_time() - c0) / args.runs
    print(
        f"{'fit_stack, all statistics (mean per frame)':44s} mean   {wall:6.1f} ms/frame"
        f"                 CPU {cpu:6.1f}"
    )
    for name, extra in cases:
        med, best, cpu = time_fit(
            z, labels, args.runs, lags=(1, 2, 4, 8), axis="both", pixel_size_nm=11.7,
            n_classes=args.n_classes, **extra,
        )  # fmt: skip
        print(f"{name:44s} median {med:6.1f} ms/frame  best {best:6.1f}  CPU {cpu:6.1f}")


if __name__ == "__main__":
    main()
