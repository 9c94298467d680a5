"""``calcite-afm``: the command line, a thin layer over the library.

Subcommands: ``info``, ``level``, ``synth``, ``train``, ``segment``, ``fit``, ``run`` and
``demo``. Bad arguments or unreadable input print one line on stderr and exit with
status 2, without a traceback. Heavy modules (torch, matplotlib) are imported only by
the subcommands that need them, so ``calcite-afm --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

EXIT_USAGE = 2


class _UsageError(Exception):
    """A problem with the command line itself (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message}")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress_printer(label: str, quiet: bool = False) -> Callable[[dict], None] | None:
    """A progress callback that prints one line per report on stderr."""
    if quiet:
        return None

    def report(info: dict) -> None:
        parts = [label]
        if "frame" in info and "n_frames" in info:
            parts.append(f"frame {info['frame'] + 1}/{info['n_frames']}")
        if "iteration" in info:
            n = info.get("n_iterations")
            parts.append(f"iteration {info['iteration']}" + (f"/{n}" if n else ""))
        for key in ("loss", "val_accuracy", "val_mean_accuracy"):
            value = info.get(key)
            if value is not None and np.isfinite(value):
                parts.append(f"{key} {value:.4f}")
        if "elapsed_s" in info:
            parts.append(f"{info['elapsed_s']:.1f} s")
        if "stage" in info:
            parts.append(str(info["stage"]))
        _stderr("  ".join(parts))

    return report


def _parse_lags(text: str) -> tuple[int, ...]:
    try:
        lags = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _UsageError(
            f"calcite-afm: error: --lags must be comma-separated whole numbers, got {text!r}"
        ) from None
    if not lags or min(lags) < 1:
        raise _UsageError(f"calcite-afm: error: --lags must be positive pixels, got {text!r}")
    return lags


# --------------------------------------------------------------------------- commands


def cmd_info(args: argparse.Namespace) -> int:
    from .io import list_channels, read_stack

    stack = read_stack(args.file, channel=args.channel)
    times = None if stack.frame_times_s is None else [float(t) for t in stack.frame_times_s]
    try:
        channels = list_channels(args.file)
    except Exception:
        channels = [stack.channel]
    info = {
        "shape": list(stack.heights.shape),
        "pixel_size_nm": float(stack.pixel_size_nm),
        "channel": stack.channel,
        "format": stack.format,
        "frame_times_s": times,
        "channels": channels,
        "source": str(stack.source) if stack.source else str(args.file),
        "height_range_nm": [float(np.nanmin(stack.heights)), float(np.nanmax(stack.heights))],
        "nan_fraction": float(np.mean(np.isnan(stack.heights))),
    }
    print(json.dumps(info, indent=2))
    return 0


def cmd_level(args: argparse.Namespace) -> int:
    from .io import read_stack, write_tiff
    from .level import LevelSettings, level_stack, register_stack

    stack = read_stack(args.input, channel=args.channel)
    settings = LevelSettings(
        background_order=args.order,
        row_method=args.rows,
        scars=not args.no_scars,
        zero_mean=not args.no_zero_mean,
    )
    cleaned = level_stack(stack.heights, settings, progress=_progress_printer("level", args.quiet))
    metadata = {"levelling": settings.to_dict(), "source": str(args.input)}
    if args.register and cleaned.shape[0] > 1:
        reg = register_stack(cleaned)
        cleaned = reg.aligned
        metadata["drift_shifts_px"] = np.asarray(reg.shifts).round(3).tolist()
        metadata["valid_region"] = [[s.start, s.stop] for s in reg.valid]
    out = write_tiff(
        args.out,
        cleaned.astype(np.float32),
        stack.pixel_size_nm,
        frame_interval_s=stack.frame_interval_s,
        metadata=metadata,
    )
    print(f"wrote {out} {cleaned.shape} float32 nm, {stack.pixel_size_nm:.4g} nm/px")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .io import write_tiff
    from .synthetic import make_series

    if args.frames < 1 or args.size < 16:
        raise _UsageError("calcite-afm: error: --frames must be >= 1 and --size >= 16")
    series = make_series(args.frames, args.size, seed=args.seed, pixel_size_nm=args.pixel_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_tiff(
        out / "image.tif",
        series.raw,
        series.pixel_size_nm,
        frame_interval_s=series.frame_interval_s,
    )
    write_tiff(
        out / "labels.tif",
        series.labels_raw,
        series.pixel_size_nm,
        frame_interval_s=series.frame_interval_s,
    )
    write_tiff(
        out / "clean.tif",
        series.clean,
        series.pixel_size_nm,
        frame_interval_s=series.frame_interval_s,
    )
    (out / "synth.json").write_text(
        json.dumps(
            {"params": series.params, "drift_px": np.asarray(series.drift_px).tolist()},
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out / 'image.tif'} and {out / 'labels.tif'} ({series.raw.shape})")
    return 0


def _read_pairs(images: list[str], labels: list[str], what: str):
    """Read image stacks and their label stacks; return lists of frames."""
    from .io import read_labels, read_stack

    if len(images) != len(labels):
        raise _UsageError(
            f"calcite-afm: error: {len(images)} {what}images but {len(labels)} {what}labels: "
            "give one label stack per image stack"
        )
    frames, masks, px = [], [], []
    for img_path, lab_path in zip(images, labels):
        stack = read_stack(img_path)
        lab = read_labels(lab_path, shape=stack.heights.shape)
        frames.extend(list(stack.heights))
        masks.extend(list(lab))
        px.append(stack.pixel_size_nm)
    return frames, masks, px


def _train_budget(
    iterations: int | None, batch_size: int | None, device: str, quiet: bool = True
) -> dict:
    """TrainConfig fields for the budget: as given, or :data:`GPU_BUDGET` on a GPU."""
    from .model import resolve_device
    from .train import GPU_BUDGET

    if iterations is None and batch_size is None and resolve_device(device).type == "cuda":
        if not quiet:
            print(
                f"train: a GPU is used, so the GPU budget: {GPU_BUDGET['iterations']} "
                f"iterations of {GPU_BUDGET['batch_size']} patches (--iterations and "
                "--batch-size choose another)",
                file=sys.stderr,
            )
        return dict(GPU_BUDGET)
    out = {} if iterations is None else {"iterations": iterations}
    if batch_size is not None:
        out["batch_size"] = batch_size
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train_model

    images, labels, px = _read_pairs(args.images, args.labels, "")
    val_images = val_labels = None
    if args.val_images or args.val_labels:
        val_images, val_labels, _ = _read_pairs(
            args.val_images or [], args.val_labels or [], "validation "
        )
    if args.iterations is not None and args.iterations < 1:
        raise _UsageError("calcite-afm: error: --iterations must be >= 1")
    if args.width is not None and args.width < 1:
        raise _UsageError("calcite-afm: error: --width must be >= 1")
    if not 1 <= args.levels <= 5:
        raise _UsageError("calcite-afm: error: --levels must be 1 to 5")
    extra = _train_budget(args.iterations, args.batch_size, args.device, args.quiet)
    config = TrainConfig(
        **extra,
        n_classes=args.classes,
        architecture=args.architecture,
        width=args.width,
        levels=args.levels,
        multiscale=args.multiscale,
        decoder=args.decoder,
        precision=args.precision,
        seed=args.seed,
        device=args.device,
        dilations=None if args.dilations is None else tuple(_parse_lags(args.dilations)),
        checkpoint_path=str(args.out),
    )
    result = train_model(
        images,
        labels,
        config,
        val_images=val_images,
        val_labels=val_labels,
        progress=_progress_printer("train", args.quiet),
    )
    result.model.info.setdefault("pixel_size_nm", float(np.median(px)))
    result.model.info.setdefault("training_files", [str(p) for p in args.images])
    out = result.model.save(args.out)
    final = {
        "model": str(out),
        "iterations": result.history[-1]["iteration"] if result.history else 0,
        "best_val_accuracy": result.best_val_accuracy,
        "best_val_mean_accuracy": result.best_val_mean_accuracy,
        "elapsed_s": round(result.elapsed_s, 2),
        "stopped": result.stopped,
    }
    print(json.dumps(final, indent=2))
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from .io import read_stack, write_tiff
    from .pipeline import resolve_model
    from .predict import predict_stack

    model = resolve_model(args.model)
    stack = read_stack(args.input, channel=args.channel)
    labels, probs = predict_stack(
        model,
        stack.heights,
        return_probabilities=bool(args.probabilities),
        progress=_progress_printer("segment", args.quiet),
    )
    out = write_tiff(args.out, labels, stack.pixel_size_nm, frame_interval_s=stack.frame_interval_s)
    print(f"wrote {out} {labels.shape} uint8 labels")
    if args.probabilities:
        p = write_tiff(
            args.probabilities,
            probs,
            stack.pixel_size_nm,
            frame_interval_s=stack.frame_interval_s,
        )
        print(f"wrote {p} {probs.shape} float32 probabilities")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from .io import read_labels, read_stack
    from .level import level_stack
    from .pipeline import fit_series, table_columns, write_figures, write_table_csv

    stack = read_stack(args.input, channel=args.channel)
    labels = read_labels(args.labels, shape=stack.heights.shape)
    heights = stack.heights if args.no_level else level_stack(stack.heights)
    n_classes = 3 if args.classes == 3 else 2
    times = stack.frame_times_s
    if times is None and args.frame_interval is not None:
        times = np.arange(stack.heights.shape[0]) * args.frame_interval
    rows, fits = fit_series(
        heights,
        labels,
        pixel_size_nm=stack.pixel_size_nm,
        frame_times_s=times,
        lags=_parse_lags(args.lags),
        axis=args.axis,
        n_classes=n_classes,
        progress=_progress_printer("fit", args.quiet),
    )
    out = write_table_csv(args.out, rows, table_columns(n_classes))
    print(f"wrote {out} ({len(rows)} rows)")
    if args.figures:
        written = write_figures(fits, rows, args.figures, frame_times_s=times, figures="all")
        print(f"wrote {len(written)} figures in {args.figures}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import PipelineConfig, resolve_model, run_pipeline

    config = PipelineConfig(
        lags=_parse_lags(args.lags),
        register=not args.no_register,
        figures=args.figures,
    )
    result = run_pipeline(
        args.input,
        model=resolve_model(args.model),
        config=config,
        out_dir=args.out,
        channel=args.channel,
        frame_interval_s=args.frame_interval,
        progress=_progress_printer("run", args.quiet),
    )
    print(f"wrote {args.out}: " + ", ".join(sorted(result.files)))
    print(json.dumps(result.summary["timings_s"]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    outputs = run_demo(args.out, progress=_progress_printer("demo", args.quiet))
    print("demo outputs:")
    for name, path in outputs.items():
        print(f"  {name}: {path}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``calcite-afm`` argument parser (exposed for documentation and tests)."""
    from . import __version__

    parser = _Parser(
        prog="calcite-afm",
        description="Read, clean, segment and model AFM movies of dissolving calcite.",
    )
    parser.add_argument("--version", action="version", version=f"calcite-afm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("info", help="print a file's shape, pixel size, channel and times as JSON")
    p.add_argument("file", help="AFM file, TIFF, .npy/.npz, or a folder of frames")
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("level", help="remove tilt, bow, scan-line offsets, scars (and drift)")
    p.add_argument("input", help="AFM file, TIFF, .npy/.npz, or a folder of frames")
    p.add_argument("--out", required=True, help="output TIFF (float32 heights in nm)")
    p.add_argument("--register", action="store_true", help="also correct frame-to-frame drift")
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--order", type=int, default=2, help="polynomial background order (2)")
    p.add_argument(
        "--rows",
        default="median_diff",
        choices=["none", "median", "median_diff", "polynomial"],
        help="scan-line alignment method (median_diff)",
    )
    p.add_argument("--no-scars", action="store_true", help="do not repair scars")
    p.add_argument(
        "--no-zero-mean",
        action="store_true",
        help="keep the terraces at 0 nm instead of shifting each frame to a zero mean",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_level)

    p = sub.add_parser("synth", help="write a synthetic calcite dissolution movie with labels")
    p.add_argument("--out", required=True, help="output folder (image.tif, labels.tif)")
    p.add_argument("--frames", type=int, default=10, help="number of frames (10)")
    p.add_argument("--size", type=int, default=512, help="frame size in pixels (512)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--pixel-size", type=float, default=11.7, help="pixel size in nm (11.7)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train the segmentation network on image and label stacks")
    p.add_argument("--images", nargs="+", required=True, help="raw height stacks (any format)")
    p.add_argument(
        "--labels", nargs="+", required=True, help="uint8 label stacks (0 unlabelled, 1, 2, 3)"
    )
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="training iterations (1500; 3200 on a GPU, see docs/segmentation.md)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="patches per iteration (8; 32 on a GPU, where 3200 iterations of 32 patches "
        "train a clearly better network in minutes)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="'auto' (a CUDA GPU when present, else the CPU), 'cpu', 'cuda', 'cuda:1'...",
    )
    p.add_argument("--classes", type=int, choices=[2, 3], default=2, help="2 or 3 classes (2)")
    p.add_argument("--val-images", nargs="+", help="validation image stacks")
    p.add_argument("--val-labels", nargs="+", help="validation label stacks")
    p.add_argument(
        "--architecture",
        choices=["unet", "dilated"],
        default="unet",
        help="network: 'unet' (U-Net with a dilated bottleneck, the default) or 'dilated' "
        "(the study's dilated CNN)",
    )
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="filters per layer of the dilated CNN (16), or of the U-Net's first stage (8)",
    )
    p.add_argument(
        "--dilations",
        default=None,
        help="dilations of the dilated CNN's 3 x 3 layers (1,2,4,8,16; the study's design "
        "is 1,2,4 with --width 32), or of the U-Net's bottleneck (1,2)",
    )
    p.add_argument("--levels", type=int, default=3, help="downsamplings of the U-Net (3; 1 to 5)")
    p.add_argument(
        "--multiscale",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="U-Net only: fixed multiscale input features (smoothed heights, roughness, "
        "slope) as first layer (default: on for the U-Net)",
    )
    p.add_argument(
        "--decoder",
        choices=["add", "concat"],
        default="add",
        help="U-Net only: how the decoder joins its skip connections: 'add' (1x1 "
        "projection, addition, one conv; cheaper steps, the default) or 'concat' (the "
        "classic U-Net)",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="arithmetic of the training steps: 'auto' (bfloat16 on CPUs with native "
        "bfloat16 instructions, else float32), 'float32' or 'bfloat16'",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("segment", help="segment a stack with a trained model")
    p.add_argument("input", help="AFM file, TIFF, .npy/.npz, or a folder of frames")
    p.add_argument("--model", default="default", help="model file, or 'default' (2 classes)")
    p.add_argument("--out", required=True, help="output label TIFF (uint8)")
    p.add_argument("--probabilities", help="also write class probabilities to this TIFF")
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("fit", help="fit the multimodal Gaussian model to labelled frames")
    p.add_argument("input", help="AFM file, TIFF, .npy/.npz, or a folder of frames")
    p.add_argument("--labels", required=True, help="label TIFF of the same shape")
    p.add_argument("--out", required=True, help="output table (.csv)")
    p.add_argument("--lags", default="1,2,4,8", help="lags in pixels (1,2,4,8)")
    p.add_argument("--axis", choices=["both", "x", "y"], default="both", help="lag direction")
    p.add_argument("--classes", type=int, choices=[2, 3], default=2, help="2 or 3 modes (2)")
    p.add_argument("--figures", help="folder for the fit figures (PNG)")
    p.add_argument("--no-level", action="store_true", help="use the heights as they are")
    p.add_argument("--frame-interval", type=float, help="seconds between frames")
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("run", help="one click: clean, segment and fit a whole time series")
    p.add_argument("input", help="AFM file, TIFF, .npy/.npz, or a folder of frames")
    p.add_argument("--model", default="default", help="model file, or 'default'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--lags", default="1,2,4,8", help="lags in pixels (1,2,4,8)")
    p.add_argument("--no-register", action="store_true", help="skip drift registration")
    p.add_argument(
        "--figures", choices=["summary", "all", "none"], default="summary", help="(summary)"
    )
    p.add_argument("--frame-interval", type=float, help="seconds between frames")
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the main job on the embedded sample data")
    p.add_argument("--out", default="calcite-afm-demo", help="output folder (calcite-afm-demo)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``calcite-afm``; returns the exit status."""
    from .io import CalciteAFMError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except _UsageError as exc:
        _stderr(str(exc))
        return EXIT_USAGE
    except CalciteAFMError as exc:
        _stderr(f"calcite-afm: error: {exc}")
        return EXIT_USAGE
    except FileNotFoundError as exc:
        _stderr(f"calcite-afm: error: {exc.filename or exc}: file not found")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _stderr("calcite-afm: interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
