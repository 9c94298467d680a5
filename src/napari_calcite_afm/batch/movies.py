"""The movies of a batch: inputs, ``--from-list`` files, unique names, finished folders.

A *movie* is one input of ``calcite-afm batch``: a file (a TIFF stack, a vendor movie) or
a folder of frames, exactly what :func:`napari_calcite_afm.io.read_stack` reads. Each
movie gets a *name*, the name of its output folder ``DIR/<name>/``: the file's stem (or
the folder's name), made unique when two inputs share it (``a/movie.tif`` and
``b/movie.tif`` become ``a_movie`` and ``b_movie``).

A movie's folder is *complete* (and ``--resume`` skips it) when its ``summary.json``, the
file a run writes last, parses, every file it lists is there, and it was made with the
same pipeline settings and model (:func:`is_complete`).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AFMFileError, CalciteAFMError

__all__ = [
    "REPORT_FILES",
    "Movie",
    "check_out_dir",
    "collect_movies",
    "is_complete",
    "movie_names",
    "read_movie_list",
]

#: The files a batch writes beside the movie folders (no movie folder takes these names).
REPORT_FILES = ("failures.csv", "all_movies.csv", "batch_summary.json")


@dataclass(frozen=True)
class Movie:
    """One input of a batch.

    Attributes
    ----------
    name : str
        Name of its output folder (unique within the batch; letters, digits, ``._-``).
    source : str
        Absolute path of the file or folder of frames.

    Examples
    --------
    >>> Movie("movie", "/data/movie.tif").name
    'movie'
    """

    name: str
    source: str


def _clean(text: str) -> str:
    """A folder name from any text: word characters, dots and dashes; no leading dot."""
    name = re.sub(r"[^\w.-]+", "_", text).strip("._")[:200]
    if not name:
        return "movie"
    return name + "_movie" if name.casefold() in REPORT_FILES else name


def _stem(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _parents(path: Path) -> list[str]:
    return [p for p in path.parent.parts if p != path.anchor]


def _label(path: Path, depth: int, with_suffix: bool) -> str:
    """``parent_..._stem`` with ``depth`` parent folders (and the extension if asked)."""
    parents = _parents(path)
    parts = parents[max(0, len(parents) - depth) :] if depth else []
    last = _stem(path)
    if with_suffix and path.suffix:
        last += "_" + path.suffix.lstrip(".")
    return _clean("_".join([*parts, last]))


def _disambiguate(paths: list[Path], taken: set[str]) -> list[str]:
    """Names for paths whose stems collide: the fewest parent folders that tell them apart."""
    depth_max = max(len(_parents(p)) for p in paths)
    for with_suffix in (False, True):
        for depth in range(int(not with_suffix), depth_max + 1):
            names = [_label(p, depth, with_suffix) for p in paths]
            keys = {n.casefold() for n in names}
            if len(keys) == len(paths) and not keys & taken:
                return names
    return [_label(p, depth_max, True) for p in paths]


def movie_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Unique output-folder names for movies, in the order given.

    The name is the file's stem or the folder's name. Inputs that share one (ignoring
    case, since some file systems do) are told apart by their parent folders
    (``a/movie.tif`` -> ``a_movie``), or by their extension when they sit in the same
    folder (``movie.tif`` -> ``movie_tif``). Characters other than letters, digits,
    ``_``, ``.`` and ``-`` become ``_``.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The movies (files or folders of frames), each given once.

    Returns
    -------
    list of str

    Raises
    ------
    CalciteAFMError
        When a movie is given twice.

    Examples
    --------
    >>> movie_names(["/d/a/movie.tif", "/d/b/movie.tif", "/d/b/other scan.spm"])
    ['a_movie', 'b_movie', 'other_scan']
    >>> movie_names(["/d/movie.tif", "/d/movie.gwy"])
    ['movie_tif', 'movie_gwy']
    """
    absolute = [Path(os.path.abspath(p)) for p in paths]
    seen: dict[Path, int] = {}
    for i, p in enumerate(absolute):
        key = p.resolve()
        if key in seen:
            raise CalciteAFMError(
                f"{paths[i]}: movie given twice (inputs {seen[key] + 1} and {i + 1})"
            )
        seen[key] = i
    names = [_clean(_stem(p)) for p in absolute]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        groups[name.casefold()].append(i)
    taken = {k for k, idx in groups.items() if len(idx) == 1}
    for idx in (idx for idx in groups.values() if len(idx) > 1):
        for i, name in zip(idx, _disambiguate([absolute[i] for i in idx], taken), strict=True):
            names[i] = name
            taken.add(name.casefold())
    # last resort (a disambiguated name equal to another movie's): number the repeats
    counts: dict[str, int] = defaultdict(int)
    for i, name in enumerate(names):
        counts[name.casefold()] += 1
        if counts[name.casefold()] > 1:
            names[i] = f"{name}-{counts[name.casefold()]}"
    return names


def read_movie_list(path: str | os.PathLike) -> list[str]:
    """The movies listed in a text file, one path per line (``--from-list``).

    Blank lines and lines starting with ``#`` are skipped; surrounding spaces are
    removed. Relative paths are taken relative to the list file's folder, so a list
    travels with its data.

    Parameters
    ----------
    path : str or os.PathLike
        The list file (UTF-8).

    Returns
    -------
    list of str
        Absolute paths, in the list's order.

    Raises
    ------
    AFMFileError
        When the list cannot be read, or a listed movie does not exist (the message
        gives its line number).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "a.tif").touch()
    >>> _ = (folder / "list.txt").write_text("# my movies\\n\\na.tif\\n")
    >>> [pathlib.Path(p).name for p in read_movie_list(folder / "list.txt")]
    ['a.tif']
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AFMFileError(path, "movie list not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AFMFileError(path, f"cannot read the movie list: {exc}") from None
    movies = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        movie = Path(os.path.abspath(path.parent / Path(entry).expanduser()))
        if not movie.exists():
            raise AFMFileError(path, f"line {number}: {entry}: no such file or folder")
        movies.append(str(movie))
    return movies


def _check_input(path: Path) -> None:
    from ..io import is_supported

    if not path.exists():
        raise AFMFileError(path, "no such file or folder")
    if path.is_dir():
        if not is_supported(path):
            raise AFMFileError(path, "the folder holds no file that calcite-afm reads")
    elif not path.is_file():  # a pipe or a device would block or never end
        raise AFMFileError(path, "not a regular file or a folder")
    elif not is_supported(path):
        raise AFMFileError(
            path, f"not a file type calcite-afm reads ({path.suffix or 'no extension'})"
        )


def collect_movies(
    inputs: Iterable[str | os.PathLike] = (), from_list: str | os.PathLike | None = None
) -> list[Movie]:
    """The movies of a batch: ``inputs`` then those of the list file, named uniquely.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Files or folders of frames, one movie each.
    from_list : str or os.PathLike, optional
        A file naming one movie per line (:func:`read_movie_list`).

    Returns
    -------
    list of Movie

    Raises
    ------
    AFMFileError
        A movie that does not exist, a file of a type no reader handles, a folder with
        no readable file.
    CalciteAFMError
        No movie at all, or a movie given twice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for sub in ("a", "b"):
    ...     (folder / sub).mkdir()
    ...     (folder / sub / "movie.tif").touch()
    >>> [m.name for m in collect_movies([folder / "a/movie.tif", folder / "b/movie.tif"])]
    ['a_movie', 'b_movie']
    """
    paths = [Path(os.path.abspath(p)) for p in inputs]
    for p in paths:
        _check_input(p)
    if from_list is not None:
        listed = [Path(p) for p in read_movie_list(from_list)]
        for p in listed:
            _check_input(p)
        paths += listed
    if not paths:
        raise CalciteAFMError("no movies given: name files or folders, or --from-list FILE")
    return [Movie(n, str(p)) for n, p in zip(movie_names(paths), paths, strict=True)]


def check_out_dir(out_dir: str | os.PathLike, movies: Sequence[Movie]) -> Path:
    """Refuse an output folder that is a file, or whose movie folders would replace an input.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The batch's output folder.
    movies : sequence of Movie
        The batch's movies.

    Returns
    -------
    pathlib.Path
        ``out_dir`` as an absolute path.

    Raises
    ------
    AFMFileError
        When ``out_dir`` is an existing file, or ``out_dir/<movie>`` is an input or holds
        one.

    Examples
    --------
    >>> check_out_dir("/tmp/results", [Movie("m", "/data/m.tif")]).name
    'results'
    >>> check_out_dir("/data", [Movie("m", "/data/m")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.AFMFileError: /data/m: is an input; ...
    """
    out = Path(os.path.abspath(out_dir))
    if out.exists() and not out.is_dir():
        raise AFMFileError(out, "exists and is not a folder; --out must be a folder")
    sources = [Path(m.source).resolve() for m in movies]
    for movie in movies:
        target = (out / movie.name).resolve()
        for src in sources:
            if src == target or target in src.parents:
                raise AFMFileError(
                    out / movie.name,
                    f"is an input; a batch into {out} would replace it (choose another --out)",
                )
    return out


def _same(a, b) -> bool:
    """JSON values equal once both went through JSON (tuples as lists, keys as text)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def is_complete(
    folder: str | os.PathLike, *, config: dict | None = None, model_source: str | None = None
) -> bool:
    """Tell whether a movie's output folder holds a finished run (what ``--resume`` skips).

    Complete means: ``summary.json`` (written last) parses, ``table.csv`` and every file
    the summary lists are in the folder, and, when given, the run used the same
    pipeline settings (``config``, :meth:`PipelineConfig.to_dict`) and model file.

    Parameters
    ----------
    folder : str or os.PathLike
        The movie's folder, ``DIR/<movie>``.
    config : dict, optional
        The batch's pipeline settings, to compare with the summary's ``config``.
    model_source : str, optional
        The model file used, to compare with the summary's ``model.source``.

    Returns
    -------
    bool
        Never raises.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> is_complete(folder)
    False
    >>> _ = (folder / "table.csv").write_text("frame\\n")
    >>> _ = (folder / "summary.json").write_text('{"files": {"table": "table.csv"}}')
    >>> is_complete(folder), is_complete(folder, config={"lags": [1]})
    (True, False)
    """
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        files = summary.get("files") or {}
        names = {Path(p).name for p in files.values()} | {"table.csv"}
        if not all((folder / name).exists() for name in names):
            return False
        if config is not None and not _same(summary.get("config"), config):
            return False
        if model_source is not None:
            return (summary.get("model") or {}).get("source") == model_source
        return True
    except (OSError, ValueError, TypeError, AttributeError):
        return False
