"""``calcite-afm``: the command line, a thin layer over the library.

Subcommands: ``info``, ``level``, ``synth``, ``train``, ``segment``, ``fit``, ``run`` and
``demo`` (:mod:`.commands`, one function each; :mod:`.parser` builds their arguments).
Bad arguments or unreadable input print one line on stderr and exit with status 2,
without a traceback. Heavy modules (torch, matplotlib) are imported only by the
subcommands that need them, so ``calcite-afm --help`` answers at once.
``python -m napari_calcite_afm.cli`` is the same as ``calcite-afm``.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Sequence

from ..errors import CalciteAFMError
from ._common import EXIT_USAGE, _stderr, _UsageError

# the old module's private helpers, for code that imported them from here
from ._common import _parse_lags as _parse_lags
from ._common import _Parser as _Parser
from ._common import _progress_printer as _progress_printer
from .commands import _read_pairs as _read_pairs
from .commands import _train_budget as _train_budget
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
from .parser import build_parser

__all__ = [
    "EXIT_USAGE",
    "build_parser",
    "cmd_demo",
    "cmd_fit",
    "cmd_info",
    "cmd_level",
    "cmd_run",
    "cmd_segment",
    "cmd_synth",
    "cmd_train",
    "main",
]


@contextlib.contextmanager
def _one_line_warnings():
    """Within the block, the library's warnings print as ``calcite-afm: warning: ...``."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text not in seen:
            seen.add(text)
            _stderr(f"calcite-afm: warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``calcite-afm``; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after ``calcite-afm`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad arguments or unreadable input (one line on stderr, no
        traceback; an output that would overwrite an input is a bad argument), 130 when
        interrupted.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> main(["synth", "--out", folder, "--frames", "2", "--size", "32"])  # doctest: +ELLIPSIS
    wrote .../image.tif and .../labels.tif ((2, 32, 32), standard generator, 11.7 nm per pixel)
    0
    >>> main(["fit", folder + "/image.tif", "--labels", folder + "/labels.tif",
    ...       "--out", folder + "/t.csv", "--lags", "0"])
    2
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with _one_line_warnings():
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
    except MemoryError as exc:  # a corrupt size field that a reader did not catch
        _stderr(f"calcite-afm: error: out of memory ({exc or 'no details'}): a corrupt input?")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _stderr("calcite-afm: interrupted")
        return 130
