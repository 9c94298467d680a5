"""What every ``calcite-afm`` command shares: usage errors, progress lines, lags, and
the argument types that refuse nonsense numbers (:func:`_int_arg`, :func:`_float_arg`)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import numpy as np

from .._util import ProgressFn, parse_lags
from ..errors import CalciteAFMError

#: Exit status of bad arguments or unreadable input (one line on stderr).
EXIT_USAGE = 2


class _UsageError(Exception):
    """A problem with the command line itself (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message}")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _progress_line(label: str, info: dict) -> str:
    """The words of one progress report (frame, iteration, loss, time, stage)."""
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
    return "  ".join(parts)


def _fraction(info: dict) -> float | None:
    """How far the current stage is (0..1), when the report says."""
    for done, total, offset in (("frame", "n_frames", 1), ("iteration", "n_iterations", 0)):
        if info.get(done) is not None and info.get(total):
            return min(max((info[done] + offset) / info[total], 0.0), 1.0)
    return None


def _progress_printer(label: str, quiet: bool = False, stream=None) -> ProgressFn | None:
    """A progress callback for the commands, writing on ``stream`` (stderr by default).

    On a terminal, one bar per stage updates in place (a new line when the stage changes
    or ends); in a log (stderr redirected to a file or a pipe), one line per report.

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> report = _progress_printer("level", stream=log)
    >>> report({"frame": 0, "n_frames": 2}); report({"frame": 1, "n_frames": 2})
    >>> print(log.getvalue().strip())
    level  frame 1/2
    level  frame 2/2
    """
    if quiet:
        return None
    out = sys.stderr if stream is None else stream
    is_tty = getattr(out, "isatty", None)
    if not (callable(is_tty) and is_tty()):
        return lambda info: print(_progress_line(label, info), file=out, flush=True)
    state = {"stage": None, "open": False}

    def report(info: dict) -> None:
        stage = info.get("stage", label)
        if state["open"] and stage != state["stage"]:
            out.write("\n")
        frac = _fraction(info)
        bar = "" if frac is None else "[" + ("#" * round(24 * frac)).ljust(24) + "] "
        out.write("\r" + bar + _progress_line(label, info) + "\x1b[K")
        state["stage"], state["open"] = stage, True
        if frac is not None and frac >= 1.0:
            out.write("\n")
            state["open"] = False
        out.flush()

    return report


def _parse_lags(text: str, name: str = "--lags") -> tuple[int, ...]:
    """Comma-separated pixels (``--lags``, ``--dilations``); bad text is a usage error.

    Examples
    --------
    >>> _parse_lags("1,2,4,8")
    (1, 2, 4, 8)
    >>> _parse_lags("1,x", name="--dilations")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.cli._common._UsageError: calcite-afm: error: --dilations must be ...
    """
    try:
        return parse_lags(text, error=CalciteAFMError, name=name)
    except CalciteAFMError as exc:
        raise _UsageError(f"calcite-afm: error: {exc}") from None


def _int_arg(low: int, high: int | None = None, what: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``low..high`` (no upper bound when None).

    ``what`` says what the number is (a unit, a reason), for the message.

    Examples
    --------
    >>> _int_arg(1, 8)("3")
    3
    >>> _int_arg(1, 8)("9")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a whole number from 1 to 8, got '9'
    """

    def parse(text: str) -> int:
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be a whole number {bound}{what}, got {text!r}"
            ) from None
        return value

    parse.__name__ = "whole number"
    return parse


def _float_arg(low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse ``type``: a finite number with ``low < value <= high``.

    Examples
    --------
    >>> _float_arg(0, math.inf, " of seconds")("2.5")
    2.5
    >>> _float_arg(0, math.inf, " of seconds")("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a positive finite number of seconds, got 'nan'
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low < value <= high):
            bound = "a positive finite number" if low == 0 else f"a number above {low:g}"
            limit = f" (at most {high:g})" if math.isfinite(high) else ""
            raise argparse.ArgumentTypeError(f"must be {bound}{what}{limit}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def _add_segmentation_options(p: argparse.ArgumentParser, temporal: bool = True) -> None:
    """``--keep-open-pits`` and (with ``temporal``) ``--temporal-window`` of a parser."""
    p.add_argument(
        "--keep-open-pits",
        action="store_true",
        help="keep the network's pit labels where they are not closed depressions (by "
        "default such regions, e.g. the foot of a step, are relabelled terrace)",
    )
    if temporal:
        p.add_argument(
            "--temporal-window",
            type=_int_arg(1),
            default=1,
            metavar="N",
            help="label each frame from the class probabilities averaged over N registered "
            "frames around it (odd; 1, the default: each frame alone; 3 smooths pits that "
            "flicker and halves the spurious pit tracks, see docs/kinetics.md)",
        )


_RATE_SMOOTH_MAX_PX = 50.0  # a wider Gaussian would blur a 512 px map into its mean


def _rate_smooth_arg(text: str) -> float:
    """An argparse ``type``: a Gaussian width from 0 (no smoothing) to 50 pixels.

    Examples
    --------
    >>> _rate_smooth_arg("0"), _rate_smooth_arg("0.7")
    (0.0, 0.7)
    >>> _rate_smooth_arg("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a number of pixels from 0 (none) to 50, got '-1'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= _RATE_SMOOTH_MAX_PX):
        raise argparse.ArgumentTypeError(
            f"must be a number of pixels from 0 (none) to {_RATE_SMOOTH_MAX_PX:g}, got {text!r}"
        )
    return value


def _add_rate_smooth_option(p: argparse.ArgumentParser) -> None:
    """``--rate-smooth PX`` of a parser that writes rate maps."""
    p.add_argument(
        "--rate-smooth",
        type=_rate_smooth_arg,
        default=0.0,
        metavar="PX",
        help="smooth the dissolution-rate maps by a Gaussian of PX pixels (0, the default: "
        "none; 0.5-1 averages the pixel noise of the heights, see docs/kinetics.md)",
    )
