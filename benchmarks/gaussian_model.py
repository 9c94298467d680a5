"""The multimodal Gaussian model on a synthetic calcite movie: parameters against time,
KS distances of the segmentation-based fit and of the EM fit, side by side.

A movie (default 20 frames of 512 x 512 pixels, seed 31337, which no test uses) is
levelled, segmented with the shipped default model, and fitted frame by frame, once with
the network's labels and once with the ground truth labels. For each frame it prints c,
mu_A, sigma_A, rho_A, mu_B, sigma_B, rho_B at lag 1, the KS distance of the heights for
the segmentation-based mixture and for the EM mixture fitted to Z' alone, and the KS
distance of the increments. It writes a markdown table to
``benchmarks/results/gaussian_model.md`` and figures to ``docs/images/``.

    python benchmarks/gaussian_model.py [--frames 20] [--size 512] [--seed 31337]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from napari_calcite_afm.level import level_stack
from napari_calcite_afm.pipeline import fit_series
from napari_calcite_afm.plotting import frame_figure, parameters_figure
from napari_calcite_afm.segmentation import load_default_model, predict_stack, segmentation_metrics
from napari_calcite_afm.synthetic import make_series

ROOT = Path(__file__).resolve().parents[1]


def _fmt(v: float, nd: int = 3) -> str:
    return "" if not math.isfinite(v) else f"{v:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=31337)
    ap.add_argument("--lags", default="1,2,4,8")
    args = ap.parse_args()
    lags = tuple(int(v) for v in args.lags.split(","))

    s = make_series(args.frames, args.size, seed=args.seed)
    model = load_default_model(2)
    # level as the model does (raw frames pair with labels_raw pixel by pixel)
    z = level_stack(s.raw, model.level_settings)
    truth = np.where(s.labels_raw == 3, 2, s.labels_raw).astype(np.uint8)
    seg, _ = predict_stack(model, z, levelled=True, return_probabilities=False)
    m = segmentation_metrics(truth, seg, 2)
    print(
        f"segmentation vs truth: pixel accuracy {m['pixel_accuracy']:.4f}, "
        f"mean accuracy {m['mean_accuracy']:.4f}, IoU A {m['iou'][0]:.3f}, B {m['iou'][1]:.3f}"
    )
    kw = dict(pixel_size_nm=s.pixel_size_nm, frame_times_s=s.frame_times_s, lags=lags)
    rows_seg, fits_seg = fit_series(z, seg, **kw)
    rows_true, _ = fit_series(z, truth, **kw)

    lines = [
        f"Synthetic movie: {args.frames} frames of {args.size} x {args.size} px, "
        f"{s.pixel_size_nm} nm/px, seed {args.seed}; labels from the shipped default model "
        f"(pixel accuracy {m['pixel_accuracy']:.4f}, multilayer-pit IoU {m['iou'][0]:.3f}). "
        f"Lag 1 px, pairs along x and y pooled.",
        "",
        "| frame | t (min) | c | mu_A | sigma_A | rho_A | mu_B | sigma_B | rho_B | KS Z' (seg) "
        "| KS Z' (EM) | KS dZ (seg) | KS Z' (truth labels) | pits | retreat (nm/min) |",
        "|" + " --- |" * 15,
    ]
    sel = [r for r in rows_seg if r["lag_px"] == lags[0]]
    sel_true = [r for r in rows_true if r["lag_px"] == lags[0]]
    for r, rt in zip(sel, sel_true):
        lines.append(
            f"| {r['frame']} | {r['time_s'] / 60:.0f} | {_fmt(r['c'])} | {_fmt(r['mu_A'], 2)} "
            f"| {_fmt(r['sigma_A'], 2)} | {_fmt(r['rho_A'])} | {_fmt(r['mu_B'], 2)} "
            f"| {_fmt(r['sigma_B'], 3)} | {_fmt(r['rho_B'])} | {_fmt(r['ks_height'])} "
            f"| {_fmt(r['em_ks_height'])} | {_fmt(r['ks_increment'])} | {_fmt(rt['ks_height'])} "
            f"| {r['pit_count']} | {_fmt(r['retreat_nm_per_min'], 3)} |"
        )

    def mean(rows, key):
        v = np.array([r[key] for r in rows], float)
        return float(np.nanmean(v))

    lines.append("")
    lines.append("Means over frames, by lag:")
    lines.append("")
    lines.append(
        "| lag (px) | KS Z' segmentation | KS Z' EM | KS dZ segmentation | L1 dZ | rho_A | rho_B |"
    )
    lines.append("|" + " --- |" * 7)
    for lag in lags:
        rs = [r for r in rows_seg if r["lag_px"] == lag]
        lines.append(
            f"| {lag} | {mean(rs, 'ks_height'):.4f} | {mean(rs, 'em_ks_height'):.4f} "
            f"| {mean(rs, 'ks_increment'):.4f} | {mean(rs, 'l1_increment'):.4f} "
            f"| {mean(rs, 'rho_A'):.4f} | {mean(rs, 'rho_B'):.4f} |"
        )
    text = "\n".join(lines)
    print(text)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gaussian_model.md").write_text(text + "\n")
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    last = len(fits_seg) - 1
    frame_figure(fits_seg[last], frame=last, time_s=float(s.frame_times_s[last])).savefig(
        images / "gaussian-fit-frame.png", dpi=90
    )
    parameters_figure(rows_seg).savefig(images / "parameters-vs-time.png", dpi=90)
    print(f"wrote {out / 'gaussian_model.md'} and figures in {images}")


if __name__ == "__main__":
    main()
