"""Segmentation benchmark: the study's protocol on synthetic calcite frames.

The study trained its dilated CNN on 240 labelled AFM images and tested it on 40 (mean
accuracy 0.99, 900 iterations in 60 minutes). This script repeats the protocol on frames
from :mod:`napari_calcite_afm.synthetic` (raw heights with tilt, bow, scan-line offsets,
scars and noise; ground-truth labels) and prints, side by side:

* the network with the default :class:`~napari_calcite_afm.train.TrainConfig` (a small
  U-Net with a dilated bottleneck on fixed multiscale input features and an additive
  decoder, AdamW one-cycle, bfloat16 steps on CPUs that have them), the previous default
  (the classic concatenating decoder, float32 steps, 800 iterations), the same U-Net on
  bare heights, the dilated CNN with dilations
  up to 16 (the default before), and the study's exact design and optimiser (dilated CNN
  1, 2, 4 with 32 filters; SGD, momentum 0.9, lr 1e-3, L2 1e-4): pixel accuracy, mean
  class accuracy (Matlab's "mean accuracy"), IoU per class, training wall time (and
  iterations) to reach 0.99 test pixel accuracy, and inference time per 512 x 512 frame;
* Otsu's threshold on the levelled heights (below = pit);
* scikit-image's random-forest pixel classifier (``multiscale_basic_features`` +
  ``fit_segmenter`` with a 50-tree ``RandomForestClassifier``) trained on a pixel
  subsample of the same labels;
* the network trained from sparse scribbles only (about 2 % of the pixels);
* the three-class network (monolayer pits as a third class): IoU per class;
* for every method, the scores again without the *hidden* multilayer-pit pixels, those
  of the pit's footprint whose height the pit did not set (monolayer pits dug as deep
  there), which no method can see in the topography.

Synthetic seeds: training frames 9_000_000 + i, test frames 9_100_000 + i (never used by
the tests, 0-99 and 424242, nor by ``scripts/train_default_model.py``, 7_000_000 + i).

Usage::

    python benchmarks/segmentation.py            # full protocol (240 + 40 frames, 512 px)
    python benchmarks/segmentation.py --quick    # a few minutes: 48 + 12 frames of 256 px

The results table is printed and written to ``benchmarks/results/segmentation.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_calcite_afm.level import LevelSettings, level_frame
from napari_calcite_afm.segmentation import (
    MODEL_LEVEL_DEFAULTS,
    SegmentationModel,
    TrainConfig,
    predict_frame,
    predict_stack,
    prepare_labels,
    resolve_device,
    segmentation_metrics,
    step_dtype,
    train_model,
)
from napari_calcite_afm.synthetic import make_frame, make_frames

TRAIN_SEED0 = 9_000_000
TEST_SEED0 = 9_100_000
TARGET = 0.99
RESULTS = Path(__file__).resolve().parent / "results" / "segmentation.md"


def log(*args) -> None:
    print(*args, flush=True)


def scribbles(labels: np.ndarray, rng: np.random.Generator, fraction: float = 0.02) -> np.ndarray:
    """Sparse labels: thin random strokes inside each class region (about ``fraction``).

    Each class present gets the same number of strokes (as a person scribbling on each
    class would), each a 1-pixel line of up to 40 pixels kept 2 pixels inside its region.
    """
    from scipy.ndimage import binary_erosion
    from skimage.draw import line

    out = np.zeros_like(labels)
    rows, cols = labels.shape
    classes = [c for c in np.unique(labels) if c > 0]
    inner = {c: binary_erosion(labels == c, iterations=2) for c in classes}
    classes = [c for c in classes if inner[c].any()]
    if not classes:
        return out
    target = fraction * labels.size
    tries = 0
    while (out > 0).sum() < target and tries < 20000:
        tries += 1
        c = classes[tries % len(classes)]
        pts = np.flatnonzero(inner[c])
        r, q = divmod(int(pts[rng.integers(pts.size)]), cols)
        ang = rng.uniform(0, np.pi)
        length = rng.integers(10, 41)
        r1 = int(np.clip(r + length * np.sin(ang), 0, rows - 1))
        q1 = int(np.clip(q + length * np.cos(ang), 0, cols - 1))
        rr, cc = line(r, q, r1, q1)
        ok = inner[c][rr, cc]
        # keep the stroke up to its first step outside the region
        stop = np.argmin(ok) if not ok.all() else ok.size
        out[rr[:stop], cc[:stop]] = c
    return out


def otsu_baseline(levelled: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    out = np.zeros(levelled.shape, np.uint8)
    for i, z in enumerate(levelled):
        ok = np.isfinite(z)
        t = threshold_otsu(z[ok])
        out[i] = np.where(z < t, 1, 2)
        out[i][~ok] = 0
    return out


def forest_baseline(
    tr_z: np.ndarray, tr_lab: np.ndarray, te_z: np.ndarray, per_frame: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """scikit-image's random-forest pixel classifier, trained on a pixel subsample.

    Returns the test predictions, the training time (s, features included) and the
    inference time on one levelled 512 x 512 frame (ms, features included).
    """
    from functools import partial

    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    feats = partial(
        multiscale_basic_features,
        intensity=True,
        edges=True,
        texture=True,
        sigma_min=1,
        sigma_max=16,
    )
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    xs, ys = [], []
    for z, lab in zip(tr_z, tr_lab):
        f = feats(np.nan_to_num(z))
        idx = np.flatnonzero(lab > 0)
        idx = rng.choice(idx, min(per_frame, idx.size), replace=False)
        xs.append(f.reshape(-1, f.shape[-1])[idx])
        ys.append(lab.ravel()[idx])
    clf = RandomForestClassifier(
        n_estimators=50, max_depth=20, n_jobs=-1, random_state=seed, max_samples=0.5
    )
    clf = fit_segmenter(np.concatenate(ys), np.concatenate(xs), clf)
    train_s = time.perf_counter() - t0
    out = np.stack([predict_segmenter(feats(np.nan_to_num(z)), clf) for z in te_z])
    # inference time on one levelled 512 x 512 frame (features + forest)
    frame, _, _ = make_frame(512, seed=TEST_SEED0 + 99_999)
    z = level_frame(frame, LevelSettings(**MODEL_LEVEL_DEFAULTS))
    t0 = time.perf_counter()
    predict_segmenter(feats(np.nan_to_num(z)), clf)
    infer_ms = 1000 * (time.perf_counter() - t0)
    return out.astype(np.uint8), train_s, infer_ms


def scores(truth: np.ndarray, pred: np.ndarray, n_classes: int, hidden: np.ndarray) -> dict:
    """:func:`segmentation_metrics`, plus the same with the hidden pit pixels unscored.

    ``hidden`` marks the multilayer-pit pixels whose height the pit did not set
    (``synthetic.make_frame(return_hidden=True)``): no method can see them in the
    topography, only guess them from the rest of the pit's shape.
    """
    m = segmentation_metrics(truth, pred, n_classes)
    m["visible"] = segmentation_metrics(np.where(hidden, 0, truth), pred, n_classes)
    return m


def inference_ms(model: SegmentationModel, repeats: int = 5) -> tuple[float, float]:
    """Median ms per 512 x 512 frame: network only (levelled input), and end to end."""
    frame, _, _ = make_frame(512, seed=TEST_SEED0 + 99_999)
    z = model.level(frame)
    predict_frame(model, z, levelled=True)  # warm-up (also builds the fused module)
    net_t, all_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict_frame(model, z, levelled=True)
        net_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        predict_frame(model, frame)
        all_t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(net_t)), 1000 * float(np.median(all_t))


def run_network(name, cfg, tr_raw, tr_lab, te_z, te_lab, n_classes, hidden):
    """Train with the test set followed at each evaluation; returns a result row."""

    def monitor(model):
        pred, _ = predict_stack(model, te_z, levelled=True, return_probabilities=False)
        m = segmentation_metrics(te_lab, pred, n_classes)
        return {"test_accuracy": m["pixel_accuracy"], "test_mean_accuracy": m["mean_accuracy"]}

    def progress(d):
        if d.get("val_accuracy") is not None and d["iteration"] % cfg.eval_every == 0:
            log(
                f"  [{name}] it {d['iteration']:5d}/{d['n_iterations']} "
                f"loss {d['loss'] or float('nan'):.4f} val acc {d['val_accuracy']:.4f} "
                f"{d['elapsed_s']:.0f} s"
            )

    t0 = time.perf_counter()
    res = train_model(list(tr_raw), list(tr_lab), cfg, progress=progress, monitor=monitor)
    wall = time.perf_counter() - t0
    reach = next((h for h in res.history if h.get("test_accuracy", 0) >= TARGET), None)
    pred, _ = predict_stack(res.model, te_z, levelled=True, return_probabilities=False)
    m = scores(te_lab, pred, n_classes, hidden)
    net_ms, all_ms = inference_ms(res.model)
    log(
        f"  [{name}] test acc {m['pixel_accuracy']:.4f} mean acc {m['mean_accuracy']:.4f} "
        f"IoU {np.round(m['iou'], 4).tolist()} train {res.elapsed_s:.0f} s "
        f"(with monitoring {wall:.0f} s) infer {net_ms:.0f} ms"
    )
    return {
        "method": name,
        **m,
        "train_s": res.elapsed_s,
        "iterations": cfg.iterations,
        "reach_s": reach["elapsed_s"] if reach else None,
        "reach_it": reach["iteration"] if reach else None,
        "infer_ms": net_ms,
        "infer_all_ms": all_ms,
        "model": res.model,
    }


def device_name(device: str) -> str:
    """The torch device that ``device`` resolves to, with the GPU's name."""
    from napari_calcite_afm.segmentation import resolve_device

    dev = resolve_device(device)
    return f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else dev.type


def shipped_row(te_raw: np.ndarray, te_lab: np.ndarray, device: str, hidden: np.ndarray) -> dict:
    """The model that ships in the package, on the raw test frames (its own levelling)."""
    from napari_calcite_afm.segmentation import load_default_model

    model = load_default_model(2)
    cfg = model.train_config or {}
    pred, _ = predict_stack(model, te_raw, device=device, return_probabilities=False)
    m = scores(te_lab, pred, 2, hidden)
    net_ms, all_ms = inference_ms(model)
    budget = f"{cfg.get('iterations')} x {cfg.get('batch_size')} patches"
    took = model.info.get("training_time_s")
    took = f" in {took:.0f} s" if isinstance(took, (int, float)) else ""
    name = f"shipped default model ({budget}, trained once{took} on other frames)"
    log(
        f"  [{name}] test acc {m['pixel_accuracy']:.4f} mean acc {m['mean_accuracy']:.4f} "
        f"IoU {np.round(m['iou'], 4).tolist()} infer {net_ms:.0f} ms"
    )
    return {"method": name, **m, "infer_ms": net_ms, "infer_all_ms": all_ms}


def describe(cfg: TrainConfig) -> str:
    """Short name of a configuration's network."""
    if cfg.architecture == "unet":
        first = "multiscale features" if cfg.multiscale else "bare heights"
        return (
            f"U-Net on {first}, {cfg.decoder} decoder, {cfg.levels} levels, width "
            f"{cfg.width}, bottleneck dilations {tuple(cfg.dilations)}"
        )
    return f"dilated CNN, dilations {tuple(cfg.dilations)}, width {cfg.width}"


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def fmt(v, digits=4):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}"


def table(rows: list[dict]) -> str:
    head = (
        "| method | pixel acc | mean acc | IoU multilayer pit | IoU terrace | "
        "IoU monolayer pit | hidden pixels unscored: pixel / mean acc, pit IoU | "
        "train s | it. | s (it.) to 0.99 | ms / 512² |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        iou = list(r["iou"]) + [None] * (3 - len(r["iou"]))
        reach = "-"
        if r.get("reach_s") is not None:
            reach = f"{r['reach_s']:.0f} ({r['reach_it']})"
        elif r.get("iterations"):
            reach = "not reached"
        infer = "-" if r.get("infer_ms") is None else f"{r['infer_ms']:.0f}"
        vis = r.get("visible")
        vis = (
            f"{fmt(vis['pixel_accuracy'])} / {fmt(vis['mean_accuracy'])}, {fmt(vis['iou'][0])}"
            if vis
            else "-"
        )
        lines.append(
            f"| {r['method']} | {fmt(r['pixel_accuracy'])} | {fmt(r['mean_accuracy'])} | "
            f"{fmt(iou[0])} | {fmt(iou[1])} | {fmt(iou[2])} | {vis} | "
            f"{fmt(r.get('train_s'), 0)} | {r.get('iterations') or '-'} | {reach} | {infer} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="frame size, pixels (512)")
    ap.add_argument("--n-train", type=int, default=240, help="training frames (240)")
    ap.add_argument("--n-test", type=int, default=40, help="test frames (40)")
    ap.add_argument("--iterations", type=int, default=None, help="iterations per network")
    ap.add_argument("--quick", action="store_true", help="48 + 12 frames of 256 px, short runs")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (all cores)")
    ap.add_argument(
        "--device", default="cpu", help="torch device of the networks: cpu (default), cuda, auto"
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="processes generating the synthetic frames (1)"
    )
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of rows to skip: shipped,previous,bare,wide,sgd,forest,sparse,three",
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="markdown results file")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_test = 256, 48, 12
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

    base = TrainConfig(threads=threads, device=args.device, seed=0, eval_every=100)
    if args.iterations:
        base.iterations = args.iterations
    elif args.quick:
        base.iterations = 300
        base.eval_every = 50
    log(
        f"synthetic frames: {args.n_train} train + {args.n_test} test, {args.size} x "
        f"{args.size} px; torch {torch.__version__}, {threads} threads"
    )
    t0 = time.perf_counter()
    tr_raw, tr_lab3 = make_frames(args.n_train, args.size, seed0=TRAIN_SEED0, jobs=args.jobs)
    te_raw, te_lab3, te_hidden = make_frames(
        args.n_test, args.size, seed0=TEST_SEED0, jobs=args.jobs, return_hidden=True
    )
    log(f"  generated in {time.perf_counter() - t0:.0f} s")
    level = LevelSettings(**MODEL_LEVEL_DEFAULTS)
    t0 = time.perf_counter()
    tr_z = np.stack([level_frame(f, level) for f in tr_raw])
    te_z = np.stack([level_frame(f, level) for f in te_raw])
    log(f"  levelled in {time.perf_counter() - t0:.0f} s")
    tr_lab2 = np.stack([prepare_labels(lb, 2) for lb in tr_lab3])
    te_lab2 = np.stack([prepare_labels(lb, 2) for lb in te_lab3])
    frac_tr, frac_te = np.mean(tr_lab2 == 1), np.mean(te_lab2 == 1)
    log(f"  multilayer-pit fraction: train {frac_tr:.3f} test {frac_te:.3f}")
    hidden_share = float(te_hidden.sum() / max((te_lab2 == 1).sum(), 1))
    log(f"  hidden multilayer-pit pixels (test): {100 * hidden_share:.1f} % of the pit pixels")

    def two_classes(name: str, cfg: TrainConfig, labels: np.ndarray = tr_lab2) -> dict:
        """A two-class network row: trained on ``labels``, scored on the test frames."""
        return run_network(name, cfg, tr_raw, labels, te_z, te_lab2, 2, te_hidden)

    rows = []
    log("network (default configuration)")
    rows.append(two_classes(f"{describe(base)} (default)", base))
    if "shipped" not in skip:
        log("the shipped default model (trained once, on other synthetic frames)")
        rows.append(shipped_row(te_raw, te_lab2, args.device, te_hidden))
    if "previous" not in skip:
        log("the previous default: classic U-Net decoder, float32 steps, 800 iterations")
        cfg = TrainConfig(
            **{
                **base.to_dict(),
                "decoder": "concat",
                "precision": "float32",
                "iterations": args.iterations or (300 if args.quick else 800),
            }
        )
        rows.append(two_classes(f"{describe(cfg)}, float32 (previous default)", cfg))
    if "bare" not in skip:
        log("the U-Net on bare heights")
        cfg = TrainConfig(**{**base.to_dict(), "multiscale": False})
        rows.append(two_classes(describe(cfg), cfg))
    if "wide" not in skip:
        log("the dilated CNN with dilations up to 16 (the default before the U-Net)")
        cfg = TrainConfig(
            **{
                **base.to_dict(),
                "architecture": "dilated",
                "multiscale": None,
                "width": 16,
                "dilations": (1, 2, 4, 8, 16),
                "patch_size": 128,
                "context_margin": True,
                "iterations": args.iterations or (300 if args.quick else 1500),
            }
        )
        rows.append(two_classes(describe(cfg), cfg))
    if "sgd" not in skip:
        log("the study's design and optimiser (SGD momentum 0.9, lr 1e-3, L2 1e-4)")
        keep = {"batch_size", "seed", "eval_every", "threads"}
        cfg = TrainConfig.study_reference(
            **{k: v for k, v in base.to_dict().items() if k in keep},
            iterations=args.iterations or (300 if args.quick else 1500),
            device=args.device,
        )
        rows.append(
            two_classes(
                "study design and optimiser: dilated CNN (1, 2, 4), width 32, SGD 0.9, "
                "lr 1e-3, L2 1e-4",
                cfg,
            )
        )
    log("Otsu threshold on the levelled heights")
    pred = otsu_baseline(te_z)
    rows.append(
        {"method": "Otsu threshold (levelled heights)", **scores(te_lab2, pred, 2, te_hidden)}
    )
    if "forest" not in skip:
        log("random forest (skimage multiscale_basic_features + fit_segmenter)")
        pred, rf_s, rf_ms = forest_baseline(tr_z, tr_lab2, te_z, per_frame=1000, seed=0)
        m = scores(te_lab2, pred, 2, te_hidden)
        rows.append(
            {
                "method": "random forest (skimage features, 50 trees, 1000 px/frame)",
                **m,
                "train_s": rf_s,
                "infer_ms": rf_ms,
            }
        )
    if "sparse" not in skip:
        rng = np.random.default_rng(1)
        sparse = np.stack([scribbles(lb, rng) for lb in tr_lab2])
        frac = float(np.mean(sparse > 0))
        log(f"network from scribbles ({100 * frac:.1f} % of the pixels labelled)")
        rows.append(
            two_classes(f"{describe(base)} from scribbles ({100 * frac:.1f} % px)", base, sparse)
        )
    if "three" not in skip:
        log("three classes")
        # class weighting as by default for three classes (on)
        cfg = TrainConfig(**{**base.to_dict(), "n_classes": 3, "class_weighting": None})
        rows.append(
            run_network(
                f"{describe(base)}, three classes",
                cfg,
                tr_raw,
                tr_lab3,
                te_z,
                te_lab3,
                3,
                te_hidden,
            )
        )

    md = table(rows)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    header = (
        f"# Segmentation benchmark\n\n"
        f"Synthetic calcite frames ({args.n_train} training, {args.n_test} test, "
        f"{args.size} x {args.size} px, seeds {TRAIN_SEED0}+ / {TEST_SEED0}+); two classes "
        f"(multilayer pit / terrace incl. monolayer pits) unless stated. Device "
        f"{device_name(args.device)}; CPU: "
        f"{platform.processor() or platform.machine()}, {threads} torch threads, torch "
        f"{torch.__version__}. Training times are wall times on this machine (levelling of "
        f"the training frames and validation included, test-set monitoring excluded); "
        f"inference is the network on a levelled 512 x 512 frame. Command: "
        f"`python benchmarks/segmentation.py {command}`\n\n"
    )
    notes = (
        "\nMean acc = mean of per-class recall (Matlab's \"mean accuracy\", the study's "
        "0.99); pixel acc = Matlab's global accuracy. Default configuration (U-Net rows): "
        f"{base.iterations} iterations, batch {base.batch_size} patches of "
        f"{base.patch_size} px, {base.optimizer} lr {base.lr} ({base.schedule}), "
        f"training steps in {dtype_name(step_dtype(base.precision, resolve_device(base.device)))} "
        f"(precision {base.precision!r}), class "
        "weighting off for two classes and on for three (the defaults). Dilated rows: "
        "1500 iterations, patches of 128 px, loss on the pixels whose receptive field "
        "lies inside the patch. Hidden pixels: the "
        f"{100 * hidden_share:.1f} % of the test frames' multilayer-pit pixels whose height "
        "the pit did not set (monolayer pits, or the layers they consumed, dug as deep "
        "there): they leave no trace in the topography, so the column after the IoUs "
        "scores every method without them (`synthetic.make_frame(return_hidden=True)`).\n"
    )
    text = header + md + notes
    log("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
