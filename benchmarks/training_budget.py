"""Training budget: how test accuracy grows with training compute.

The default configuration trains 1500 iterations of 8 patches, about 3 minutes on a
2-core CPU. This script trains the default network with several budgets (iterations x
batch, optionally another width, patch size or learning rate) on the segmentation
benchmark's frames (``benchmarks/segmentation.py``: 240 training frames of seeds
9_000_000 + i, 40 test frames of seeds 9_100_000 + i) and prints, for each, the test
pixel accuracy, mean class accuracy, multilayer-pit IoU, the training wall time and the
inference time per 512 x 512 frame. Its question: is the 0.99 target limited by the
training compute a CPU affords, or by what the frames hold? On a GPU, budgets tens of
times the default fit in the same minutes.

Usage::

    # GPU: the default budget, then more compute, and the classic decoder
    python benchmarks/training_budget.py --device cuda --jobs 16 \\
        --budget 1500x8 --budget 3200x32 --budget 6400x8 --budget 3200x32:dconcat

    # CPU, a few minutes: 48 + 12 frames of 256 px
    python benchmarks/training_budget.py --quick

A budget is ``ITERATIONSxBATCH`` followed by any of ``:wWIDTH``, ``:pPATCH`` (pixels),
``:lLR``, ``:dDECODER`` (``add`` or ``concat``). The table is printed and written to
``benchmarks/results/training_budget.md`` (``--out``); ``--save DIR`` also writes each
model and its test predictions there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segmentation import (
    TEST_SEED0,
    TRAIN_SEED0,
    device_name,
    dtype_name,
    inference_ms,
    log,
)

from napari_calcite_afm.level import LevelSettings, level_frame
from napari_calcite_afm.segmentation import (
    MODEL_LEVEL_DEFAULTS,
    TrainConfig,
    predict_stack,
    prepare_labels,
    resolve_device,
    segmentation_metrics,
    step_dtype,
    train_model,
)
from napari_calcite_afm.synthetic import make_frames

RESULTS = Path(__file__).resolve().parent / "results" / "training_budget.md"


def parse_budget(text: str) -> dict:
    """``"3200x32:w16:p192:l0.005:dconcat"`` to TrainConfig fields.

    >>> parse_budget("3200x32:w16:dconcat")
    {'iterations': 3200, 'batch_size': 32, 'width': 16, 'decoder': 'concat'}
    """
    head, *opts = text.split(":")
    try:
        it, batch = (int(v) for v in head.lower().split("x"))
        out: dict = {"iterations": it, "batch_size": batch}
        keys = {
            "w": ("width", int),
            "p": ("patch_size", int),
            "l": ("lr", float),
            "d": ("decoder", str),
        }
        for o in opts:
            name, kind = keys[o[0]]
            out[name] = kind(o[1:])
    except (ValueError, KeyError, IndexError):
        raise SystemExit(
            f"bad budget {text!r}: expected ITERATIONSxBATCH[:wWIDTH][:pPATCH][:lLR][:dDECODER]"
        ) from None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--budget", action="append", default=[], help="ITxBATCH[:wW][:pP][:lLR][:dDECODER]"
    )
    ap.add_argument("--device", default="auto", help="torch device: auto (default), cpu, cuda")
    ap.add_argument("--jobs", type=int, default=1, help="processes generating frames (1)")
    ap.add_argument("--size", type=int, default=512, help="frame size, pixels (512)")
    ap.add_argument("--n-train", type=int, default=240, help="training frames (240)")
    ap.add_argument("--n-test", type=int, default=40, help="test frames (40)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (0)")
    ap.add_argument("--quick", action="store_true", help="48 + 12 frames of 256 px")
    ap.add_argument("--out", type=Path, default=RESULTS, help="markdown results file")
    ap.add_argument("--save", type=Path, default=None, help="folder for models and predictions")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_test = 256, 48, 12
        args.budget = args.budget or ["100x8", "200x8"]
    budgets = [parse_budget(b) for b in (args.budget or ["1500x8"])]
    threads = len(os.sched_getaffinity(0))
    dev = device_name(args.device)
    log(f"device {dev}, {threads} CPU threads, torch {torch.__version__}")

    t0 = time.perf_counter()
    tr_raw, tr_lab3 = make_frames(args.n_train, args.size, seed0=TRAIN_SEED0, jobs=args.jobs)
    te_raw, te_lab3 = make_frames(args.n_test, args.size, seed0=TEST_SEED0, jobs=args.jobs)
    level = LevelSettings(**MODEL_LEVEL_DEFAULTS)
    te_z = np.stack([level_frame(f, level) for f in te_raw])
    tr_lab = np.stack([prepare_labels(lb, 2) for lb in tr_lab3])
    te_lab = np.stack([prepare_labels(lb, 2) for lb in te_lab3])
    took = time.perf_counter() - t0
    log(f"{args.n_train} + {args.n_test} frames of {args.size} px in {took:.0f} s")

    rows = []
    for b in budgets:
        cfg = TrainConfig(device=args.device, seed=args.seed, **b)
        cfg.eval_every = max(100, cfg.iterations // 8)
        dtype = dtype_name(step_dtype(cfg.precision, resolve_device(cfg.device)))
        name = (
            f"{cfg.iterations} x {cfg.batch_size}, width {cfg.width}, "
            f"patch {cfg.patch_size}, lr {cfg.lr:g}, {cfg.decoder} decoder, {dtype} steps"
        )

        def progress(d, name=name, every=cfg.eval_every):
            if d.get("val_accuracy") is not None and d["iteration"] % every == 0:
                log(
                    f"  [{name}] it {d['iteration']:5d}/{d['n_iterations']} loss "
                    f"{d['loss'] or float('nan'):.4f} val acc {d['val_accuracy']:.4f} "
                    f"{d['elapsed_s']:.0f} s"
                )

        res = train_model(list(tr_raw), list(tr_lab), cfg, progress=progress)
        pred, _ = predict_stack(res.model, te_z, levelled=True, return_probabilities=False)
        m = segmentation_metrics(te_lab, pred, 2)
        net_ms, _ = inference_ms(res.model)
        per_frame = (pred == te_lab).reshape(len(te_lab), -1).mean(1)
        worst = np.argsort(per_frame)[:3]
        log(
            f"  [{name}] test acc {m['pixel_accuracy']:.4f} mean acc {m['mean_accuracy']:.4f} "
            f"IoU pit {m['iou'][0]:.4f} train {res.elapsed_s:.0f} s infer {net_ms:.1f} ms; "
            f"worst frames {[(int(i), round(float(per_frame[i]), 3)) for i in worst]}"
        )
        rows.append((name, m, res.elapsed_s, net_ms))
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            tag = f"{cfg.iterations}x{cfg.batch_size}_w{cfg.width}_p{cfg.patch_size}_{cfg.decoder}"
            res.model.save(args.save / f"model_{tag}.pt")
            np.savez_compressed(args.save / f"pred_{tag}.npz", pred=pred)

    lines = [
        "| budget | pixel acc | mean acc | IoU pit | train s | ms / 512² |",
        "|---|---|---|---|---|---|",
    ]
    for name, m, train_s, ms in rows:
        lines.append(
            f"| {name} | {m['pixel_accuracy']:.4f} | {m['mean_accuracy']:.4f} | "
            f"{m['iou'][0]:.4f} | {train_s:.0f} | {ms:.1f} |"
        )
    command = " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        f"# Training budget\n\nDefault network (U-Net on multiscale features) trained with "
        f"each budget on {args.n_train} synthetic frames, scored on {args.n_test} (seeds "
        f"{TRAIN_SEED0}+ / {TEST_SEED0}+, {args.size} px, two classes). Device {dev}, torch "
        f"{torch.__version__}. Training wall time includes levelling and validation. "
        f"Command: `python benchmarks/training_budget.py {command}`\n\n" + "\n".join(lines) + "\n"
    )
    log("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
