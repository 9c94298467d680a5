"""Small helpers shared by the library's stages (no Qt): one copy of each.

- :data:`ProgressFn` and :data:`StopFlag`, the types of the ``progress`` and ``stop``
  arguments of every long-running function, and :func:`stop_requested`;
- :func:`thread_map` and :func:`available_cpus` for frame-parallel work;
- :func:`settings_from_dict` for the settings dataclasses;
- :func:`json_safe` and :func:`atomic_write`, used by every file the library writes;
- :func:`parse_lags`, the one parser of comma-separated lags (CLI and widgets).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import AFMFileError, CalciteAFMError, Cancelled

__all__ = [
    "Cancelled",
    "ProgressFn",
    "StageClock",
    "StopFlag",
    "atomic_directory",
    "atomic_path",
    "atomic_write",
    "available_cpus",
    "json_safe",
    "parse_lags",
    "settings_from_dict",
    "stop_requested",
    "thread_map",
]

#: A progress callback: called with a dict (``stage``, ``done``, ``total``, ...).
ProgressFn = Callable[[dict], None]

#: A stop request: a callable returning True to stop, or a ``threading.Event``.
StopFlag = Callable[[], bool] | threading.Event


def stop_requested(stop: StopFlag | None) -> bool:
    """True when ``stop`` (None, a callable or a ``threading.Event``) asks to stop."""
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def thread_map(fn: Callable[[Any], Any], items: Iterable, workers: int | None) -> Iterator:
    """``fn(item)`` for each item, in order, computed on up to ``workers`` threads.

    Lazy, with at most ``2 * workers`` results pending, so a long stack is never held
    twice in memory; numpy and scipy release the GIL in their array loops, which is where
    the threads overlap. ``workers`` None means one per available core; 1 runs everything
    in the calling thread. Closing the iterator early (a stop request) cancels the work
    not yet started.
    """
    n = available_cpus() if workers is None else int(workers)
    if n < 1:
        raise CalciteAFMError(f"workers must be a positive integer or None, got {workers!r}")
    if n == 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=n) as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def settings_from_dict(cls: type, d: dict, error: type[Exception], what: str):
    """``cls(**d)`` for a settings dataclass, naming unknown keys in an ``error``.

    ``what`` names the kind of setting in the message ("levelling", "training").
    """
    if not isinstance(d, dict):
        raise error(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise error(
            f"unknown {what} setting(s) {', '.join(map(repr, unknown))}; "
            f"known settings: {', '.join(sorted(known))}"
        )
    return cls(**d)


def json_safe(obj: Any, *, finite: bool = True, max_array: int | None = None, _depth: int = 0):
    """A copy of ``obj`` that :func:`json.dumps` writes as strict JSON.

    numpy scalars and arrays become Python numbers and lists, tuples and sets lists,
    bytes latin-1 text (trailing NULs dropped), paths and other objects strings, and dict
    keys strings. Non-finite floats become ``None`` unless ``finite`` is False.

    Parameters
    ----------
    obj : object
        What to convert (nested dicts and lists are converted recursively).
    finite : bool, optional
        Write NaN and infinities as ``None`` (strict JSON; the default).
    max_array : int, optional
        Arrays with more elements are summarised as ``"<array shape=... dtype=...>"``.

    Examples
    --------
    >>> json_safe({"a": np.float32(1.5), 2: (np.int64(3), float("nan"))})
    {'a': 1.5, '2': [3, None]}
    >>> json_safe(np.zeros((10, 10)), max_array=64)
    '<array shape=[10, 10] dtype=float64>'
    """
    if _depth > 16:
        return str(obj)
    kw = {"finite": finite, "max_array": max_array, "_depth": _depth + 1}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return None if finite and not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {
            (k.decode("latin-1") if isinstance(k, bytes) else str(k)): json_safe(v, **kw)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v, **kw) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("latin-1").rstrip("\x00")
    if isinstance(obj, np.generic):
        return json_safe(obj.item(), **kw)
    if isinstance(obj, np.ndarray):
        if max_array is not None and obj.size > max_array:
            return f"<array shape={list(obj.shape)} dtype={obj.dtype}>"
        return json_safe(obj.tolist(), **kw)
    return str(obj)


def _umask() -> int:
    """The process umask, read without changing it (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, what: str = "the file", **open_kw
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` at once.

    A crash or an exception inside the block leaves ``path`` as it was (the temporary
    file is removed), and two writers of the same path never share a temporary file.
    The folder is created if needed; the file gets the usual permissions (umask).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : str, optional
        ``"wb"`` (default) or ``"w"`` (text; ``open_kw`` such as ``newline`` apply).
    what : str, optional
        What is written, for the error message (e.g. ``"the model"``).

    Raises
    ------
    AFMFileError
        When the folder or file cannot be written (the message names the file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(out, "w") as fh:
    ...     _ = fh.write("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AFMFileError(path, f"cannot write {what}: {exc}") from None
    try:
        with os.fdopen(fd, mode, **open_kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise AFMFileError(path, f"cannot write {what}: {exc}") from None
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, what: str = "the output folder") -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; on success it becomes ``path`` at once.

    A crash or an exception inside the block leaves ``path`` as it was and removes the
    temporary folder, so a folder at ``path`` is always a complete one. An existing
    ``path`` is replaced as a whole on success (no stale files from an older run remain);
    it must be a folder.

    Parameters
    ----------
    path : str or os.PathLike
        The folder to create or replace.
    what : str, optional
        What the folder is, for the error message.

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.

    Raises
    ------
    AFMFileError
        When ``path`` is an existing file, or the folder cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with atomic_directory(out) as tmp:
    ...     _ = (tmp / "table.csv").write_text("frame")
    >>> sorted(p.name for p in out.iterdir())
    ['table.csv']
    """
    import shutil

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AFMFileError(path, f"exists and is not a folder; {what} must be a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise AFMFileError(path, f"cannot write {what}: {exc}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise AFMFileError(path, f"cannot write {what}: {exc}") from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "the file") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it becomes ``path`` on success.

    The temporary file lies in a private folder next to ``path`` (same file system, so
    the final rename is atomic); nesting several of these in a
    :class:`contextlib.ExitStack` writes all the outputs or none of them: a failure in
    the block removes every temporary file and leaves the outputs as they were.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    ...     out.exists()
    False
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise AFMFileError(path, f"cannot write {what}: {exc}") from None
    try:
        yield folder / path.name
        try:
            os.replace(folder / path.name, path)
        except OSError as exc:
            raise AFMFileError(path, f"cannot write {what}: {exc}") from None
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def parse_lags(text: str, *, error: type[Exception] = CalciteAFMError, name: str = "lags"):
    """Parse comma- (or semicolon-) separated lags in pixels, keeping the first of repeats.

    Parameters
    ----------
    text : str
        For example ``"1, 2, 4, 8"``.
    error : type of Exception, optional
        Raised on bad input.
    name : str, optional
        How the message names the value (e.g. ``"--lags"`` or ``"--dilations"``).

    Returns
    -------
    tuple of int
        Positive lags in pixels, in the given order.

    Examples
    --------
    >>> parse_lags("1, 2,4;8,2")
    (1, 2, 4, 8)
    >>> parse_lags("0,1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: lags must be positive whole numbers ...
    """
    parts = [v.strip() for v in str(text).replace(";", ",").split(",") if v.strip()]
    try:
        values = tuple(dict.fromkeys(int(v) for v in parts))
    except ValueError:
        raise error(
            f"{name} must be comma-separated whole numbers of pixels like '1,2,4,8', got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise error(f"{name} must be positive whole numbers of pixels, got {text!r}")
    return values


class StageClock:
    """Elapsed time, stage timings and progress reports of one run.

    Examples
    --------
    >>> seen = []
    >>> clock = StageClock(seen.append)
    >>> with clock.timed("read_s"):
    ...     clock.report("read", 0, 1)
    >>> seen[0]["stage"], sorted(clock.timings)
    ('read', ['read_s'])
    """

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.t0

    def report(self, stage: str, frame: int = 0, n_frames: int = 1) -> None:
        """Send ``dict(stage, frame, n_frames, elapsed_s)`` to the progress callback."""
        if self.progress is not None:
            self.progress(
                {"stage": stage, "frame": frame, "n_frames": n_frames, "elapsed_s": self.elapsed()}
            )

    @contextlib.contextmanager
    def timed(self, key: str) -> Iterator[None]:
        """Store the seconds the block took as ``timings[key]``."""
        t = time.perf_counter()
        yield
        self.timings[key] = time.perf_counter() - t
