"""The ``calcite-afm`` argument parser: subcommands, defaults and choices."""

from __future__ import annotations

import argparse

import pytest

from napari_calcite_afm.cli import (
    build_parser,
    cmd_demo,
    cmd_fit,
    cmd_info,
    cmd_level,
    cmd_run,
    cmd_segment,
    cmd_synth,
    cmd_train,
)
from napari_calcite_afm.cli.batch import cmd_batch
from napari_calcite_afm.cli.kinetics import cmd_kinetics


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_in_order_with_its_function():
    parser = build_parser()
    subs = _subparsers(parser)
    assert list(subs) == [
        "info",
        "level",
        "synth",
        "train",
        "segment",
        "fit",
        "run",
        "kinetics",
        "batch",
        "demo",
    ]
    funcs = [cmd_info, cmd_level, cmd_synth, cmd_train, cmd_segment, cmd_fit, cmd_run]
    funcs += [cmd_kinetics, cmd_batch, cmd_demo]
    for (name, sub), func in zip(subs.items(), funcs):
        assert sub.get_default("func") is func, name
        assert sub.prog == f"calcite-afm {name}"
        assert "--quiet" in sub.format_help() or name in ("info", "synth")


def test_defaults():
    parser = build_parser()
    args = parser.parse_args(["run", "in.tif", "--out", "o"])
    assert (args.model, args.lags, args.no_register, args.figures) == (
        "default",
        "1,2,4,8",
        False,
        "summary",
    )
    assert args.frame_interval is None and args.channel is None and args.quiet is False
    args = parser.parse_args(["train", "--images", "a", "b", "--labels", "c", "d", "--out", "m"])
    assert args.images == ["a", "b"] and args.labels == ["c", "d"]
    assert (args.iterations, args.batch_size, args.device, args.classes) == (None, None, "auto", 2)
    assert (args.architecture, args.width, args.dilations, args.levels) == ("unet", None, None, 3)
    assert (args.multiscale, args.decoder, args.precision, args.seed) == (None, "add", "auto", 0)
    assert parser.parse_args(["train", "--images", "a", "--labels", "c", "--out", "m",
                              "--no-multiscale"]).multiscale is False  # fmt: skip
    args = parser.parse_args(["level", "in.tif", "--out", "o.tif"])
    assert (args.order, args.rows, args.no_scars, args.no_zero_mean, args.register) == (
        2,
        "median_diff",
        False,
        False,
        False,
    )
    args = parser.parse_args(["synth", "--out", "d"])
    assert (args.frames, args.size, args.seed, args.pixel_size) == (10, 512, 0, None)
    assert parser.parse_args(["demo"]).out == "calcite-afm-demo"
    args = parser.parse_args(["fit", "i", "--labels", "l", "--out", "t.csv"])
    assert (args.axis, args.classes, args.figures, args.no_level) == ("both", 2, None, False)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "in.tif", "--out", "o", "--figures", "some"],
        ["fit", "i", "--labels", "l", "--out", "t", "--axis", "z"],
        ["train", "--images", "a", "--labels", "b", "--out", "m", "--classes", "4"],
        ["level", "in.tif", "--out", "o", "--rows", "mean"],
        ["segment", "in.tif"],
    ],
)
def test_bad_arguments_are_one_line_usage_errors(argv):
    from napari_calcite_afm.cli import _UsageError

    with pytest.raises(_UsageError, match=rf"^calcite-afm {argv[0]}: error: "):
        build_parser().parse_args(argv)


def test_the_bounds_match_the_library_and_help_stays_light():
    import subprocess
    import sys

    from napari_calcite_afm.cli import parser
    from napari_calcite_afm.level.settings import MAX_ORDER

    assert parser.MAX_ORDER == MAX_ORDER
    heavy = "{'scipy.ndimage', 'torch', 'matplotlib'}"
    code = f"import sys, napari_calcite_afm.cli; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
