"""The ``calcite-afm`` argument parser: one ``_add_<command>_parser`` per subcommand."""

from __future__ import annotations

import argparse

from ._common import (
    _add_rate_smooth_option,
    _add_segmentation_options,
    _float_arg,
    _int_arg,
    _Parser,
)
from .batch import _add_batch_parser
from .commands import (
    cmd_demo,
    cmd_fit,
    cmd_info,
    cmd_level,
    cmd_run,
    cmd_segment,
    cmd_synth,
    cmd_train,
)
from .kinetics import _add_kinetics_parser

__all__ = ["build_parser"]

_INPUT_HELP = "AFM file, TIFF, .npy/.npz, or a folder of frames"

#: Bounds of the numbers the commands take: beyond them a run makes no sense or runs
#: away with time or memory (the message of a refused value gives the bound).
_SEED = _int_arg(0, 2**32 - 1)
#: ``level.settings.MAX_ORDER``, written out so that ``--help`` does not import scipy
MAX_ORDER = 8
_SECONDS = _float_arg(0, float("inf"), " of seconds")
SYNTH_MAX_FRAMES, SYNTH_MAX_SIZE = 10_000, 2048
TRAIN_MAX_ITERATIONS, TRAIN_MAX_BATCH, TRAIN_MAX_WIDTH = 1_000_000, 256, 128


def _add_input(p: argparse.ArgumentParser, name: str = "input") -> None:
    p.add_argument(name, help=_INPUT_HELP)


def _add_channel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", help="channel to read (default: the height channel)")


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_info_parser(sub) -> None:
    p = sub.add_parser("info", help="print a file's shape, pixel size, channel and times as JSON")
    _add_input(p, "file")
    _add_channel(p)
    p.set_defaults(func=cmd_info)


def _add_level_parser(sub) -> None:
    p = sub.add_parser("level", help="remove tilt, bow, scan-line offsets, scars (and drift)")
    _add_input(p)
    p.add_argument(
        "--out",
        required=True,
        help="output TIFF (float32 heights in nm), or a Gwyddion file where it ends in .gwy",
    )
    p.add_argument("--register", action="store_true", help="also correct frame-to-frame drift")
    _add_channel(p)
    p.add_argument(
        "--order",
        type=_int_arg(0, MAX_ORDER, " (no scanner needs a higher order)"),
        default=2,
        help=f"polynomial background order (2; 0 to {MAX_ORDER})",
    )
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
    _add_quiet(p)
    p.set_defaults(func=cmd_level)


def _add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic calcite dissolution movie with labels")
    p.add_argument(
        "--out",
        required=True,
        help="output folder (image.tif, labels.tif, clean.tif, synth.json): new, empty or "
        "an older synth folder, replaced as a whole",
    )
    p.add_argument(
        "--frames",
        type=_int_arg(1, SYNTH_MAX_FRAMES),
        default=10,
        help=f"number of frames (10; at most {SYNTH_MAX_FRAMES})",
    )
    p.add_argument(
        "--size",
        type=_int_arg(16, SYNTH_MAX_SIZE, " pixels"),
        default=512,
        help=f"frame size in pixels (512; 16 to {SYNTH_MAX_SIZE})",
    )
    p.add_argument("--seed", type=_SEED, default=0, help="random seed (0; 0 to 2**32 - 1)")
    p.add_argument(
        "--generator",
        choices=("standard", "wide", "cellular"),  # synthetic.GENERATORS (not imported here)
        default="standard",
        help="standard (the default), wide (its settings drawn from wide ranges: pixel "
        "sizes, steps, pit shapes and walls, roughness, noise, artifacts) or cellular (a "
        "lattice simulation of step retreat, built another way)",
    )

    p.add_argument(
        "--pixel-size",
        type=_float_arg(0, 1000, " of nm"),
        default=None,
        help="pixel size in nm (standard: 11.7; wide, cellular: drawn in 2-20 unless given; "
        "at most 1000, and --size x --pixel-size at most 50 um)",
    )
    p.set_defaults(func=cmd_synth)


def _add_train_data_arguments(p: argparse.ArgumentParser) -> None:
    """Inputs, output, budget and device of ``train``."""
    p.add_argument("--images", nargs="+", required=True, help="raw height stacks (any format)")
    p.add_argument(
        "--labels", nargs="+", required=True, help="uint8 label stacks (0 unlabelled, 1, 2, 3)"
    )
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument(
        "--iterations",
        type=_int_arg(1, TRAIN_MAX_ITERATIONS),
        default=None,
        help="training iterations (1500; 3200 on a GPU, see docs/segmentation.md)",
    )
    p.add_argument(
        "--batch-size",
        type=_int_arg(1, TRAIN_MAX_BATCH, " patches"),
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


def _add_train_network_arguments(p: argparse.ArgumentParser) -> None:
    """The network's architecture and the arithmetic of ``train``."""
    p.add_argument(
        "--architecture",
        choices=["unet", "dilated"],
        default="unet",
        help="network: 'unet' (U-Net with a dilated bottleneck, the default) or 'dilated' "
        "(the study's dilated CNN)",
    )
    p.add_argument(
        "--width",
        type=_int_arg(1, TRAIN_MAX_WIDTH, " filters"),
        default=None,
        help="filters per layer of the dilated CNN (16), or of the U-Net's first stage (8)",
    )
    p.add_argument(
        "--dilations",
        default=None,
        help="dilations of the dilated CNN's 3 x 3 layers (1,2,4,8,16; the study's design "
        "is 1,2,4 with --width 32), or of the U-Net's bottleneck (1,2)",
    )
    p.add_argument(
        "--levels", type=_int_arg(1, 5), default=3, help="downsamplings of the U-Net (3; 1 to 5)"
    )
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


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train the segmentation network on image and label stacks")
    _add_train_data_arguments(p)
    _add_train_network_arguments(p)
    p.add_argument("--seed", type=_SEED, default=0, help="random seed (0; 0 to 2**32 - 1)")
    p.add_argument(
        "--init",
        default=None,
        help="fine-tune a trained model instead of training a new network: 'default', "
        "'default3' (the shipped models) or a model file (.pt). Its architecture, levelling "
        "and normalisation are kept (the network options are ignored), --classes defaults to "
        "its class count, and the budget to 300 iterations of 4 patches",
    )

    class _ClassesNotGiven(int):
        """The default --classes (2), told from a given 2 by its type: with --init, the
        initial model's class count is used instead."""

    p.set_defaults(classes=_ClassesNotGiven(2))
    _add_quiet(p)
    p.set_defaults(func=cmd_train)


def _add_segment_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment a stack with a trained model")
    _add_input(p)
    p.add_argument("--model", default="default", help="model file, or 'default' (2 classes)")
    p.add_argument("--out", required=True, help="output label TIFF (uint8; not an input)")
    p.add_argument(
        "--probabilities",
        help="also write class probabilities to this TIFF (both files are written, or neither)",
    )
    _add_segmentation_options(p, temporal=False)
    _add_channel(p)
    _add_quiet(p)
    p.set_defaults(func=cmd_segment)


def _add_fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit the multimodal Gaussian model to labelled frames")
    _add_input(p)
    p.add_argument("--labels", required=True, help="label TIFF of the same shape")
    p.add_argument("--out", required=True, help="output table (.csv)")
    p.add_argument("--lags", default="1,2,4,8", help="lags in pixels (1,2,4,8)")
    p.add_argument("--axis", choices=["both", "x", "y"], default="both", help="lag direction")
    p.add_argument("--classes", type=int, choices=[2, 3], default=2, help="2 or 3 modes (2)")
    p.add_argument(
        "--increment-model",
        choices=["gaussian", "gsg"],
        default="gaussian",
        help="gaussian (the multimodal Gaussian mixture) or gsg (also the generalized "
        "sub-Gaussian model: the table adds its columns)",
    )
    p.add_argument(
        "--figures",
        help="folder for the fit figures (PNG): new, empty or an older figures folder, "
        "replaced as a whole",
    )
    p.add_argument("--no-level", action="store_true", help="use the heights as they are")
    p.add_argument(
        "--frame-interval", type=_SECONDS, help="seconds between frames (positive, finite)"
    )
    _add_channel(p)
    _add_quiet(p)
    p.set_defaults(func=cmd_fit)


def _add_run_parser(sub) -> None:
    p = sub.add_parser("run", help="one click: clean, segment and fit a whole time series")
    _add_input(p)
    p.add_argument("--model", default="default", help="model file, or 'default'")
    p.add_argument(
        "--out",
        required=True,
        help="output folder: new, empty or an older output folder, replaced as a whole once "
        "the run has succeeded",
    )
    p.add_argument("--lags", default="1,2,4,8", help="lags in pixels (1,2,4,8)")
    p.add_argument("--no-register", action="store_true", help="skip drift registration")
    p.add_argument("--no-kinetics", action="store_true", help="skip the rate maps and pit tracks")
    _add_rate_smooth_option(p)
    _add_segmentation_options(p)
    p.add_argument(
        "--increment-model",
        choices=["gaussian", "gsg"],
        default="gaussian",
        help="gaussian, or gsg (also the generalized sub-Gaussian model)",
    )
    p.add_argument(
        "--figures", choices=["summary", "all", "none"], default="summary", help="(summary)"
    )
    p.add_argument(
        "--frame-interval", type=_SECONDS, help="seconds between frames (positive, finite)"
    )
    _add_channel(p)
    _add_quiet(p)
    p.set_defaults(func=cmd_run)


def _add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded sample data")
    p.add_argument(
        "--out",
        default="calcite-afm-demo",
        help="output folder (calcite-afm-demo): new, empty or an older demo folder, replaced "
        "as a whole",
    )
    _add_quiet(p)
    p.set_defaults(func=cmd_demo)


#: The subcommands, in the order of ``calcite-afm --help``.
_COMMANDS = (
    _add_info_parser,
    _add_level_parser,
    _add_synth_parser,
    _add_train_parser,
    _add_segment_parser,
    _add_fit_parser,
    _add_run_parser,
    _add_kinetics_parser,
    _add_batch_parser,
    _add_demo_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``calcite-afm`` argument parser (exposed for documentation and tests).

    Returns
    -------
    argparse.ArgumentParser
        One subparser per command; each sets ``func``, the ``cmd_*`` function that runs it.

    Examples
    --------
    >>> argv = ["fit", "movie.tif", "--labels", "l.tif", "--out", "t.csv"]
    >>> args = build_parser().parse_args(argv)
    >>> args.func is cmd_fit, args.lags, args.classes
    (True, '1,2,4,8', 2)
    """
    from .. import __version__

    parser = _Parser(
        prog="calcite-afm",
        description="Read, clean, segment and model AFM movies of dissolving calcite.",
    )
    parser.add_argument("--version", action="version", version=f"calcite-afm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add_parser in _COMMANDS:
        add_parser(sub)
    return parser
