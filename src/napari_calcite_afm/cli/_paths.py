"""The output paths of a command, checked before any work, and written all or none.

:func:`_check_paths` refuses, on one line, an output that would overwrite or replace an
input (same path, same file through a link, a folder holding an input, a file inside an
input folder), two outputs that collide, a file output that is a folder and a folder
output that is a file. ``_staged_file`` (``_util.atomic_path``) gives a writer a
temporary path beside its output that becomes the output only when the whole command
has succeeded, so that commands with two outputs write both or neither.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._util import atomic_path
from ._common import _UsageError

#: ``--model`` values that name a shipped model rather than a file.
_MODEL_NAMES = ("default", "default2", "default3")

#: (option, path) pairs; a None path is skipped.
Named = Sequence[tuple[str, "str | os.PathLike | None"]]


def _real(path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def _same(a, b) -> bool:
    """The same path once links are resolved, or the same file (a hard link)."""
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _within(inner, outer) -> bool:
    """Whether ``inner`` lies inside the folder ``outer`` (links resolved)."""
    return _real(outer) in _real(inner).parents


def _fail(option: str, path, problem: str):
    raise _UsageError(f"calcite-afm: error: {option} {path}: {problem}")


def _check_kind(option: str, path, folder: bool) -> None:
    """A file output must not be a folder, a folder output not a file; parents folders."""
    p = Path(os.path.expanduser(path))
    if folder and p.exists() and not p.is_dir():
        _fail(option, path, f"exists and is not a folder; {option} names a folder")
    if not folder and p.is_dir():
        _fail(option, path, f"is a folder; {option} names a file to write")
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                _fail(option, path, f"{parent} is a file, not a folder")
            break


def _check_against_input(option: str, out, folder: bool, name: str, inp) -> None:
    """Refuse ``out`` when writing it would change or replace the input ``inp``."""
    if _same(out, inp):
        what = "folder" if Path(inp).is_dir() else "file"
        _fail(option, out, f"is the input {what} {inp} ({name}): refusing to overwrite an input")
    if folder and _within(inp, out):
        _fail(
            option,
            out,
            f"holds the input {inp} ({name}) and would be replaced as a whole: "
            f"choose another {option}",
        )
    if Path(inp).is_dir() and _within(out, inp):
        _fail(
            option,
            out,
            f"lies inside the input folder {inp} ({name}), where it would become part of "
            "the input: choose a path outside it",
        )


def _check_paths(inputs: Named, files: Named = (), folders: Named = ()) -> None:
    """Refuse outputs that would overwrite an input or collide, before any work.

    Parameters
    ----------
    inputs : sequence of (option, path)
        What the command reads (``"INPUT"``, ``"--labels"``, ``"--model"``...); the
        shipped model names (``"default"``) are not paths and are skipped.
    files : sequence of (option, path)
        The files the command writes.
    folders : sequence of (option, path)
        The folders the command writes (each replaced as a whole).

    Raises
    ------
    _UsageError
        One line naming the option, the path and the problem.

    Examples
    --------
    >>> _check_paths([("INPUT", "movie.tif")], files=[("--out", "movie.tif")])
    Traceback (most recent call last):
    ...
    napari_calcite_afm.cli._common._UsageError: calcite-afm: error: --out movie.tif: is the \
input file movie.tif (INPUT): refusing to overwrite an input
    """

    def shipped(option: str, path) -> bool:
        return option == "--model" and str(path) in _MODEL_NAMES and not Path(path).exists()

    ins = [(n, p) for n, p in inputs if p is not None and not shipped(n, p)]
    outs = [(n, p, False) for n, p in files if p is not None]
    outs += [(n, p, True) for n, p in folders if p is not None]
    for option, out, folder in outs:
        _check_kind(option, out, folder)
        for name, inp in ins:
            _check_against_input(option, out, folder, name, inp)
    for i, (opt_a, a, folder_a) in enumerate(outs):
        for opt_b, b, folder_b in outs[i + 1 :]:
            if _same(a, b):
                _fail(opt_b, b, f"is also {opt_a}: give each output its own path")
            for (o_in, p_in), (o_out, p_out, f_out) in (
                ((opt_a, a), (opt_b, b, folder_b)),
                ((opt_b, b), (opt_a, a, folder_a)),
            ):
                if f_out and _within(p_in, p_out):
                    _fail(
                        o_in,
                        p_in,
                        f"lies inside {o_out} {p_out}, which is replaced as a whole: "
                        "choose a path outside it",
                    )


_staged_file = atomic_path  # the name the commands use
