"""``calcite-afm kinetics IN --labels LABELS.tif --out DIR``: rates and pit tracks.

The kinetic outputs of ``calcite-afm run`` from labels the user gives (painted, or written
by ``calcite-afm segment``): the movie is levelled (unless ``--no-level``) and registered
(unless ``--no-register``; the labels move with their frames), then
:func:`napari_calcite_afm.kinetics.analyse_kinetics` measures the local dissolution
rates and tracks the pits, and DIR receives ``drift.csv``, ``rates.tif``, ``rates.csv``,
``pits.csv``, ``tracks.csv``, ``kinetics.png``, ``rates_frames.png`` and
``kinetics.json``. DIR is new, empty or an older kinetics folder, replaced as a whole
once everything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

from ._common import _add_rate_smooth_option, _float_arg, _progress_printer
from ._paths import _check_paths

__all__ = ["cmd_kinetics"]

#: Files of a kinetics folder (an older one may be replaced).
KINETICS_FOLDER_FILES = (
    "drift.csv",
    "rates.tif",
    "rates.csv",
    "pits.csv",
    "tracks.csv",
    "kinetics.png",
    "rates_frames.png",
    "kinetics.json",
)


def _add_kinetics_parser(sub) -> None:
    """Add ``kinetics`` to the subcommands ``sub`` (``parser.add_subparsers()``)."""
    p = sub.add_parser(
        "kinetics",
        help="dissolution-rate maps and pit tracks from a movie and its labels",
        description="Level and register the movie (the labels move with their frames), "
        "then write local dissolution-rate maps (rates.tif, nm/s), the rate per frame pair "
        "(rates.csv), the pits per frame (pits.csv), the pit tracks with growth, deepening "
        "and step retreat velocities (tracks.csv), drift.csv and figures into DIR.",
    )
    p.add_argument("input", help="AFM file, TIFF stack or folder of frames (heights)")
    p.add_argument("--labels", required=True, help="label TIFF (0-3), one frame per frame")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: new, empty or an older kinetics folder, replaced as a whole",
    )
    p.add_argument(
        "--frame-interval",
        type=_float_arg(0, float("inf"), " of seconds"),
        metavar="S",
        help="seconds between frames, where the file has no frame times",
    )
    p.add_argument("--no-level", action="store_true", help="the input is levelled already")
    p.add_argument("--no-register", action="store_true", help="the frames are registered already")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    _add_rate_smooth_option(p)
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_kinetics)


def cmd_kinetics(args: argparse.Namespace) -> int:
    """Run ``calcite-afm kinetics``; prints what was written and the movie's figures."""
    from .._util import atomic_directory, json_safe
    from ..io import read_labels, read_stack
    from ..kinetics import analyse_kinetics, write_kinetics
    from ..level import level_stack
    from ..outputs import check_output_folder, write_json

    _check_paths([("INPUT", args.input), ("--labels", args.labels)], folders=[("--out", args.out)])
    check_output_folder(args.out, KINETICS_FOLDER_FILES, figures=None, what="the kinetics folder")
    stack = read_stack(args.input, channel=args.channel)
    labels = read_labels(args.labels, shape=stack.heights.shape)
    times = stack.frame_times_s
    if (times is None or not np.isfinite(times).all()) and args.frame_interval:
        times = np.arange(stack.heights.shape[0]) * float(args.frame_interval)
    progress = _progress_printer("kinetics", args.quiet)
    heights = stack.heights if args.no_level else level_stack(stack.heights, progress=progress)
    result = analyse_kinetics(
        heights,
        labels,
        stack.pixel_size_nm,
        times,
        register=not args.no_register,
        rate_smooth_px=args.rate_smooth,
        progress=progress,
    )
    for message in result.messages:
        warnings.warn(message, UserWarning, stacklevel=1)
    folder = os.path.abspath(args.out)
    with atomic_directory(folder, what="the kinetics folder") as tmp:
        files = write_kinetics(result, tmp, figures=not args.no_figures)
        summary = {"input": str(args.input), "labels": str(args.labels), **result.summary()}
        write_json(tmp / "kinetics.json", summary)
    print(f"wrote {args.out}: " + ", ".join(sorted([*files, "kinetics.json"])))
    print(json.dumps(json_safe({k: summary[k] for k in ("time_unit", "mean", "frame_pairs")})))
    return 0
