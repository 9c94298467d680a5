"""Train the default segmentation model shipped with the package.

The model is trained on synthetic calcite frames (:func:`napari_calcite_afm.synthetic.make_frame`:
raw heights with tilt, bow, scan-line offsets, scars and noise, 512 x 512 px at 11.7 nm
per pixel like the study's frames) and saved to
``src/napari_calcite_afm/models/default.pt`` (two classes: multilayer pit / terrace) or,
with ``--n-classes 3``, ``default3.pt`` (monolayer pits as a third class).

``--generator`` chooses the training frames
(:func:`napari_calcite_afm.synthetic.make_training_frames`): ``standard`` (the default,
as above), ``wide`` (the same generator with every setting drawn from wide ranges, pixel
sizes 2-20 nm), ``cellular`` (a lattice simulation of step retreat, built another way) or
``mix`` (wide and cellular frames alternating) or ``all`` (standard, wide and cellular in
turn: the shipped models), so that the shipped models meet surfaces unlike one
generator's; the validation frames come from the same generator.

Synthetic seeds: training frames ``7_000_000 + i``, validation frames ``7_500_000 + i``.
The tests use seeds 0-99 and 424242 and the benchmark 9_000_000 + i / 9_100_000 + i, so
the default model never saw the frames it is tested on. The seed ranges are stored in the
model (``model.info``).

Usage (the shipped files were trained with these budgets, before the additive decoder
and bfloat16 steps became the defaults, hence ``--decoder concat --precision float32``)::

    python scripts/train_default_model.py --decoder concat --precision float32
        --iterations 3200 --batch-size 32                       # default.pt (one line)
    python scripts/train_default_model.py --decoder concat --precision float32
        --n-classes 3 --iterations 1600 --batch-size 32         # default3.pt (one line)
    python scripts/train_default_model.py --generator all ...   # standard + wide + cellular
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from napari_calcite_afm.segmentation import (
    PRECISIONS,
    UNET_DECODERS,
    TrainConfig,
    default_model_path,
    predict_stack,
    prepare_labels,
    segmentation_metrics,
    train_model,
)
from napari_calcite_afm.synthetic import TRAINING_GENERATORS, make_training_frames

TRAIN_SEED0 = 7_000_000
VAL_SEED0 = 7_500_000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the shipped default segmentation model.")
    ap.add_argument("--n-classes", type=int, default=2, choices=(2, 3))
    ap.add_argument("--n-train", type=int, default=240)
    ap.add_argument("--n-val", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument(
        "--iterations", type=int, default=None, help="optimiser steps (TrainConfig's default)"
    )
    ap.add_argument(
        "--batch-size", type=int, default=None, help="patches per step (TrainConfig's default)"
    )
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda")
    ap.add_argument(
        "--decoder",
        choices=UNET_DECODERS,
        default=None,
        help="U-Net decoder (TrainConfig's default, 'add'; the shipped models: 'concat')",
    )
    ap.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="training-step arithmetic (the shipped models: float32)",
    )
    ap.add_argument(
        "--width",
        type=int,
        default=None,
        help="U-Net filters of the first level (TrainConfig's default, 8)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="processes generating frames")
    ap.add_argument(
        "--generator",
        choices=TRAINING_GENERATORS,
        default="standard",
        help="training and validation frames: standard (default), wide, cellular, mix "
        "(wide and cellular alternating) or all (standard, wide, cellular in turn)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--max-pit-fraction",
        type=float,
        default=0.8,
        help="drop frames with more multilayer pit than this (0.8; 1 keeps all): a frame "
        "wholly inside one pit looks like terrace and teaches a contradiction",
    )
    ap.add_argument("--out", type=Path, default=None, help="output file (default: package)")
    args = ap.parse_args(argv)
    out = args.out or default_model_path(args.n_classes)

    t0 = time.perf_counter()
    gen = args.generator
    most = None if args.max_pit_fraction >= 1 else args.max_pit_fraction
    tr_raw, tr_lab, tr_px = make_training_frames(
        gen, args.n_train, args.size, seed0=TRAIN_SEED0, jobs=args.jobs, return_pixel_size=True,
        max_pit_fraction=most,
    )  # fmt: skip
    va_raw, va_lab = make_training_frames(
        gen, args.n_val, args.size, seed0=VAL_SEED0, jobs=args.jobs, max_pit_fraction=most
    )
    print(
        f"generated {args.n_train} + {args.n_val} {gen} frames in "
        f"{time.perf_counter() - t0:.0f} s; kept {len(tr_raw)} + {len(va_raw)} (at most "
        f"{args.max_pit_fraction:g} multilayer pit)",
        flush=True,
    )

    budget = {
        k: v for k, v in (("iterations", args.iterations), ("batch_size", args.batch_size)) if v
    }
    cfg = TrainConfig(
        **budget,
        n_classes=args.n_classes,
        seed=args.seed,
        device=args.device,
        decoder=args.decoder,
        precision=args.precision,
        width=args.width,
    )
    cfg.eval_every = max(50, cfg.iterations // 20)

    def progress(d):
        if d["val_accuracy"] is not None and d["iteration"] % cfg.eval_every == 0:
            print(
                f"it {d['iteration']:5d}/{d['n_iterations']} loss {d['loss'] or 0:.4f} "
                f"val acc {d['val_accuracy']:.4f} mean acc {d['val_mean_accuracy']:.4f} "
                f"{d['elapsed_s']:.0f} s",
                flush=True,
            )

    res = train_model(
        list(tr_raw), list(tr_lab), cfg, val_images=va_raw, val_labels=va_lab, progress=progress
    )
    model = res.model
    pred, _ = predict_stack(model, va_raw, return_probabilities=False)
    metrics = segmentation_metrics(
        np.stack([prepare_labels(lb, args.n_classes) for lb in va_lab]), pred, args.n_classes
    )
    model.info.update(
        {
            "description": (
                f"default {args.n_classes}-class model, trained by "
                "scripts/train_default_model.py on synthetic frames"
            ),
            "training_data": (
                "napari_calcite_afm.synthetic.make_frame (raw frames, all artifacts)"
                if gen == "standard"
                else f"napari_calcite_afm.synthetic.make_training_frames({gen!r}) (raw frames)"
            ),
            "generator": gen,
            "frame_size_px": args.size,
            # the median training pixel size; wide and cellular frames span a range
            "pixel_size_nm": float(np.median(tr_px)),
            "pixel_size_range_nm": [float(tr_px.min()), float(tr_px.max())],
            "training_seeds": [TRAIN_SEED0, TRAIN_SEED0 + args.n_train],
            "max_pit_fraction": args.max_pit_fraction,
            "validation_seeds": [VAL_SEED0, VAL_SEED0 + args.n_val],
            "validation_metrics": {k: v for k, v in metrics.items() if k != "confusion"},
            "training_time_s": res.elapsed_s,
        }
    )
    # keep the file small: the history of evaluations is enough
    model.save(out)
    print(
        f"validation: pixel acc {metrics['pixel_accuracy']:.4f}, mean acc "
        f"{metrics['mean_accuracy']:.4f}, IoU {np.round(metrics['iou'], 4).tolist()}; "
        f"trained in {res.elapsed_s:.0f} s; saved {out} ({out.stat().st_size / 1024:.0f} kB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
