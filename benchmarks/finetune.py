"""Fine-tuning the shipped model on a few scribbled frames, against its peers.

The situation of a user with a movie unlike the shipped model's training data: a few
frames scribbled on (about 2 % of the pixels, strokes drawn as in
``benchmarks/segmentation.py``), a minute of CPU at most. Frames come from the cellular
generator (:func:`napari_calcite_afm.synthetic.make_cellular_frames`, a lattice model of
step retreat built unlike the generator of the shipped models' training frames). Rows,
all trained on the same scribbled frames and scored on the same held-out frames (two
classes: pixel accuracy and multilayer-pit IoU):

* the shipped model as it is (no training);
* the shipped model fine-tuned (``TrainConfig(init="default")``), for each learning
  rate of ``--lr``, with the budget of a fine-tuning run
  (:data:`~napari_calcite_afm.segmentation.FINE_TUNE`: 300 iterations of 4 patches,
  no frame held out, learning rate 3e-3) unless told otherwise;
* a new network (the default U-Net) trained from scratch with the same budget;
* a random forest on scikit-image's multiscale features (``multiscale_basic_features``
  + scikit-learn's ``RandomForestClassifier``, as ilastik and napari-convpaint do) on the
  scribbled pixels of the levelled frames.

Times: wall seconds and CPU seconds (``time.process_time``, every thread of the process)
of the training, levelling and features included; on a shared machine they are
indicative only.

Seeds (no test and no other benchmark uses them): training frames ``98_400_000 + i``,
test frames ``98_500_000 + i``, scribbles ``98_400_900``.

Usage::

    python benchmarks/finetune.py                       # 3 + 8 frames of 512 px, FINE_TUNE
    python benchmarks/finetune.py --lr 3e-4 --lr 1e-3 --lr 3e-3 --threads 1
    python benchmarks/finetune.py --batch-size 8 --val-fraction 0.15   # another budget
    python benchmarks/finetune.py --quick               # smoke run: 128 px, 20 iterations
    python benchmarks/finetune.py --init "standard-only default.pt=old.pt" --init \
        "shipped default.pt=default"                    # several starting models
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import log, publish

from napari_calcite_afm.level import LevelSettings, level_frame
from napari_calcite_afm.segmentation import (
    FINE_TUNE,
    MODEL_LEVEL_DEFAULTS,
    NEW_NETWORK,
    TrainConfig,
    frame_uncertainty,
    load_default_model,
    load_model,
    predict_stack,
    prepare_labels,
    remove_open_pits,
    segmentation_metrics,
    train_model,
)
from napari_calcite_afm.synthetic import make_cellular_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation import scribbles

TRAIN_SEED0 = 98_400_000
TEST_SEED0 = 98_500_000
SCRIBBLE_SEED = 98_400_900
RESULTS = Path(__file__).resolve().parent / "results" / "finetune.md"


class _Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def _score(pred: np.ndarray, truth: np.ndarray) -> dict:
    m = segmentation_metrics(truth, pred, 2)
    return {"acc": m["pixel_accuracy"], "pit": m["iou"][0]}


def _network_row(name, model, te_raw, truth, clock=None) -> dict:
    pred, prob = predict_stack(model, te_raw)
    row = {"name": name, **_score(pred, truth), "unc": float(np.nanmean(frame_uncertainty(prob)))}
    row["wall"] = clock.wall if clock else 0.0
    row["cpu"] = clock.cpu if clock else 0.0
    return row


def _forest(tr_raw, sparse, te_raw, truth, threads: int, seed: int) -> list[dict]:
    """Random forest on multiscale features of the levelled frames (scribbled pixels):
    its labels as they are, and after the closed-depression check that the networks'
    labels pass (``segmentation.remove_open_pits``)."""
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    settings = LevelSettings(**MODEL_LEVEL_DEFAULTS)

    def feats(raw):
        z = np.nan_to_num(level_frame(raw, settings))
        return multiscale_basic_features(z, sigma_min=1, sigma_max=16)

    with _Clock() as clock:
        xs, ys = [], []
        for raw, lab in zip(tr_raw, sparse):
            f = feats(raw)
            idx = np.flatnonzero(lab > 0)
            xs.append(f.reshape(-1, f.shape[-1])[idx])
            ys.append(lab.ravel()[idx])
        clf = RandomForestClassifier(
            n_estimators=50, max_depth=20, n_jobs=threads, random_state=seed, max_samples=0.5
        )
        clf.fit(np.concatenate(xs), np.concatenate(ys))
    pred = np.stack(
        [clf.predict(f.reshape(-1, f.shape[-1])).reshape(f.shape[:2]) for f in map(feats, te_raw)]
    ).astype(np.uint8)
    closed = np.stack([remove_open_pits(p, level_frame(r, settings)) for p, r in zip(pred, te_raw)])
    name = "random forest, multiscale features"
    return [{"name": name, **_score(pred, truth), "unc": np.nan, "wall": clock.wall,
             "cpu": clock.cpu},
            {"name": name + " + closed-depression check", **_score(closed, truth), "unc": np.nan,
             "wall": clock.wall, "cpu": clock.cpu}]  # fmt: skip


def _table(rows: list[dict]) -> str:
    lines = [
        "| method | pixel accuracy | pit IoU | mean frame uncertainty | wall s | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        unc = "" if not np.isfinite(r["unc"]) else f"{r['unc']:.3f}"
        lines.append(
            f"| {r['name']} | {r['acc']:.4f} | {r['pit']:.3f} | {unc} | {r['wall']:.1f} | "
            f"{r['cpu']:.1f} |"
        )
    return "\n".join(lines)


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=3, help="scribbled frames (3)")
    ap.add_argument("--n-test", type=int, default=8, help="held-out test frames (8)")
    ap.add_argument("--size", type=int, default=512, help="frame size, pixels (512)")
    ap.add_argument("--fraction", type=float, default=0.02, help="pixels scribbled (0.02)")
    ap.add_argument("--pixel-size", type=float, default=None, help="nm (default: drawn)")
    ap.add_argument("--iterations", type=int, default=int(FINE_TUNE["iterations"]))
    ap.add_argument(
        "--batch-size", type=int, default=int(FINE_TUNE["batch_size"]), help="patches per step"
    )
    ap.add_argument(
        "--lr", type=float, action="append", default=None, help="fine-tuning rates (repeat)"
    )
    ap.add_argument(
        "--val-fraction", type=float, default=FINE_TUNE["val_fraction"], help="as TrainConfig"
    )
    ap.add_argument("--no-scratch", action="store_true", help="skip the new network")
    ap.add_argument("--no-forest", action="store_true", help="skip the random forest")
    ap.add_argument(
        "--init",
        action="append",
        default=None,
        metavar="NAME=PATH",
        help="initial models (repeat; default: the shipped default.pt). A model trained "
        "without cellular frames (e.g. the standard-only default.pt of an older release) "
        "keeps the cellular frames foreign to it",
    )
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (all)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (0)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 128 px, 20 iterations")
    ap.add_argument("--out", type=Path, default=None, help=f"markdown file ({RESULTS})")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.n_test, args.iterations = 128, 2, 20
    return args


def _initial_models(items) -> list[tuple[str, str]]:
    """``(name, init)`` of each ``--init NAME=PATH`` (the shipped default.pt without any)."""
    if not items:
        return [("shipped default.pt", "default")]
    return [tuple(item.split("=", 1)) if "=" in item else (Path(item).name, item) for item in items]


def main(argv=None) -> int:
    args = _parse(argv)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    options = {} if args.pixel_size is None else {"pixel_size_nm": args.pixel_size}
    tr_raw, tr_lab, tr_px = make_cellular_frames(
        args.n_train, args.size, seed0=TRAIN_SEED0, return_pixel_size=True, **options
    )
    te_raw, te_lab, te_px = make_cellular_frames(
        args.n_test, args.size, seed0=TEST_SEED0, return_pixel_size=True, **options
    )
    rng = np.random.default_rng(SCRIBBLE_SEED)
    sparse = np.stack([scribbles(prepare_labels(lb, 2), rng, args.fraction) for lb in tr_lab])
    frac = float((sparse > 0).mean())
    truth = np.stack([prepare_labels(lb, 2) for lb in te_lab])
    log(
        f"{args.n_train} training frames ({100 * frac:.1f} % scribbled), {args.n_test} test "
        f"frames, {args.size} px, pixel sizes {tr_px.round(1).tolist()} / "
        f"{te_px.round(1).tolist()} nm; {threads} threads"
    )
    common = dict(
        iterations=args.iterations, batch_size=args.batch_size, device="cpu", threads=threads,
        seed=args.seed, val_fraction=args.val_fraction, eval_every=max(1, args.iterations),
    )  # fmt: skip
    rows = []
    for name, init in _initial_models(args.init):
        model = load_default_model() if init == "default" else load_model(init)
        rows.append(_network_row(f"{name}, no training", model, te_raw, truth))
        log(_table(rows[-1:]))
        for lr in args.lr or [float(FINE_TUNE["lr"])]:
            with _Clock() as clock:
                cfg = TrainConfig(init=init, lr=lr, **common)
                res = train_model(list(tr_raw), list(sparse), cfg)
            label = f"fine-tuned from {name}, lr {lr:g}, {args.iterations} it"
            rows.append(_network_row(label, res.model, te_raw, truth, clock))
            log(_table(rows[-1:]))
    if not args.no_scratch:
        with _Clock() as clock:
            res = train_model(
                list(tr_raw), list(sparse), TrainConfig(lr=NEW_NETWORK["lr"], **common)
            )
        name = f"new network (U-Net), lr {res.config.lr:g}, {args.iterations} it"
        rows.append(_network_row(name, res.model, te_raw, truth, clock))
        log(_table(rows[-1:]))
    if not args.no_forest:
        rows += _forest(tr_raw, sparse, te_raw, truth, threads, args.seed)
        log(_table(rows[-1:]))
    command = " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        "# Fine-tuning on scribbles (cellular frames)\n\n"
        f"{args.n_train} training frames (seeds {TRAIN_SEED0}+, {100 * frac:.1f} % of the "
        f"pixels scribbled), {args.n_test} test frames (seeds {TEST_SEED0}+), {args.size} px, "
        f"{args.iterations} iterations of {args.batch_size} patches, {threads} CPU threads, "
        f"torch {torch.__version__}.\n\n" + _table(rows) + "\n\nCommand: `python "
        f"benchmarks/finetune.py {command}`\n"
    )
    publish(text, args.out if args.out is not None else (None if args.quick else RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
