"""Cross-generator accuracy: train on one synthetic generator, test on another.

For every training generator X and test generator Y (``standard``, ``wide``,
``cellular``; ``mix`` = wide and cellular frames alternating, as a training set), the
shipped architecture (the U-Net on multiscale features with the concat decoder, float32
steps: ``scripts/train_default_model.py``; ``--width``, ``--decoder`` and ``--precision``
change it) is trained on frames of X and scored on
held-out frames of Y. A model that only learnt one generator's look scores well on the
diagonal and poorly off it; the off-diagonal cells are the honest estimate of how a
model trained on synthetic data does on surfaces made another way.

Printed (and written to ``--out``, markdown): per number of classes, the matrix of
pixel accuracy / multilayer-pit IoU (2 classes) or pixel accuracy / monolayer-pit IoU
(3 classes), the training time, and the seconds per generated frame of each generator.

Seeds (no test and no other benchmark uses them): training frames ``98_000_000 + i``,
test frames ``98_100_000 + i`` (the same test frames for every training generator).

Usage::

    python benchmarks/cross_generator.py                       # 120 + 24 frames of 512 px
    python benchmarks/cross_generator.py --n-classes 2 3 --iterations 3200 --batch-size 32 \\
        --device cuda --jobs 16                                # the shipped budget, GPU
    python benchmarks/cross_generator.py --train mix --train standard   # mixed training
    python benchmarks/cross_generator.py --quick               # smoke run, 2-4 minutes on 2 cores
    python benchmarks/cross_generator.py --train none --n-classes 2 \
        --model "standard (old default.pt)=old.pt" --model "all=src/.../default.pt"
                                               # score saved models (e.g. the shipped ones)

``--model NAME=PATH`` adds a row for a saved model (no training; its training time is
the one it records, and the classes its own); ``--train none`` trains nothing. Every
row also gives the inference time per frame (ms, this machine, one frame at a time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import log, publish

from napari_calcite_afm.segmentation import (
    TrainConfig,
    load_model,
    predict_stack,
    prepare_labels,
    segmentation_metrics,
    train_model,
)
from napari_calcite_afm.synthetic import GENERATORS, TRAINING_GENERATORS, make_training_frames
from napari_calcite_afm.synthetic.cellular_params import PIT_LABELS

TRAIN_SEED0 = 98_000_000
TEST_SEED0 = 98_100_000
RESULTS = Path(__file__).resolve().parent / "results" / "cross_generator.md"


def _frames(
    gen: str, n: int, size: int, seed0: int, jobs: int, timing: dict, most: float, cellular=None
):
    """Frames of ``gen`` (those over ``most`` multilayer pit dropped) and their pixel sizes;
    records seconds per frame in ``timing``; ``cellular``: settings of cellular frames."""
    t0 = time.perf_counter()
    raw, lab, px = make_training_frames(
        gen, n, size, seed0=seed0, jobs=jobs, return_pixel_size=True, max_pit_fraction=most,
        cellular_options=cellular,
    )  # fmt: skip
    took = time.perf_counter() - t0
    timing.setdefault(gen, []).append(took / max(n, 1))
    log(
        f"  {len(raw)} of {n} {gen} frames kept, {size} px, in {took:.1f} s (pixel sizes "
        f"{px.min():.1f}-{px.max():.1f} nm)"
    )
    return raw, lab


def _score(model, raw, lab3, n_classes: int, closed: bool = True) -> dict:
    """Pixel accuracy, multilayer-pit IoU, (3 classes) monolayer-pit IoU, ms per frame
    (``closed``: pits that are not closed depressions relabelled terrace, the default of
    ``predict_stack``)."""
    t0 = time.perf_counter()
    pred, _ = predict_stack(model, raw, return_probabilities=False, closed=closed)
    ms = 1e3 * (time.perf_counter() - t0) / max(len(raw), 1)
    truth = np.stack([prepare_labels(lb, n_classes) for lb in lab3])
    m = segmentation_metrics(truth, pred, n_classes)
    out = {"acc": m["pixel_accuracy"], "pit": m["iou"][0], "mono": float("nan"), "ms": ms}
    if n_classes == 3:
        out["mono"] = m["iou"][2]
    return out


def _table(n_classes: int, train_gens, test_gens, cells: dict, train_s: dict) -> str:
    """The markdown matrix of one number of classes."""
    second = "multilayer-pit IoU" if n_classes == 2 else "monolayer-pit IoU"
    head = "| train \\ test | " + " | ".join(test_gens) + " | train s | ms / frame |"
    lines = [
        f"**{n_classes} classes**: pixel accuracy / {second}",
        "",
        head,
        "|" + "---|" * (len(test_gens) + 3),
    ]
    for x in train_gens:
        if (n_classes, x) not in train_s:
            continue
        row = []
        for y in test_gens:
            c = cells[(n_classes, x, y)]
            row.append(f"{c['acc']:.4f} / {c['pit'] if n_classes == 2 else c['mono']:.3f}")
        ms = np.mean([cells[(n_classes, x, y)]["ms"] for y in test_gens])
        lines.append(
            f"| {x} | " + " | ".join(row) + f" | {train_s[(n_classes, x)]:.0f} | {ms:.0f} |"
        )
    return "\n".join(lines)


def _saved_note(saved: dict) -> str:
    """The sentence on the rows of saved models (none without them)."""
    if not saved:
        return ""
    names = ", ".join(f"{k} (`{Path(v).name}`)" for k, v in saved.items())
    return (
        f" Saved models scored as they are, with their own training budget and data: {names};"
        " their train s is what they record."
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--train",
        action="append",
        choices=(*TRAINING_GENERATORS, "none"),
        default=None,
        help="training generator (repeat; default: standard, wide, cellular; none: no training)",
    )
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also score a saved model as the row NAME (repeat)",
    )
    ap.add_argument(
        "--test",
        action="append",
        choices=GENERATORS,
        default=None,
        help="test generator (repeat; default: all three)",
    )
    ap.add_argument("--n-classes", type=int, nargs="+", choices=(2, 3), default=[2])
    ap.add_argument("--n-train", type=int, default=120, help="training frames (120)")
    ap.add_argument("--n-test", type=int, default=24, help="test frames per generator (24)")
    ap.add_argument("--size", type=int, default=512, help="frame size, pixels (512)")
    ap.add_argument("--iterations", type=int, default=1600, help="optimiser steps (1600)")
    ap.add_argument("--batch-size", type=int, default=16, help="patches per step (16)")
    ap.add_argument("--patch-size", type=int, default=160, help="training patch, pixels (160)")
    ap.add_argument("--levels", type=int, default=3, help="U-Net levels (3, the shipped models)")
    ap.add_argument("--width", type=int, default=8, help="U-Net filters of the first level (8)")
    ap.add_argument(
        "--decoder",
        choices=("concat", "add"),
        default="concat",
        help="U-Net decoder (concat, the shipped models; add, TrainConfig's default)",
    )
    ap.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        default="float32",
        help="training-step arithmetic (float32, the shipped models)",
    )
    ap.add_argument(
        "--no-closed",
        action="store_true",
        help="score the network's labels as they are (no closed-depression check)",
    )
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda")
    ap.add_argument("--jobs", type=int, default=1, help="processes generating frames (1)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (0)")
    ap.add_argument(
        "--test-seed0",
        type=int,
        default=TEST_SEED0,
        help=f"seed of the first test frame ({TEST_SEED0}; 9100000: the segmentation "
        "benchmark's test frames, with --test standard --n-test 40)",
    )
    ap.add_argument(
        "--max-pit-fraction",
        type=float,
        default=0.8,
        help="drop training and test frames with more multilayer pit than this (0.8; 1: "
        "keep all): a frame wholly inside one pit cannot be told from terrace",
    )
    ap.add_argument(
        "--cellular-labels",
        choices=PIT_LABELS,
        default="basin",
        help="what a cellular frame labels multilayer pit (basin: its closed-depression "
        "part, the default; footprint: all its loops dissolved, as the standard generator)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 12 + 4 frames of 128 px, 30 iterations of 8",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"markdown results file (default {RESULTS}; none with --quick)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_test = 128, 12, 4
        args.iterations, args.batch_size = 30, 8
    train_gens = [g for g in (args.train or list(GENERATORS)) if g != "none"]
    saved = dict(item.split("=", 1) for item in args.model)
    most = None if args.max_pit_fraction >= 1 else args.max_pit_fraction
    test_gens = args.test or list(GENERATORS)
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    log(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    timing: dict = {}
    log("test frames:")
    cellular = {"pit_labels": args.cellular_labels}
    if args.cellular_labels != "basin":
        log(f"cellular frames label multilayer pits by their {args.cellular_labels}")
    tests = {
        y: _frames(y, args.n_test, args.size, args.test_seed0, args.jobs, timing, most, cellular)
        for y in test_gens
    }
    cells, train_s = {}, {}
    for x in train_gens:
        log(f"training on {x}:")
        raw, lab = _frames(
            x, args.n_train, args.size, TRAIN_SEED0, args.jobs, timing, most, cellular
        )
        for nc in args.n_classes:
            cfg = TrainConfig(
                n_classes=nc,
                iterations=args.iterations,
                batch_size=args.batch_size,
                patch_size=args.patch_size,
                levels=args.levels,
                width=args.width,
                decoder=args.decoder,
                precision=args.precision,
                device=args.device,
                seed=args.seed,
            )
            res = train_model(list(raw), list(lab), cfg)
            train_s[(nc, x)] = res.elapsed_s
            for y in test_gens:
                cells[(nc, x, y)] = c = _score(res.model, *tests[y], nc, not args.no_closed)
                log(
                    f"  {nc} classes, train {x} -> test {y}: acc {c['acc']:.4f} pit IoU "
                    f"{c['pit']:.3f} mono IoU {c['mono']:.3f}"
                )
    for name, path in saved.items():
        model = load_model(path)
        nc = model.n_classes
        train_s[(nc, name)] = float(model.info.get("training_time_s", float("nan")))
        for y in test_gens:
            cells[(nc, name, y)] = c = _score(model, *tests[y], nc, not args.no_closed)
            log(
                f"  {name} ({nc} classes) -> test {y}: acc {c['acc']:.4f} pit IoU "
                f"{c['pit']:.3f} mono IoU {c['mono']:.3f}, {c['ms']:.0f} ms / frame"
            )
    rows = train_gens + list(saved)
    tables = [_table(nc, rows, test_gens, cells, train_s) for nc in args.n_classes]
    gen_line = ", ".join(f"{g} {np.mean(t):.2f} s" for g, t in timing.items())
    command = " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        "# Cross-generator accuracy\n\n"
        + (
            f"U-Net ({args.decoder} decoder, width {args.width}, {args.precision} steps), "
            f"{args.iterations} "
            f"iterations of {args.batch_size} patches of {args.patch_size} px, {args.levels} "
            f"levels, {args.n_train} training frames (seeds "
            f"{TRAIN_SEED0}+); "
            if train_gens
            else ""
        )
        + f"{args.n_test} test frames per generator (seeds {args.test_seed0}+), {args.size} px, "
        f"frames over {args.max_pit_fraction:g} multilayer pit dropped, "
        + (
            "labels as the network gave them, "
            if args.no_closed
            else "open pits relabelled terrace (predict_stack's closed-depression check), "
        )
        + f"device {args.device}, torch {torch.__version__}. Generation, seconds per frame: "
        f"{gen_line}.{_saved_note(saved)}\n\n" + "\n\n".join(tables) + f"\n\nCommand: `python "
        f"benchmarks/cross_generator.py {command}`\n"
    )
    publish(text, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
