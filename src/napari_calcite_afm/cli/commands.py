"""The ``calcite-afm`` subcommands, one function each.

``cmd_<command>(args)`` runs ``calcite-afm <command>`` with the parsed arguments (an
:class:`argparse.Namespace` from :func:`napari_calcite_afm.cli.build_parser`) and returns
the exit status (0); bad input raises, and :func:`napari_calcite_afm.cli.main` turns the
error into one line on stderr and status 2. Heavy modules (torch, matplotlib) are
imported inside the commands that need them.

Every command checks its output paths before any work (:func:`._paths._check_paths`: no
output overwrites or replaces an input, no two outputs collide) and writes its outputs
atomically: files under a temporary name renamed at the end, folders as a whole
(:func:`napari_calcite_afm._util.atomic_directory`), and the two outputs of ``segment``
and of ``fit --figures`` both or neither.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ._common import _parse_lags, _progress_printer, _UsageError
from ._paths import _check_paths, _staged_file

__all__ = [
    "cmd_demo",
    "cmd_fit",
    "cmd_info",
    "cmd_level",
    "cmd_run",
    "cmd_segment",
    "cmd_synth",
    "cmd_train",
]


#: ``synth``: the files of its folder, the most pixels (frames x size^2, about 1.3 GB of
#: stacks) and the widest field of view (nm; the generator's time grows with the area).
SYNTH_FILES = ("image.tif", "labels.tif", "clean.tif", "synth.json")
SYNTH_MAX_PIXELS = 2**27
SYNTH_MAX_FIELD_NM = 50_000.0


def cmd_info(args: argparse.Namespace) -> int:
    """``calcite-afm info FILE``: print the file's shape, pixel size (nm), channel, times."""
    from ..io import list_channels, read_stack

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
    """``calcite-afm level INPUT --out OUT``: write the levelled (registered) heights, nm,
    as TIFF, or as a Gwyddion file where OUT ends in ``.gwy``."""
    from ..io import read_stack, write_gwy, write_tiff
    from ..level import LevelError, LevelSettings, level_stack, register_stack

    _check_paths([("INPUT", args.input)], files=[("--out", args.out)])
    settings = LevelSettings(
        background_order=args.order,
        row_method=args.rows,
        scars=not args.no_scars,
        zero_mean=not args.no_zero_mean,
    )
    stack = read_stack(args.input, channel=args.channel)
    cleaned = level_stack(stack.heights, settings, progress=_progress_printer("level", args.quiet))
    if np.isinf(cleaned).any():
        raise LevelError(f"{args.input}: levelling gave infinite heights; try a lower --order")
    metadata = {"levelling": settings.to_dict(), "source": str(args.input)}
    if args.register and cleaned.shape[0] > 1:
        reg = register_stack(cleaned)
        cleaned = reg.aligned
        metadata["drift_shifts_px"] = np.asarray(reg.shifts).round(3).tolist()
        metadata["valid_region"] = [[s.start, s.stop] for s in reg.valid]
    if str(args.out).lower().endswith(".gwy"):  # Gwyddion: one data field per frame
        writer, timing = write_gwy, {"frame_times_s": stack.frame_times_s}
    else:
        writer, timing = write_tiff, {"frame_interval_s": stack.frame_interval_s}
    out = writer(
        args.out, cleaned.astype(np.float32), stack.pixel_size_nm, metadata=metadata, **timing
    )
    print(f"wrote {out} {cleaned.shape} float32 nm, {stack.pixel_size_nm:.4g} nm/px")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """``calcite-afm synth --out DIR``: write a synthetic movie, its labels and parameters."""
    from .._util import atomic_directory, atomic_write
    from ..io import write_tiff
    from ..outputs import check_output_folder
    from ..synthetic import make_series

    if args.frames < 1 or args.size < 16:
        raise _UsageError("calcite-afm: error: --frames must be >= 1 and --size >= 16")
    if args.frames * args.size**2 > SYNTH_MAX_PIXELS:
        raise _UsageError(
            f"calcite-afm: error: --frames x --size^2 must be at most {SYNTH_MAX_PIXELS:,} "
            f"pixels (about 1.3 GB of stacks), got {args.frames * args.size**2:,}"
        )
    generator = getattr(args, "generator", "standard")
    pixel_size = getattr(args, "pixel_size", None)
    if pixel_size is None and generator == "standard":
        pixel_size = 11.7  # the study's pixel size; wide and cellular draw theirs
    # drawn pixel sizes are at most 20 nm: within the limit for every --size
    if pixel_size is not None and args.size * pixel_size > SYNTH_MAX_FIELD_NM:
        raise _UsageError(
            "calcite-afm: error: the field of view --size x --pixel-size must be at most "
            f"{SYNTH_MAX_FIELD_NM / 1000:g} um, got {args.size * pixel_size / 1000:g} um"
        )
    _check_paths([], folders=[("--out", args.out)])
    out = check_output_folder(args.out, SYNTH_FILES, figures=None, what="the synth folder")
    if generator == "cellular":
        from ..synthetic import make_cellular_series

        series = make_cellular_series(
            args.frames, args.size, seed=args.seed, pixel_size_nm=pixel_size
        )
    else:
        series = make_series(
            args.frames, args.size, seed=args.seed, pixel_size_nm=pixel_size, variety=generator
        )
    stacks = {"image": series.raw, "labels": series.labels_raw, "clean": series.clean}
    with atomic_directory(os.path.abspath(out), what="the synth folder") as tmp:
        for name, data in stacks.items():
            write_tiff(
                tmp / f"{name}.tif",
                data,
                series.pixel_size_nm,
                frame_interval_s=series.frame_interval_s,
            )
        with atomic_write(tmp / "synth.json", "w", what="the parameters") as fh:
            fh.write(
                json.dumps(
                    {"params": series.params, "drift_px": np.asarray(series.drift_px).tolist()},
                    indent=2,
                    default=str,
                )
            )
    print(
        f"wrote {out / 'image.tif'} and {out / 'labels.tif'} ({series.raw.shape}, "
        f"{generator} generator, {series.pixel_size_nm:.3g} nm per pixel)"
    )
    return 0


def _read_pairs(images: list[str], labels: list[str], what: str):
    """Read image stacks and their label stacks; return lists of frames."""
    from ..io import read_labels, read_stack

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
    from ..segmentation import GPU_BUDGET, resolve_device

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


#: ``train --dilations``: the most layers and the largest dilation (px); beyond them the
#: padded patches alone take gigabytes.
TRAIN_MAX_DILATIONS, TRAIN_MAX_DILATION = 12, 64


def _dilations(text: str | None) -> tuple[int, ...] | None:
    """``--dilations`` parsed and bounded (None stays None: the network's default)."""
    if text is None:
        return None
    values = _parse_lags(text, "--dilations")
    if len(values) > TRAIN_MAX_DILATIONS or max(values) > TRAIN_MAX_DILATION:
        raise _UsageError(
            f"calcite-afm: error: --dilations must be at most {TRAIN_MAX_DILATIONS} values "
            f"of at most {TRAIN_MAX_DILATION} px, got {text!r}"
        )
    return values


def _train_config(args: argparse.Namespace):
    """The :class:`~napari_calcite_afm.train.TrainConfig` of ``train``'s arguments."""
    from ..segmentation import TrainConfig

    if args.iterations is not None and args.iterations < 1:
        raise _UsageError("calcite-afm: error: --iterations must be >= 1")
    if args.width is not None and args.width < 1:
        raise _UsageError("calcite-afm: error: --width must be >= 1")
    if not 1 <= args.levels <= 5:
        raise _UsageError("calcite-afm: error: --levels must be 1 to 5")
    init = getattr(args, "init", None)
    if init:  # fine-tuning: its own budget (FINE_TUNE) unless told, also on a GPU
        extra = {k: v for k, v in (("iterations", args.iterations),
                                   ("batch_size", args.batch_size)) if v is not None}  # fmt: skip
    else:
        extra = _train_budget(args.iterations, args.batch_size, args.device, args.quiet)
    return TrainConfig(
        **extra,
        init=init,
        n_classes=int(args.classes),
        architecture=args.architecture,
        width=args.width,
        levels=args.levels,
        multiscale=args.multiscale,
        decoder=args.decoder,
        precision=args.precision,
        seed=args.seed,
        device=args.device,
        dilations=_dilations(args.dilations),
        checkpoint_path=str(args.out),
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``calcite-afm train --images ... --labels ... --out M.pt``: train and save a model.

    Prints the model path, the iterations run and the best validation accuracies as JSON.
    With ``--init`` it fine-tunes that model (``default``, ``default3`` or a file).
    """
    from ..segmentation import initial_model, train_model
    from ..segmentation.finetune import INIT_NAMES
    from ..segmentation.scale import record_training_pixel_sizes

    init = getattr(args, "init", None)
    shipped = init in INIT_NAMES and not Path(init).exists()
    if init and type(args.classes) is not int:  # --classes not given: the model's
        args.classes = initial_model(init).n_classes
    config = _train_config(args)
    inputs = [("--images", p) for p in args.images] + [("--labels", p) for p in args.labels]
    inputs += [] if shipped or not init else [("--init", init)]
    inputs += [("--val-images", p) for p in args.val_images or []]
    inputs += [("--val-labels", p) for p in args.val_labels or []]
    latest = ("--out (its latest checkpoint)", config.latest_checkpoint_path())
    _check_paths(inputs, files=[("--out", args.out), latest])
    images, labels, px = _read_pairs(args.images, args.labels, "")
    val_images = val_labels = None
    if args.val_images or args.val_labels:
        val_images, val_labels, _ = _read_pairs(
            args.val_images or [], args.val_labels or [], "validation "
        )
    result = train_model(
        images,
        labels,
        config,
        val_images=val_images,
        val_labels=val_labels,
        progress=_progress_printer("train", args.quiet),
    )
    record_training_pixel_sizes(result.model, px)  # pixel_size_nm (median) and the range
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
    """``calcite-afm segment INPUT --out L.tif``: write uint8 labels (and probabilities)."""
    from ..io import read_stack, write_tiff
    from ..pipeline import resolve_model
    from ..segmentation import assess_depth, predict_stack
    from ..segmentation.scale import height_unit_warning, pixel_size_warning

    _check_paths(
        [("INPUT", args.input), ("--model", args.model)],
        files=[("--out", args.out), ("--probabilities", args.probabilities)],
    )
    model = resolve_model(args.model)
    stack = read_stack(args.input, channel=args.channel)
    for text in (
        height_unit_warning(stack.metadata.get("z_unit"), stack.channel, "the movie"),
        pixel_size_warning(model, stack.pixel_size_nm, what="the movie"),
    ):
        if text:
            warnings.warn(text, UserWarning, stacklevel=1)
    unsure = np.full(stack.heights.shape[0], np.nan)  # each frame's mean uncertainty
    labels, probs = predict_stack(
        model,
        stack.heights,
        return_probabilities=bool(args.probabilities),
        progress=_progress_printer("segment", args.quiet),
        uncertainty_out=unsure,
        closed=not args.keep_open_pits,
    )
    # once, when the movie looks unlike the model's training data (and the pixel size did
    # not already say so)
    assess_depth(model, stack.pixel_size_nm, unsure, stack.heights.shape[1:]).warn()
    px, interval = stack.pixel_size_nm, stack.frame_interval_s
    with contextlib.ExitStack() as outputs:  # both files, or neither
        tmp = outputs.enter_context(_staged_file(args.out, "the labels"))
        write_tiff(tmp, labels, px, frame_interval_s=interval)
        if args.probabilities:
            tmp = outputs.enter_context(_staged_file(args.probabilities, "the probabilities"))
            write_tiff(tmp, probs, px, frame_interval_s=interval)
    print(f"wrote {Path(args.out)} {labels.shape} uint8 labels")
    if args.probabilities:
        print(f"wrote {Path(args.probabilities)} {probs.shape} float32 probabilities")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """``calcite-afm fit INPUT --labels L.tif --out T.csv``: fit every frame, write the table."""
    from .._util import atomic_directory
    from ..checks import check_lags
    from ..io import read_labels, read_stack
    from ..level import level_stack
    from ..outputs import check_output_folder, table_columns, write_figures, write_table_csv
    from ..pipeline import fit_series

    _check_paths(
        [("INPUT", args.input), ("--labels", args.labels)],
        files=[("--out", args.out)],
        folders=[("--figures", args.figures)],
    )
    if args.figures:
        check_output_folder(args.figures, (), figures=".", what="the figures folder")
    lags = _parse_lags(args.lags)
    stack = read_stack(args.input, channel=args.channel)
    labels = read_labels(args.labels, shape=stack.heights.shape)
    check_lags(lags, stack.heights.shape, args.axis, name="--lags")
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
        lags=lags,
        axis=args.axis,
        n_classes=n_classes,
        progress=_progress_printer("fit", args.quiet),
        increment_model=args.increment_model,
    )
    with contextlib.ExitStack() as outputs:  # the table and the figures, or neither
        if args.figures:
            folder = os.path.abspath(args.figures)
            tmp = outputs.enter_context(atomic_directory(folder, what="the figures folder"))
            written = write_figures(fits, rows, tmp, frame_times_s=times, figures="all")
        table = outputs.enter_context(_staged_file(args.out, "the table"))
        write_table_csv(table, rows, table_columns(n_classes, args.increment_model))
    print(f"wrote {Path(args.out)} ({len(rows)} rows)")
    if args.figures:
        print(f"wrote {len(written)} figures in {args.figures}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``calcite-afm run INPUT --out DIR``: clean, segment and fit; write every output.

    Prints the outputs written and the stage timings (s) as JSON.
    """
    from ..outputs import check_output_folder
    from ..pipeline import PipelineConfig, resolve_model, run_pipeline

    _check_paths([("INPUT", args.input), ("--model", args.model)], folders=[("--out", args.out)])
    check_output_folder(args.out)
    config = PipelineConfig(
        lags=_parse_lags(args.lags),
        register=not args.no_register,
        figures=args.figures,
        increment_model=args.increment_model,
        kinetics=not args.no_kinetics,
        rate_smooth_px=args.rate_smooth,
        closed_pits=not args.keep_open_pits,
        temporal_window=args.temporal_window,
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
    """``calcite-afm demo``: run the main job on the sample data; print the outputs."""
    from ..demo import run_demo

    _check_paths([], folders=[("--out", args.out)])
    outputs = run_demo(args.out, progress=_progress_printer("demo", args.quiet))
    print("demo outputs:")
    for name, path in outputs.items():
        print(f"  {name}: {path}")
    return 0
