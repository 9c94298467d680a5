"""Time-consistent segmentation (issue 17, part 4): pit IoU and track continuity.

Held-out movies (seeds no test or other benchmark uses): ``synthetic.make_series``
seeds 97,200-97,219 and ``synthetic.make_cellular_series`` seeds 97,220-97,223, each
levelled (``level_stack`` with the model's settings), registered (``register_stack``)
and segmented by the shipped two-class model (``predict_stack``, probabilities kept).
Each variant of :func:`napari_calcite_afm.segmentation.temporal.temporal_prior` turns
the same probabilities into labels; the true labels are moved with ``kinetics.shift_labels(
labels_raw, reg.shifts)``. Per variant:

* pit IoU per frame (label 1 against the true label 1, over the pixels both label):
  mean over all frames, and the mean of each movie's worst frame;
* flicker: pixels per frame (per 10^4 recorded) that are pit in frames t-1 and t+1
  but not in t (a pit that vanishes for one frame), in the predicted labels;
* tracks: ``kinetics.track_pits`` on the registered heights: number of tracks, and the
  fraction of true multilayer pits tracked (scored as in
  ``benchmarks/kinetics_tracking.py``: ``synthetic.pit_truth`` for make_series, the
  recorded dislocation cores for the cellular generator).

    python benchmarks/temporal_segmentation.py [--movies 20] [--cellular 4]
        [--frames 12] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kinetics_tracking import _score_cores, _score_movie

from napari_calcite_afm.kinetics import PitSettings, shift_labels, track_pits
from napari_calcite_afm.level import level_stack, register_stack
from napari_calcite_afm.segmentation import predict_stack, resolve_model
from napari_calcite_afm.segmentation.temporal import temporal_prior
from napari_calcite_afm.synthetic import make_series
from napari_calcite_afm.synthetic.cellular import make_cellular_series
from napari_calcite_afm.synthetic.truth import pit_truth

VARIANTS = {
    "none (per frame)": dict(window=1),
    "mean, 3 frames": dict(window=3),
    "geometric, 3 frames": dict(window=3, method="geometric"),
    "mean, 5 frames": dict(window=5),
    "mean 3 + monotone 2": dict(window=3, monotone=2),
    "none + monotone 2": dict(window=1, monotone=2),
}


def _ious(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    out = []
    for p, t in zip(pred, true):
        both = (p > 0) & (t > 0)
        a, b = (p == 1) & both, (t == 1) & both
        union = (a | b).sum()
        out.append((a & b).sum() / union if union else np.nan)
    return np.array(out, float)


def _flicker(pred: np.ndarray) -> float:
    pit = pred == 1
    gone = pit[:-2] & pit[2:] & (pred[1:-1] == 2)
    return 1e4 * gone.sum() / max(1, (pred[1:-1] > 0).sum())


def _movie(series, model, cellular: bool, settings: PitSettings) -> dict:
    # the model's levelling (terraces at 0 nm), as ``calcite-afm run`` does
    levelled = level_stack(series.raw, model.level_settings, workers=1)
    reg = register_stack(levelled)
    heights = np.asarray(reg.aligned, np.float32)
    _, probs = predict_stack(model, heights, levelled=True, device="cpu")
    true = shift_labels(series.labels_raw, reg.shifts)
    truth = None if cellular else pit_truth(series)
    out = {}
    for name, kw in VARIANTS.items():
        labels, _ = temporal_prior(probs, **kw)
        iou = _ious(labels, true)
        res = track_pits(
            heights, labels, series.pixel_size_nm, series.frame_times_s, settings=settings
        )
        m = _score_cores(series, res) if cellular else _score_movie(truth, res, settings)
        out[name] = {
            "iou": iou,
            "flicker": _flicker(labels),
            "tracks": len(res.tracks),
            "multi_tracks": sum(r["class"] == 1 for r in res.tracks),
            "n": m["n"],
            "tracked": m["tracked"],
        }
    return out


def _table(title: str, movies: list[dict]) -> None:
    print(f"\n### {title}: {len(movies)} movies\n")
    print(
        "| variant | pit IoU (mean of frames) | worst frame (mean over movies) | "
        "flicker / 10^4 px | tracks (multilayer) per movie | true pits tracked | "
        "movies better / worse IoU than none |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base = np.array([np.nanmean(m["none (per frame)"]["iou"]) for m in movies])
    for name in VARIANTS:
        ious = np.concatenate([m[name]["iou"] for m in movies])
        worst = np.mean([np.nanmin(m[name]["iou"]) for m in movies])
        per = np.array([np.nanmean(m[name]["iou"]) for m in movies])
        flick = np.mean([m[name]["flicker"] for m in movies])
        tracks = np.mean([m[name]["tracks"] for m in movies])
        multi = np.mean([m[name]["multi_tracks"] for m in movies])
        n = sum(m[name]["n"] for m in movies)
        tracked = sum(m[name]["tracked"] for m in movies)
        better = int((per > base + 1e-4).sum())
        worse = int((per < base - 1e-4).sum())
        print(
            f"| {name} | {np.nanmean(ious):.4f} | {worst:.4f} | {flick:.1f} | "
            f"{tracks:.1f} ({multi:.1f}) | {tracked}/{n} = {tracked / max(n, 1):.1%} | "
            f"{better} / {worse} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movies", type=int, default=20)
    ap.add_argument("--cellular", type=int, default=4)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument(
        "--seed0",
        type=int,
        default=97200,
        help="first make_series seed (97,200; development: 97,100-97,119)",
    )
    ap.add_argument("--cellular-seed0", type=int, default=97220, help="first cellular seed")
    args = ap.parse_args()
    model = resolve_model("default")
    settings = PitSettings()
    p = 11.7 * 512 / args.size
    t0 = time.perf_counter()
    groups: dict[str, list[dict]] = {"make_series": [], "make_cellular_series": []}
    for i in range(args.movies):
        seed = args.seed0 + i
        series = make_series(args.frames, args.size, seed=seed, pixel_size_nm=p)
        groups["make_series"].append(_movie(series, model, False, settings))
        print(f"series seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    for i in range(args.cellular):
        seed = args.cellular_seed0 + i
        series = make_cellular_series(args.frames, args.size, seed=seed, pixel_size_nm=p)
        groups["make_cellular_series"].append(_movie(series, model, True, settings))
        print(f"cellular seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\n{args.frames} frames of {args.size} x {args.size} px, {p:.1f} nm/px")
    for title, movies in groups.items():
        if movies:
            _table(title, movies)


if __name__ == "__main__":
    main()
