"""Benchmark of the kinetics (issue 17): drift registration and local dissolution rates.

    python benchmarks/kinetics.py [--section drift|rates|all] [--quick]

Sections (one function each; the tracking benchmark, ``benchmarks/kinetics_tracking.py``,
adds its own):

- ``drift``: ``register_stack`` on synthetic movies with known drift and dissolving pits
  and steps (``make_series``: 8 frames of 512 x 512, 30 frames of 512 x 512 (the
  instrument's frame) and 30 frames of 256 x 256 (fewer pits in view); and,
  where it exists, the cellular generator ``make_cellular_series``; without ``--quick``
  also 8 wide frames of 512 x 512, ``variety="wide"``), error relative to
  frame 0 (the largest of the two axes, pixels) against the targets (median <= 0.5 px,
  worst <= 1 px), with the texture correction and without it (the whole-frame phase
  correlation alone, the previous method); then the real HS-AFM movie
  ``playnano_asd_sample_0.asd`` (rejected frames, common area, messages);
- ``rates``: the real chain on the raw movie (``level_stack`` -> ``register_stack`` ->
  ``rate_maps``, labels from ``SyntheticSeries.labels`` and, without ``--quick``, from
  the shipped model) against the generator's truth ``-(clean[t+1] - clean[t]) / dt``:
  correlation per frame pair (target >= 0.8) and dissolved volume (target within 20 %).

Movie seeds (no test or development run uses them): drift 97,000-97,005 (8 frames),
97,010-97,013 (30 frames of 256), 97,040-97,045 (30 frames of 512), 97,030-97,033
(cellular), 97,046-97,049 (wide: 8 frames of 512, pixel sizes 2-20 nm; from stop 27);
rates 97,020-97,025. Development
used 97,050-97,099. Timings on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_calcite_afm.level import level_stack, register_stack  # noqa: E402

DRIFT_8 = list(range(97000, 97006))
DRIFT_30 = list(range(97010, 97014))
DRIFT_30_512 = list(range(97040, 97046))
DRIFT_CELLULAR = list(range(97030, 97034))
DRIFT_WIDE = list(range(97046, 97050))
RATES = list(range(97020, 97026))
ASD = (
    Path(os.environ.get("CALCITE_AFM_REAL_DATA", ROOT.parent / "shared" / "data" / "afm-real"))
    / "playnano_asd_sample_0.asd"
)


def _drift_errors(series, texture: bool = True, lev=None):
    """Per-frame |error| (px, the larger axis) of register_stack on a levelled movie
    (``lev``: the movie already levelled)."""
    lev = level_stack(series.raw, workers=1) if lev is None else lev
    t0 = time.perf_counter()
    reg = register_stack(lev, texture=texture)
    seconds = time.perf_counter() - t0
    err = np.abs(reg.shifts + series.drift_px).max(axis=1)  # truth: -drift_px
    return err, reg, seconds


_FRAMES: list[tuple[np.ndarray, np.ndarray]] = []  # (error, confidence) of every movie


def _drift_rows(label: str, make, seeds) -> list[tuple]:
    """Print one line per movie; return (median, worst, median_old, worst_old) rows.
    Each movie's per-frame errors and confidences go to ``_FRAMES``."""
    rows = []
    for seed in seeds:
        series = make(seed)
        lev = level_stack(series.raw, workers=1)
        err, reg, sec = _drift_errors(series, lev=lev)
        old, _, _ = _drift_errors(series, texture=False, lev=lev)
        rows.append((np.median(err[1:]), err.max(), np.median(old[1:]), old.max()))
        _FRAMES.append((err[1:], np.asarray(reg.confidence)[1:]))
        print(
            f"  {label} seed {seed}: error median {rows[-1][0]:.2f} px, worst {rows[-1][1]:.2f} px"
            f" (whole-frame only: {rows[-1][2]:.2f} / {rows[-1][3]:.2f}); confidence mean "
            f"{reg.confidence[1:].mean():.2f}; rejected {int(reg.rejected.sum())}; "
            f"{sec / series.n_frames * 1e3:.0f} ms/frame; messages {len(reg.messages)}"
        )
    return rows


def _summary(label: str, rows: list[tuple]) -> None:
    r = np.array(rows)
    ok = (r[:, 0] <= 0.5) & (r[:, 1] <= 1.0)
    ok_old = (r[:, 2] <= 0.5) & (r[:, 3] <= 1.0)
    print(
        f"{label}: {ok.sum()} of {len(r)} movies within both targets (whole-frame only: "
        f"{ok_old.sum()}); median of the medians {np.median(r[:, 0]):.2f} px "
        f"({np.median(r[:, 2]):.2f}), worst {r[:, 1].max():.2f} px ({r[:, 3].max():.2f})"
    )


def _confidence_summary() -> None:
    """Does the confidence warn where the shift is off? Over every frame after the first
    of the synthetic movies above."""
    err = np.concatenate([e for e, _ in _FRAMES])
    conf = np.concatenate([c for _, c in _FRAMES])
    parts = []
    for level in (0.5, 0.8):
        k = conf >= level
        parts.append(
            f"confidence >= {level}: {k.sum()} frames, {np.sum(err[k] > 1)} off by more than "
            f"1 px, {np.sum(err[k] > 5)} by more than 5 px"
        )
    off = err > 5
    print(
        f"confidence against the error, {err.size} frames: " + "; ".join(parts) + f"; the "
        f"{off.sum()} frames off by more than 5 px have confidence median "
        f"{np.median(conf[off]) if off.any() else float('nan'):.2f}"
    )


def section_drift(quick: bool = False) -> None:
    """Drift error against the truth on synthetic movies; the real .asd movie."""
    from napari_calcite_afm.synthetic import make_series

    print("== drift (error relative to frame 0, the larger axis)")
    size8 = 256 if quick else 512
    rows = _drift_rows(
        f"8 x {size8}", lambda s: make_series(8, size8, seed=s), DRIFT_8[: 3 if quick else None]
    )
    _summary(f"make_series, 8 frames of {size8} x {size8}", rows)
    n30 = 12 if quick else 30
    if not quick:
        rows = _drift_rows("30 x 512", lambda s: make_series(30, 512, seed=s), DRIFT_30_512)
        _summary("make_series, 30 frames of 512 x 512", rows)
    rows = _drift_rows(
        f"{n30} x 256", lambda s: make_series(n30, 256, seed=s), DRIFT_30[: 2 if quick else None]
    )
    _summary(f"make_series, {n30} frames of 256 x 256", rows)
    try:
        from napari_calcite_afm.synthetic import make_cellular_series
    except ImportError:
        print("(no cellular generator: skipped)")
    else:
        n = 8 if quick else 30
        rows = _drift_rows(
            f"cellular {n} x 256",
            lambda s: make_cellular_series(n, 256, seed=s),
            DRIFT_CELLULAR[: 2 if quick else None],
        )
        _summary(f"make_cellular_series, {n} frames of 256 x 256", rows)
    if not quick:  # settings and pixel sizes (2-20 nm) drawn from wide ranges
        rows = _drift_rows(
            "wide 8 x 512", lambda s: make_series(8, 512, seed=s, variety="wide"), DRIFT_WIDE
        )
        _summary('make_series(variety="wide"), 8 frames of 512 x 512', rows)
    _confidence_summary()
    _real_asd()


def _real_asd() -> None:
    from napari_calcite_afm.io import read_stack

    if not ASD.exists():
        print(f"(real movie {ASD} not found: skipped)")
        return
    stack = read_stack(ASD)
    lev = level_stack(stack.heights, workers=1)
    reg = register_stack(lev)
    old = register_stack(lev, texture=False)
    jumps = np.abs(np.diff(reg.shifts, axis=0)).max(axis=1)
    print(
        f"real {ASD.name} {lev.shape}: rejected frames {np.flatnonzero(reg.rejected).tolist()}, "
        f"largest frame-to-frame change {jumps.max():.1f} px, common area {reg.valid} = "
        f"{100 * reg.common_fraction:.0f} % of the frame (whole-frame only, before any "
        f"rejection: shifts up to {np.abs(old.shifts).max():.0f} px)"
    )
    for m in reg.messages:
        print(f"  message: {m}")


def _rate_scores(series, labels, smooth_px=0.0) -> tuple[list[float], list[float], list[str]]:
    """Correlation and relative volume error per pair of the real chain's rates
    (``smooth_px``: the maps' Gaussian smoothing, pixels)."""
    from napari_calcite_afm.kinetics import height_reference, rate_maps

    lev = level_stack(series.raw, workers=1)
    reg = register_stack(lev)
    ref = height_reference(reg.aligned, labels)
    rates = rate_maps(reg.aligned, series.frame_times_s, labels, reference=ref, smooth_px=smooth_px)
    truth = -np.diff(series.clean.astype(np.float64), axis=0) / series.frame_interval_s
    cors, vols = [], []
    for k in range(rates.shape[0]):
        ok = np.isfinite(rates[k])
        cors.append(float(np.corrcoef(rates[k][ok], truth[k][ok])[0, 1]))
        vols.append(float(rates[k][ok].sum() / truth[k][ok].sum() - 1))
    return cors, vols, ref.messages


def section_rates(quick: bool = False, smooth_px: float = 0.0) -> None:
    """Rate maps of the real chain against the generator's truth (``smooth_px``: as
    ``calcite-afm run --rate-smooth``)."""
    from napari_calcite_afm.synthetic import make_series

    print(
        "== rates (raw movie -> level_stack -> register_stack -> rate_maps"
        + (f", smoothed {smooth_px:g} px)" if smooth_px else ")")
    )
    model = None
    if not quick:
        from napari_calcite_afm.segmentation import load_default_model, predict_stack

        model = load_default_model(3)
    n, size = (4, 256) if quick else (8, 256)
    sources = ["truth labels"] + ([] if quick else ["shipped model (3 classes)"])
    for source in sources:
        cors, vols = [], []
        for seed in RATES[: 3 if quick else None]:
            series = make_series(n, size, seed=seed)
            labels = series.labels
            if source != "truth labels":
                lev = register_stack(level_stack(series.raw, workers=1)).aligned
                labels = predict_stack(model, lev, return_probabilities=False)[0]
            c, v, msgs = _rate_scores(series, labels, smooth_px)
            cors += c
            vols += v
            print(
                f"  {source}, seed {seed}: correlation {np.round(c, 2).tolist()}, volume error "
                f"{np.round(100 * np.array(v)).astype(int).tolist()} %"
                + (f"; {msgs}" if msgs else "")
            )
        c, v = np.array(cors), np.abs(np.array(vols))
        print(
            f"{source}, {n} frames of {size} x {size}: correlation median {np.median(c):.2f}, "
            f"lowest {c.min():.2f}, pairs >= 0.8: {(c >= 0.8).sum()} of {c.size}; volume error "
            f"median {100 * np.median(v):.0f} %, worst {100 * v.max():.0f} %, pairs within 20 %: "
            f"{(v <= 0.2).sum()} of {v.size}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=("drift", "rates", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller movies")
    parser.add_argument(
        "--rate-smooth", type=float, default=0.0, metavar="PX", help="rate-map smoothing (0)"
    )
    args = parser.parse_args(argv)
    if args.section in ("drift", "all"):
        section_drift(args.quick)
    if args.section in ("rates", "all"):
        section_rates(args.quick, args.rate_smooth)


if __name__ == "__main__":
    main()
