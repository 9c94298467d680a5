"""Figures of docs/synthetic-data.md: the wide variety and the cellular generator.

Writes ``docs/images/synthetic-wide.png`` (frames of the standard and wide varieties,
heights and labels) and ``docs/images/synthetic-cellular.png`` (cellular frames at
several pixel sizes, and a movie of a multilayer pit growing), and prints a table of
what each generator's frames hold (class fractions, pixel sizes, pit depths, raw RMS).

Seeds: 98,300,000+ (figures and table; no test or benchmark uses them).

Usage::

    python scripts/synthetic_figures.py [--out docs/images] [--n-stats 24]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_calcite_afm.synthetic import (
    make_cellular_series,
    make_frame,
    make_training_frames,
)

SEED0 = 98_300_000
ROOT = Path(__file__).resolve().parents[1]
LABEL_COLOURS = matplotlib.colors.ListedColormap(["#000000", "#d62728", "#e8e8e8", "#1f77b4"])


def _flat(z: np.ndarray) -> np.ndarray:
    """Heights minus their best plane, clipped to the 1-99.5 % range (for display)."""
    n, m = z.shape
    yy, xx = np.mgrid[:n, :m]
    a = np.c_[np.ones(z.size), xx.ravel(), yy.ravel()]
    coef, *_ = np.linalg.lstsq(a, z.ravel().astype(np.float64), rcond=None)
    r = z - (a @ coef).reshape(z.shape)
    lo, hi = np.percentile(r, [1, 99.5])
    return np.clip(r, lo, hi)


def _show(ax, img, title=None, labels=False):
    if labels:
        ax.imshow(img, cmap=LABEL_COLOURS, vmin=0, vmax=3, interpolation="nearest")
    else:
        ax.imshow(img, cmap="afmhot")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def wide_figure(path: Path) -> None:
    """Standard frames (top left pair) next to wide ones: clean heights and labels."""
    cases = [("standard", SEED0 + k) for k in range(2)] + [("wide", SEED0 + k) for k in range(4)]
    fig, axs = plt.subplots(2, len(cases), figsize=(2.3 * len(cases), 4.9))
    for col, (variety, seed) in enumerate(cases):
        _raw, clean, labels, px = make_frame(
            384, seed=seed, variety=variety, return_pixel_size=True
        )
        _show(axs[0, col], _flat(clean), f"{variety}, {px:.1f} nm/px")
        _show(axs[1, col], labels, labels=True)
    fig.suptitle("clean heights (plane removed) and labels: red multilayer, blue monolayer pit")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def cellular_figure(path: Path) -> None:
    """Cellular frames at several pixel sizes, then a movie of a multilayer pit."""
    fig, axs = plt.subplots(2, 4, figsize=(9.4, 5.0))
    for col, px in enumerate((3.0, 8.0, 16.0)):
        s = make_cellular_series(1, 320, seed=SEED0 + 10 + col, pixel_size_nm=px, drift=False)
        _show(axs[0, col], _flat(s.clean[0]), f"cellular, {px:g} nm/px")
        _show(axs[1, col], s.labels[0], labels=True)
    movie = make_cellular_series(
        7,
        160,
        seed=SEED0 + 20,
        pixel_size_nm=12.0,
        monolayer_density_per_um2=1.0,
        n_multilayer=1,
        history=0.2,
        drift=False,
    )
    _show(axs[0, 3], _flat(movie.raw[-1]), "raw frame 6 (artifacts)")
    rim = np.zeros(movie.labels.shape[1:], float)
    for k in reversed(range(0, movie.n_frames, 2)):  # the younger footprints on top
        rim[(movie.labels[k] == 1)] = k + 1
    axs[1, 3].imshow(rim, cmap="viridis", interpolation="nearest")
    axs[1, 3].set_xticks([])
    axs[1, 3].set_yticks([])
    axs[1, 3].set_title("pit footprint, frames 0-6", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def stats_table(n: int) -> str:
    """What the frames of each generator hold (256 px frames, seeds from SEED0 + 100)."""
    lines = [
        "| generator | pixel size, nm | multilayer | terrace | monolayer | "
        "deepest pit, nm (median) | raw RMS after plane, nm (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in ("standard", "wide", "cellular"):
        raw, labels, px = make_training_frames(g, n, 256, seed0=SEED0 + 100, return_pixel_size=True)
        frac = [float((labels == v).mean()) for v in (1, 2, 3)]
        depth, rms = [], []
        for r, lab in zip(raw, labels):
            flat = _flat(r)
            rms.append(float(flat.std()))
            if (lab == 1).any() and (lab == 2).any():
                depth.append(float(np.median(flat[lab == 2]) - np.percentile(flat[lab == 1], 2)))
        lines.append(
            f"| {g} | {px.min():.1f}-{px.max():.1f} | {frac[0]:.3f} | {frac[1]:.3f} | "
            f"{frac[2]:.3f} | {np.median(depth) if depth else float('nan'):.2f} | "
            f"{np.median(rms):.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--n-stats", type=int, default=24, help="frames per generator (24)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wide_figure(args.out / "synthetic-wide.png")
    cellular_figure(args.out / "synthetic-cellular.png")
    print(f"wrote {args.out / 'synthetic-wide.png'} and {args.out / 'synthetic-cellular.png'}")
    if args.n_stats:
        print(stats_table(args.n_stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
