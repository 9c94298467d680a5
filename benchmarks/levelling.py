"""Benchmark: artifact removal (napari_calcite_afm.level) on synthetic calcite frames.

Prints, over frames with known artifacts (seeds no test uses):

- the RMS error (nm) of the cleaned frame against the artifact-free surface, after both
  are made zero-mean and a best-fit plane is removed from their difference, for three
  methods: the default pipeline (``level_frame``), plain median row alignment (+ plane)
  and no row alignment (plane only);
- scar detection recall and precision;
- the registration error (pixels) of ``register_stack`` on drifting stacks with known
  subpixel shifts;
- the time of ``level_frame`` per 512 x 512 frame;
- the same figures on frames of ``napari_calcite_afm.synthetic`` (the project's own
  generator), when it is installed;
- scan lines that failed as a whole: the private frames again, with two settling lines
  140 nm below at the start, a lost line and a band of 40 lines 300 nm off, and on
  every real file of ``shared/data/afm-real`` (when present) the scan line whose median
  stands out most from its neighbours', in units of the frame's RMS roughness.

It also writes ``docs/images/levelling.png`` (a raw and a cleaned frame side by side).

    python benchmarks/levelling.py [--frames 20] [--out docs/images/levelling.png]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_calcite_afm.level import (
    LevelSettings,
    align_rows,
    detect_scars,
    level_frame,
    register_stack,
)

STEP = 0.31  # nm, calcite monolayer step
PIXEL_NM = 11.7  # nm per pixel (6 µm over 512 pixels)

# ------------------------------------------------------------------ synthetic frames
# The same private generator as tests/level/conftest.py (kept separate on purpose: the
# benchmark must not depend on the test suite): terraces with meandering monolayer
# steps, terraced rhombic multilayer pits (5-30 nm deep, pointed bottom off-centre),
# monolayer pits, smooth roughness; then tilt (20 nm), bow (3 nm), scan-line offsets
# (random walk + jumps of 0.3-1 nm + jitter), scars (0.5-2 nm, 1-3 rows, 20-100 px)
# and white noise (0.03 nm).


def _rhomb(shape, centre, size, angle):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    half = np.deg2rad(78.0) / 2
    e = np.array(
        [[np.cos(angle - half), np.cos(angle + half)], [np.sin(angle - half), np.sin(angle + half)]]
    )
    s = np.stack([xx - centre[1], yy - centre[0]], -1) @ (np.linalg.inv(e) / size).T
    return s[..., 0], s[..., 1]


def _asym(s, a):
    return np.where(s >= a, (s - a) / (1 - a), (a - s) / (1 + a))


def calcite_surface(rng, shape=(512, 512)):
    rows, cols = shape
    scale = max(shape) / 256
    yy, xx = np.mgrid[0:rows, 0:cols].astype(float)
    theta = rng.uniform(0, np.pi)
    width = rng.uniform(30, 70) * scale
    wiggle = ndimage.gaussian_filter(rng.normal(size=shape), 12) * 3 * width
    z = STEP * np.floor((xx * np.cos(theta) + yy * np.sin(theta) + wiggle) / width)
    for _ in range(rng.integers(1, 4)):
        centre = (rng.uniform(0.15, 0.85) * rows, rng.uniform(0.15, 0.85) * cols)
        size = rng.uniform(0.06, 0.16) * min(shape)
        depth = rng.uniform(5, 30)
        s1, s2 = _rhomb(shape, centre, size, rng.uniform(0, np.pi))
        a1, a2 = rng.uniform(-0.4, 0.0, 2)
        d = np.maximum(_asym(s1, a1), _asym(s2, a2))
        z -= np.where(d < 1, STEP * np.ceil((1 - d) * depth / STEP), 0.0)
    for _ in range(rng.integers(5, 15)):
        centre = (rng.uniform(0, rows), rng.uniform(0, cols))
        s1, s2 = _rhomb(shape, centre, rng.uniform(3, 12) * scale, 0.3)
        z -= STEP * ((np.abs(s1) < 1) & (np.abs(s2) < 1))
    rough = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    return z + rough / rough.std() * rng.uniform(0.05, 0.1)


def add_artifacts(rng, z, *, tilt=20.0, bow=3.0, scars=8, noise=0.03):
    rows, cols = z.shape
    y = np.linspace(-1, 1, rows)[:, None]
    x = np.linspace(-1, 1, cols)[None, :]
    phi = rng.uniform(0, 2 * np.pi)
    raw = z + tilt / 2 * (np.cos(phi) * x + np.sin(phi) * y)
    a, b, c = rng.uniform(-1, 1, 3)
    raw = raw + bow * (a * x**2 + b * y**2 + 0.5 * c * x * y)
    jumps = np.where(rng.random(rows) < 8 / rows, rng.choice([-1, 1], rows), 0)
    line = (
        np.cumsum(rng.normal(0, 0.04, rows))
        + np.cumsum(jumps * rng.uniform(0.3, 1.0, rows))
        + rng.normal(0, 0.1, rows)
    )
    raw = raw + line[:, None]
    smask = np.zeros(z.shape, bool)
    for _ in range(scars):
        r, w, length = rng.integers(2, rows - 6), rng.integers(1, 4), rng.integers(20, 101)
        c0 = rng.integers(0, cols - length)
        raw[r : r + w, c0 : c0 + length] += rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)
        smask[r : r + w, c0 : c0 + length] = True
    return raw + rng.normal(0, noise, z.shape), smask


def rms_error(cleaned, truth) -> float:
    """RMS (nm) of cleaned - truth after removing a best-fit plane (and the mean)."""
    d = np.asarray(cleaned, float) - truth
    ok = np.isfinite(d)
    yy, xx = np.nonzero(ok)
    a = np.stack([np.ones(yy.size), xx, yy], 1)
    r = d[ok] - a @ np.linalg.lstsq(a, d[ok], rcond=None)[0]
    return float(np.sqrt(np.mean(r**2)))


def drifting_stack(rng, shifts, shape=(512, 512), change=0.2):
    """Frames of one surface through a drifting window; shifts[i] aligns frame i to 0.

    Between frames the surface changes a little (noise, a few new monolayer pits).
    """
    pad = 24
    big = calcite_surface(rng, (shape[0] + 2 * pad, shape[1] + 2 * pad))
    frames = []
    for s in shifts:
        f = ndimage.shift(big, -np.asarray(s), order=3, mode="nearest")
        frames.append(f[pad : pad + shape[0], pad : pad + shape[1]] + rng.normal(0, 0.03, shape))
        big = big - change * STEP * (rng.random(big.shape) < 0.001)
    return np.stack(frames)


# ------------------------------------------------------------------ report helpers


def _ms(values) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():7.3f} ± {v.std(ddof=1) if v.size > 1 else 0:6.3f}"


def three_figures(pairs):
    """RMS errors of the default pipeline, median rows + plane, plane only."""
    out = {"default pipeline": [], "median rows + plane": [], "plane only": []}
    for raw, truth in pairs:
        out["default pipeline"].append(rms_error(level_frame(raw), truth))
        out["median rows + plane"].append(rms_error(align_rows(raw, "median"), truth))
        out["plane only"].append(rms_error(raw, truth))
    return out


def print_table(title, figures, n):
    print(f"\n{title} ({n} frames): RMS error vs the artifact-free surface, nm")
    print(f"  {'method':<22} {'mean ± sd':>16} {'max':>8}")
    for name, v in figures.items():
        print(f"  {name:<22} {_ms(v):>16} {np.max(v):8.3f}")
    d = np.mean(figures["default pipeline"])
    print(
        f"  default / median-only = {d / np.mean(figures['median rows + plane']):.3f}, "
        f"default / plane-only = {d / np.mean(figures['plane only']):.3f}"
    )


def picture(raw, cleaned, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        from napari_calcite_afm.colormap import matplotlib_green_magenta

        cmap = matplotlib_green_magenta()
    except ImportError:  # pragma: no cover - colormap module not there
        from matplotlib.colors import LinearSegmentedColormap

        cmap = LinearSegmentedColormap.from_list(
            "green-magenta", [(0, 0.16, 0.05), (0.05, 0.55, 0.15), (0.97, 0.97, 0.97),
                              (0.7, 0.05, 0.65), (0.25, 0, 0.25)]
        )  # fmt: skip
    rows, cols = raw.shape
    extent = (0, cols * PIXEL_NM / 1000, rows * PIXEL_NM / 1000, 0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    for ax, img, title in (
        (axes[0], raw - np.nanmean(raw), "raw (tilt, bow, scan-line offsets, scars, noise)"),
        (axes[1], cleaned, "levelled (level_frame, default settings)"),
    ):
        lo, mid, hi = np.nanpercentile(img, [0.5, 50, 99.8])
        if img is cleaned:
            lo = max(lo, mid - 2.0)  # keep the terraces' monolayer steps visible
        im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm)")
        fig.colorbar(im, ax=ax, shrink=0.85, label="height (nm)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ scan-line faults


def add_line_faults(rng, raw):
    """``raw`` with faulty scan lines: rows 0-1 settling (140 nm below, nothing of the
    surface), one lost line (another line's values shuffled) and a band of 40 lines
    offset by 300 nm. Returns the frame and the rows that hold no surface."""
    out = raw.copy()
    rows, cols = raw.shape
    out[:2] = rng.normal(np.median(raw) - 140.0, 3.0, (2, cols))
    lost = int(rng.integers(rows // 4, rows // 2))
    out[lost] = rng.permutation(raw[lost + 9])
    band = int(rng.integers(rows // 2, rows - 60))
    out[band : band + 40] += 300.0
    return out, [0, 1, lost]


def standout(levelled, k=5) -> float:
    """Largest |row median - median of the medians of up to k rows either side|, in
    units of the frame's RMS roughness (rows without data skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without data
        med = np.nanmedian(levelled, axis=1)
    med = med[np.isfinite(med)]
    dev = [
        med[i] - np.median(np.r_[med[max(0, i - k) : i], med[i + 1 : i + 1 + k]])
        for i in range(med.size)
    ]
    return float(np.max(np.abs(dev)) / np.nanstd(levelled))


def line_faults(pairs, seed) -> None:
    errs, outs = [], []
    for k, (raw, truth) in enumerate(pairs):
        bad, lost = add_line_faults(np.random.default_rng(seed + 3000 + k), raw)
        out = level_frame(bad)
        keep = np.setdiff1d(np.arange(raw.shape[0]), lost)
        errs.append(rms_error(out[keep], truth[keep]))
        outs.append(standout(out))
    print(
        f"\nscan-line faults ({len(pairs)} private frames; settling rows, a lost line, a "
        f"band 300 nm off): RMS error {_ms(errs)} nm (worst {np.max(errs):.3f}) over the "
        f"rows with surface; worst line standing out {np.max(outs):.2f} x RMS"
    )
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "afm-real"
    if not real.is_dir():
        return
    from napari_calcite_afm.io import read_stack

    print("real files: worst scan line standing out (x RMS) over the frames levelled")
    for path in sorted(real.iterdir()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                heights = read_stack(path).heights
        except ValueError:
            continue
        n = 22 if path.suffix == ".asd" else heights.shape[0]  # the ASD's last frames: no surface
        worst = max(standout(level_frame(f)) for f in heights[:n])
        print(f"  {path.name:<46} {worst:6.2f}")


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=7000, help="first seed (tests use < 100)")
    ap.add_argument("--out", type=Path, default=Path("docs/images/levelling.png"))
    ap.add_argument("--no-project-synthetic", action="store_true")
    ap.add_argument(
        "--synthetic-frames",
        type=int,
        default=100,
        help="frames of the project's generator (seeds SEED+1000+k; some have pits over "
        "half the frame, the hard case)",
    )
    args = ap.parse_args()
    shape = (args.size, args.size)

    # -- levelling accuracy and scars on the private generator
    pairs, scars = [], []
    for k in range(args.frames):
        rng = np.random.default_rng(args.seed + k)
        truth = calcite_surface(rng, shape)
        raw, smask = add_artifacts(rng, truth)
        pairs.append((raw, truth))
        scars.append(smask)
    figures = three_figures(pairs)
    print_table("private calcite generator", figures, len(pairs))

    tp = found_n = true_n = 0
    for (raw, _truth), smask in zip(pairs, scars):
        # scars on the levelled frame without scar repair
        found = detect_scars(level_frame(raw, LevelSettings(scars=False)))
        tp += (found & smask).sum()
        found_n += found.sum()
        true_n += smask.sum()
    print(
        f"\nscars: recall {tp / true_n:.3f}, precision {tp / max(found_n, 1):.3f} "
        f"({true_n} scar pixels in {len(pairs)} frames)"
    )

    # -- registration
    errs = []
    for k in range(5):
        rng = np.random.default_rng(args.seed + 500 + k)
        steps = rng.uniform(-3, 3, (5, 2))
        true = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
        stack = drifting_stack(rng, true, shape)
        for reference in ("previous", "first"):
            reg = register_stack(stack, reference=reference)
            errs.append((reference, np.abs(reg.shifts - true).max(axis=1)[1:]))
    for reference in ("previous", "first"):
        e = np.concatenate([v for r, v in errs if r == reference])
        print(
            f"registration ({reference:>8}): |error| mean {e.mean():.3f} px, "
            f"max {e.max():.3f} px over {e.size} frames (shifts up to ±15 px, subpixel)"
        )

    # -- speed
    raw = pairs[0][0].astype(np.float32)
    level_frame(raw)
    wall, cpu = [], []
    for _ in range(15):
        t0, c0 = time.perf_counter(), time.process_time()
        level_frame(raw)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"level_frame {shape[0]}x{shape[1]}: median {1e3 * np.median(wall):.1f} ms wall "
        f"(min {1e3 * np.min(wall):.1f}), {1e3 * np.median(cpu):.1f} ms CPU"
    )

    # -- the project's own generator
    if not args.no_project_synthetic:
        try:
            from napari_calcite_afm.synthetic import make_frame, make_series
        except ImportError:
            print("\n(napari_calcite_afm.synthetic not available: section skipped)")
        else:
            sp, pit = [], []
            for k in range(args.synthetic_frames):
                raw_k, clean_k, lab_k = make_frame(args.size, seed=args.seed + 1000 + k)
                sp.append((raw_k, clean_k))
                pit.append(float((lab_k == 1).mean()))
            figures = three_figures(sp)
            print_table("napari_calcite_afm.synthetic.make_frame", figures, len(sp))
            err, pit = np.asarray(figures["default pipeline"]), np.asarray(pit)
            big = pit > 0.4
            print(
                f"  default pipeline: median {np.median(err):.3f} nm; frames over 0.3 nm: "
                f"{(err > 0.3).sum()}, over 1 nm: {(err > 1).sum()} of {err.size}; "
                f"frames with pits over 40 % of the area: {big.sum()}, their mean "
                f"{err[big].mean() if big.any() else float('nan'):.3f} nm, worst "
                f"{err[big].max() if big.any() else float('nan'):.3f} nm"
            )
            e_prev, e_first = [], []
            for k in range(3):
                ser = make_series(6, args.size, seed=args.seed + 2000 + k)
                lev = np.stack([level_frame(f) for f in ser.raw])
                for ref, acc in (("previous", e_prev), ("first", e_first)):
                    reg = register_stack(lev, reference=ref)
                    acc.append(np.abs(reg.shifts + ser.drift_px).max())
            print(
                "register_stack on make_series (6 frames, dissolving surface): max |error| "
                f"previous {np.round(e_prev, 2).tolist()} px, "
                f"first {np.round(e_first, 2).tolist()} px"
            )

    line_faults(pairs, args.seed)

    raw, truth = pairs[0]
    picture(raw, level_frame(raw), args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
