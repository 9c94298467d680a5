"""``calcite-afm batch``: the one-click pipeline on many movies, on dask.distributed.

:func:`_add_batch_parser` adds the subcommand to the parser and :func:`cmd_batch` runs
it (:func:`napari_calcite_afm.batch.run_batch`). Exit status: 0 when every movie
succeeded, 1 when some failed (listed in ``DIR/failures.csv``), 2 for bad arguments
(one line on stderr). The library is imported only when the command runs, so that
``calcite-afm --help`` stays quick.
"""

from __future__ import annotations

import argparse

from ._common import _add_rate_smooth_option, _add_segmentation_options, _parse_lags, _stderr

__all__ = ["cmd_batch"]


def _add_batch_parser(sub) -> None:
    """Add ``batch`` to the subcommands ``sub`` (``parser.add_subparsers()``)."""
    p = sub.add_parser(
        "batch",
        help="run the one-click pipeline on many movies (dask.distributed)",
        description="Clean, segment and fit many movies, one dask task per movie, each "
        "into DIR/<movie>/ as 'run' writes it. Exit status 0 when all succeeded, 1 when "
        "some failed (DIR/failures.csv), 2 for bad arguments.",
    )
    p.add_argument("inputs", nargs="*", metavar="IN", help="a movie: a file, or a folder of frames")
    p.add_argument(
        "--from-list",
        metavar="FILE",
        help="text file naming one movie per line (# comments; relative to the file's folder)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default="default", help="model file, 'default' or 'default3'")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of the local cluster (default: one per core, as memory allows)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use a running dask scheduler (tcp://host:8786) instead of a local cluster",
    )
    p.add_argument("--frame-interval", type=float, metavar="S", help="seconds between frames")
    p.add_argument(
        "--resume", action="store_true", help="skip movies whose folder is complete already"
    )
    p.add_argument("--lags", default="1,2,4,8", help="lags in pixels (1,2,4,8)")
    p.add_argument("--no-register", action="store_true", help="skip drift registration")
    p.add_argument(
        "--increment-model",
        choices=["gaussian", "gsg"],
        default="gaussian",
        help="gaussian, or gsg (also the generalized sub-Gaussian model)",
    )
    p.add_argument("--no-kinetics", action="store_true", help="skip rates and pit tracks")
    _add_rate_smooth_option(p)
    _add_segmentation_options(p)
    p.add_argument(
        "--figures", choices=["summary", "all", "none"], default="summary", help="(summary)"
    )
    p.add_argument("--channel", help="channel to read (default: the height channel)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    """``calcite-afm batch IN [IN ...] --out DIR``: every movie through the pipeline.

    Prints a progress line per finished movie on stderr (count, failures, time left)
    and the counts and reports on stdout. Returns 0 when every movie succeeded, 1 when
    some failed; bad arguments raise (``main`` prints them and exits with 2).
    """
    from ..batch import format_progress, run_batch
    from ..pipeline import PipelineConfig

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
    result = run_batch(
        args.inputs,
        args.out,
        from_list=args.from_list,
        model=args.model,
        config=config,
        workers=args.workers,
        scheduler=args.scheduler,
        frame_interval_s=args.frame_interval,
        channel=args.channel,
        resume=args.resume,
        progress=None if args.quiet else lambda info: _stderr(format_progress(info)),
    )
    counts = {s: len(result.movies_with(s)) for s in ("ok", "failed", "skipped", "not run")}
    print(
        f"wrote {result.out_dir}: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['skipped']} skipped (complete already)"
    )
    for name in ("all_movies", "failures", "summary"):
        print(f"  {result.files[name]}")
    return result.exit_status
