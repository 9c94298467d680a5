"""What limits the monolayer-pit class: one factor changed at a time.

Monolayer etch pits are one 0.31 nm step deep and often a few pixels across. Three-class
networks find them poorly (docs/segmentation.md). Each variant trains the shipped
architecture (U-Net, concat decoder, float32) on three-class labels of the standard
generator with the same budget and scores it on the same held-out frames; the variants
change one thing against the baseline:

* ``baseline``: raw frames (tilt, bow, scan-line offsets, scars, noise), the model's
  levelling, class weighting on;
* ``noise-only``: the artifact-free heights plus white noise of 0.055 nm (the middle of
  the generator's 0.03-0.08 nm): against ``clean``, the noise; against ``baseline``,
  the levelling residue of tilt, bow, scan-line offsets and scars;
* ``clean``: the generator's artifact-free, noise-free heights (``make_frame``'s
  ``artifacts=False`` gives the same: the noise is one of its artifacts);
* ``no-weights``: class weighting off (class balance);
* ``balanced``: patches centred on rare classes too (``balance_patches``);
* ``levels-2`` / ``levels-4``: a U-Net of 2 or 4 levels (receptive field);
* ``linear``: linear input instead of asinh (the compression of 0.31 nm steps);
* ``patch-96``: smaller training patches (more context from padding, less per step).

Printed, per variant: pixel accuracy, the IoU of each class, and the recall of the
monolayer pits as objects (share of true monolayer pits with at least half of their
pixels called monolayer pit) by size (pixels): where it fails says what limits it.

Seeds (no test and no other benchmark uses them): training frames ``98_600_000 + i``,
test frames ``98_700_000 + i``.

Usage::

    python benchmarks/monolayer_limits.py                        # 48 + 12 frames, 256 px
    python benchmarks/monolayer_limits.py --variant baseline --variant clean
    python benchmarks/monolayer_limits.py --quick                # smoke run, 128 px
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import log, publish
from scipy import ndimage as ndi

from napari_calcite_afm.segmentation import (
    TrainConfig,
    predict_stack,
    prepare_labels,
    segmentation_metrics,
    train_model,
)
from napari_calcite_afm.synthetic import make_frame

TRAIN_SEED0 = 98_600_000
TEST_SEED0 = 98_700_000
RESULTS = Path(__file__).resolve().parent / "results" / "monolayer_limits.md"
#: variant: (frames: "raw" | "noise-only" | "clean", TrainConfig changes)
VARIANTS: dict[str, tuple[str, dict]] = {
    "baseline": ("raw", {}),
    "noise-only": ("noise-only", {}),
    "clean": ("clean", {}),
    "no-weights": ("raw", {"class_weighting": False}),
    "balanced": ("raw", {"balance_patches": True}),
    "levels-2": ("raw", {"levels": 2}),
    "levels-4": ("raw", {"levels": 4}),
    "linear": ("raw", {"input_transform": "linear"}),
    "patch-96": ("raw", {"patch_size": 96}),
}
SIZE_BINS = ((0, 20), (20, 80), (80, 320), (320, 10**9))
NOISE_NM = 0.055  # white noise of the noise-only variant, nm


def _frames(kind: str, n: int, size: int, seed0: int):
    """``(heights, labels)`` of ``n`` standard frames of one kind."""
    raw, lab = [], []
    for i in range(n):
        r, clean, lb = make_frame(size, seed=seed0 + i)
        if kind == "noise-only":
            noise = np.random.default_rng(seed0 + i).normal(0.0, NOISE_NM, clean.shape)
            r = clean + noise.astype(clean.dtype)
        raw.append(clean if kind == "clean" else r)
        lab.append(lb)
    return np.stack(raw).astype(np.float32), np.stack(lab)


def _object_recall(truth: np.ndarray, pred: np.ndarray) -> list[tuple[int, int]]:
    """``(found, total)`` true monolayer pits per size bin (pixels), over every frame."""
    counts = [[0, 0] for _ in SIZE_BINS]
    for t, p in zip(truth, pred):
        objects, n = ndi.label(t == 3)
        if not n:
            continue
        index = np.arange(1, n + 1)
        area = ndi.sum(np.ones_like(t, dtype=float), objects, index)
        hit = ndi.sum((p == 3).astype(float), objects, index) / area >= 0.5
        for k, (lo, hi) in enumerate(SIZE_BINS):
            inside = (area >= lo) & (area < hi)
            counts[k][0] += int(hit[inside].sum())
            counts[k][1] += int(inside.sum())
    return [tuple(c) for c in counts]


def _row(name: str, metrics: dict, recall, seconds: float) -> str:
    iou = " | ".join(f"{v:.3f}" for v in metrics["iou"])
    rec = " | ".join(f"{f}/{t}" if t else "-" for f, t in recall)
    return f"| {name} | {metrics['pixel_accuracy']:.4f} | {iou} | {rec} | {seconds:.0f} |"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", choices=list(VARIANTS), default=None)
    ap.add_argument("--n-train", type=int, default=48, help="training frames (48)")
    ap.add_argument("--n-test", type=int, default=12, help="test frames (12)")
    ap.add_argument("--size", type=int, default=256, help="frame size, pixels (256)")
    ap.add_argument("--iterations", type=int, default=800, help="optimiser steps (800)")
    ap.add_argument("--batch-size", type=int, default=8, help="patches per step (8)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (0)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 128 px, 20 iterations")
    ap.add_argument("--out", type=Path, default=None, help=f"markdown file ({RESULTS})")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_test, args.iterations = 128, 4, 2, 20
    variants = args.variant or list(VARIANTS)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    tests = {}
    head = "| variant | pixel acc | IoU pit | IoU terrace | IoU monolayer pit | "
    head += " | ".join(f"mono found, {lo}-{hi if hi < 10**9 else ''} px" for lo, hi in SIZE_BINS)
    lines = [head + " | train s |", "|" + "---|" * (6 + len(SIZE_BINS))]
    for name in variants:
        kind, changes = VARIANTS[name]
        if kind not in tests:
            tests[kind] = _frames(kind, args.n_test, args.size, TEST_SEED0)
        raw, lab = _frames(kind, args.n_train, args.size, TRAIN_SEED0)
        cfg = TrainConfig(
            n_classes=3,
            iterations=args.iterations,
            batch_size=args.batch_size,
            decoder="concat",
            precision="float32",
            device="cpu",
            seed=args.seed,
            **changes,
        )
        t0 = time.perf_counter()
        res = train_model(list(raw), list(lab), cfg)
        seconds = time.perf_counter() - t0
        te_raw, te_lab = tests[kind]
        pred, _ = predict_stack(res.model, te_raw, return_probabilities=False)
        truth = np.stack([prepare_labels(lb, 3) for lb in te_lab])
        metrics = segmentation_metrics(truth, pred, 3)
        lines.append(_row(name, metrics, _object_recall(truth, pred), seconds))
        log(lines[-1])
    command = " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        "# What limits the monolayer-pit class\n\n"
        f"{args.n_train} training frames (seeds {TRAIN_SEED0}+), {args.n_test} test frames "
        f"(seeds {TEST_SEED0}+), standard generator, {args.size} px, {args.iterations} "
        f"iterations of {args.batch_size} patches, torch {torch.__version__}. 'mono found': "
        "true monolayer pits with at least half their pixels called monolayer pit, by "
        "area.\n\n" + "\n".join(lines) + f"\n\nCommand: `python benchmarks/monolayer_limits.py "
        f"{command}`\n"
    )
    publish(text, args.out if args.out is not None else (None if args.quick else RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
