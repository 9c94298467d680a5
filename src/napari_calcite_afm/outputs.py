"""The files of a segment-and-fit run: results table (CSV), figures (PNG), summary (JSON).

The summary's content is :func:`napari_calcite_afm.summary.run_summary`.

:func:`write_outputs` writes everything a :class:`~napari_calcite_afm.pipeline.PipelineResult`
holds into one folder; the other functions write one kind of file each and are used on
their own by ``calcite-afm fit``, the demo and the napari Statistics widget. Every file
is written atomically (:func:`napari_calcite_afm._util.atomic_write`): a reader never
sees half a file, and two writers of the same path do not share a temporary file. A
run's folder is written whole (:func:`napari_calcite_afm._util.atomic_directory`): it is
filled under a temporary name and replaces an older output folder at once, so stale
figures never mix with new ones; :func:`check_output_folder` refuses to replace a folder
that holds anything else (:data:`RUN_OUTPUT_FILES`).

The results table has one row per frame and lag with, first, the columns
:data:`TABLE_COLUMNS` (``frame, time_s, lag_px, lag_nm, c, mu_A, sigma_A, rho_A, mu_B,
sigma_B, rho_B, ks_height, ks_increment, pit_count, mean_pit_area_nm2,
retreat_nm_per_min``) and then the extra columns of
:func:`napari_calcite_afm.stats.row_columns` (:func:`table_columns` gives them all).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._util import atomic_directory, atomic_write, json_safe
from .errors import AFMFileError
from .stats import FrameFit, row_columns

if TYPE_CHECKING:  # pragma: no cover - only for the annotations
    from .pipeline import PipelineResult

__all__ = [
    "RUN_OUTPUT_FILES",
    "TABLE_COLUMNS",
    "check_output_folder",
    "table_columns",
    "write_figures",
    "write_json",
    "write_outputs",
    "write_table_csv",
]

#: The leading columns of the results table, in order (an interface: keep them).
TABLE_COLUMNS: list[str] = [
    "frame",
    "time_s",
    "lag_px",
    "lag_nm",
    "c",
    "mu_A",
    "sigma_A",
    "rho_A",
    "mu_B",
    "sigma_B",
    "rho_B",
    "ks_height",
    "ks_increment",
    "pit_count",
    "mean_pit_area_nm2",
    "retreat_nm_per_min",
]


#: The files of a run's output folder (``figures/`` holds the figures; the demo adds its
#: score): an older folder holding only these is replaced by a new run.
RUN_OUTPUT_FILES: tuple[str, ...] = (
    "cleaned.tif",
    "labels.tif",
    "probabilities.tif",
    "table.csv",
    "summary.json",
    "segmentation_score.json",
    # the kinetics (napari_calcite_afm.kinetics.write_kinetics)
    "drift.csv",
    "rates.tif",
    "rates.csv",
    "pits.csv",
    "tracks.csv",
)
#: Keys of the kinetic files in a run's ``files`` (summary.json).
_KINETIC_KEYS = {
    "drift.csv": "drift",
    "rates.tif": "rates",
    "rates.csv": "rate_table",
    "pits.csv": "pits",
    "tracks.csv": "tracks",
}


_FIGURE = re.compile(r"fit_frame\d+\.png|parameters_vs_time\.png|kinetics\.png|rates_frames\.png")
_OUR_TEMPORARY = re.compile(r"\..+\.(tmp|old)")  # atomic_write / atomic_directory's names


def _ours(entry: Path, files: Collection[str], figures: str | None) -> bool:
    """Whether ``entry`` (in an output folder) is something this package writes there."""
    name = entry.name
    if _OUR_TEMPORARY.fullmatch(name):
        return True
    if entry.is_symlink():
        return False
    if entry.is_file():
        return name in files or (figures == "." and bool(_FIGURE.fullmatch(name)))
    if entry.is_dir() and figures not in (None, ".") and name == figures:
        return all(_ours(e, (), ".") for e in entry.iterdir())
    return False


def check_output_folder(
    path: str | os.PathLike,
    files: Collection[str] = RUN_OUTPUT_FILES,
    *,
    figures: str | None = "figures",
    what: str = "the output folder",
) -> Path:
    """Check that ``path`` may be written as a whole: absent, empty, or an older output.

    An output folder is replaced as a whole (nothing stale remains), so a folder that
    holds anything this package did not write there (the inputs, other work) is refused
    rather than deleted.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder.
    files : collection of str
        The names of the files an older output folder may hold.
    figures : str or None
        The name of its subfolder of figures (``fit_frameNNNN.png``,
        ``parameters_vs_time.png``); ``"."`` when the figures lie in the folder itself.
    what : str
        What the folder is, for the message.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    AFMFileError
        When ``path`` is a file, or a folder holding something else (the message names
        up to three of those entries).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "table.csv").write_text("frame")
    >>> check_output_folder(folder) == folder
    True
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_output_folder(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.AFMFileError: ...: holds notes.txt, which ... did not write...
    """
    path = Path(path)
    if not os.path.lexists(path):
        return path
    if not path.is_dir():
        raise AFMFileError(path, f"exists and is not a folder; {what} must be a folder")
    try:
        foreign = sorted(e.name for e in path.iterdir() if not _ours(e, files, figures))
    except OSError as exc:
        raise AFMFileError(path, f"cannot read {what}: {exc}") from None
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        names = ", ".join(foreign[:3]) + more
        raise AFMFileError(
            path,
            f"holds {names}, which calcite-afm did not write; {what} is replaced as a whole, "
            "so choose a new or empty folder",
        )
    return path


def table_columns(
    n_classes: int = 2, increment_model: str = "gaussian", *, uncertainty: bool = False
) -> list[str]:
    """All columns of the results table: :data:`TABLE_COLUMNS`, then the stats extras.

    Parameters
    ----------
    n_classes : {2, 3}
        Segmentation classes; three classes add the monolayer-pit columns (``c_M``...).
    increment_model : {"gaussian", "gsg"}
        ``"gsg"`` adds the GSG columns (``gsg_alpha_A``..., before ``flags``).
    uncertainty : bool
        Add ``uncertainty`` right after :data:`TABLE_COLUMNS`: the frame's mean
        uncertainty of the segmentation, 0 to 1 (a run's table has it;
        :mod:`napari_calcite_afm.segmentation.depth`).

    Returns
    -------
    list of str
        Column names in table order.

    Examples
    --------
    >>> cols = table_columns(2)
    >>> cols[:3], cols[:16] == TABLE_COLUMNS
    (['frame', 'time_s', 'lag_px'], True)
    >>> "c_M" in table_columns(3), "gsg_alpha_A" in table_columns(2, "gsg")
    (True, True)
    >>> table_columns(2, uncertainty=True)[16]
    'uncertainty'
    """
    extra = [c for c in row_columns(n_classes, increment_model) if c not in TABLE_COLUMNS]
    return TABLE_COLUMNS + (["uncertainty"] if uncertainty else []) + extra


def _increment_model(table: Sequence[dict]) -> str:
    """``"gsg"`` when the table carries the GSG columns, else ``"gaussian"``."""
    return "gsg" if table and "ks_increment_gsg" in table[0] else "gaussian"


# --------------------------------------------------------------------------- JSON


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as indented strict JSON, atomically (NaN and inf become ``null``).

    numpy scalars and arrays are converted by :func:`napari_calcite_afm._util.json_safe`.

    Parameters
    ----------
    path : str or Path
        Output file (the folder is created if needed).
    data : dict
        What to write.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    AFMFileError
        When the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> out = write_json(Path(tempfile.mkdtemp()) / "s.json", {"c": np.float32(0.5), "x": np.nan})
    >>> out.read_text()
    '{\\n  "c": 0.5,\\n  "x": null\\n}'
    """
    path = Path(path)
    with atomic_write(path, "w", what="the JSON file") as fh:
        fh.write(json.dumps(json_safe(data), indent=2))
    return path


# --------------------------------------------------------------------------- CSV


def _csv_cell(value: Any) -> Any:
    """A table value as written: NaN and infinities as empty cells."""
    return "" if isinstance(value, float) and not math.isfinite(value) else value


def write_table_csv(
    path: str | Path, rows: Sequence[dict], columns: Sequence[str] | None = None
) -> Path:
    """Write the results table as CSV (NaN written as empty cells), atomically.

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    rows : sequence of dict
        Table rows; keys not in ``columns`` are left out.
    columns : sequence of str, optional
        Column order (default: the keys of the first row, or :data:`TABLE_COLUMNS` for
        an empty table).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    AFMFileError
        When the file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> rows = [{"frame": 0, "c": 0.25}, {"frame": 1, "c": float("nan")}]
    >>> out = write_table_csv(Path(tempfile.mkdtemp()) / "t.csv", rows)
    >>> out.read_text().splitlines()
    ['frame,c', '0,0.25', '1,']
    """
    path = Path(path)
    columns = list(columns or (rows[0].keys() if rows else TABLE_COLUMNS))
    with atomic_write(path, "w", what="the table", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return path


# --------------------------------------------------------------------------- figures


def _figure_frames(n: int, figures: str, max_frame_figures: int) -> list[int]:
    """Indices of the frames that get a fit figure (all, or evenly spaced ones)."""
    if figures == "all" or n <= max_frame_figures:
        return list(range(n))
    return sorted({round(float(v)) for v in np.linspace(0, n - 1, max_frame_figures)})


def write_figures(
    fits: Sequence[FrameFit],
    table: Sequence[dict],
    folder: str | Path,
    *,
    frame_times_s: Sequence[float] | None = None,
    figures: str = "summary",
    max_frame_figures: int = 3,
) -> list[Path]:
    """Write the per-frame fit figures and the parameters-against-time figure (PNG).

    Parameters
    ----------
    fits : sequence of FrameFit
        The per-frame fits (with histograms).
    table : sequence of dict
        The results table.
    folder : str or Path
        Output folder (created).
    frame_times_s : sequence of float, optional
        Frame times for the titles, s.
    figures : {"summary", "all", "none"}
        Which frames get a fit figure (``fit_frameNNNN.png``): ``summary`` up to
        ``max_frame_figures`` evenly spaced frames, ``all`` every frame, ``none`` no
        figure at all (not even ``parameters_vs_time.png``).
    max_frame_figures : int
        Number of evenly spaced frames in ``summary`` mode.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> write_figures([], [], "unused-folder")
    []
    """
    from .plotting import frame_figure, parameters_figure

    if figures == "none" or not fits:
        return []
    folder = Path(folder)
    n = len(fits)
    times = np.full(n, np.nan) if frame_times_s is None else np.asarray(frame_times_s, float)
    written = []
    for i in _figure_frames(n, figures, max_frame_figures):
        fig = frame_figure(fits[i], frame=i, time_s=float(times[i]))
        written.append(_save_png(fig, folder / f"fit_frame{i:04d}.png"))
    written.append(_save_png(parameters_figure(list(table)), folder / "parameters_vs_time.png"))
    return written


def _save_png(fig, path: Path) -> Path:
    """Save a matplotlib figure as PNG (90 dpi), atomically."""
    with atomic_write(path, "wb", what="the figure") as fh:
        fig.savefig(fh, dpi=90, format="png")
    return path


# --------------------------------------------------------------------------- all


def _frame_interval(times: np.ndarray | None) -> float | None:
    """The median time between frames, s (None unless every time is known)."""
    if times is not None and len(times) > 1 and np.all(np.isfinite(times)):
        return float(np.median(np.diff(times)))
    return None


def _write_stacks(result: PipelineResult, out: Path, interval: float | None) -> dict[str, str]:
    """Write the cleaned heights, labels and probabilities as ImageJ TIFFs."""
    from .io import write_tiff

    stacks = {"cleaned": result.cleaned, "labels": result.labels}
    if result.probabilities is not None:
        stacks["probabilities"] = result.probabilities
    return {
        name: str(
            write_tiff(out / f"{name}.tif", data, result.pixel_size_nm, frame_interval_s=interval)
        )
        for name, data in stacks.items()
    }


def _rate_columns(table: list[dict]) -> list[str]:
    """The kinetic columns of a run's table (``rate_*``, ``dissolved_volume_nm3``)."""
    if not table:
        return []
    return [c for c in table[0] if c.startswith("rate_") or c == "dissolved_volume_nm3"]


def _write_kinetics(kinetics, folder: Path, figures: str) -> dict[str, str]:
    """drift.csv, rates.tif, rates.csv, pits.csv, tracks.csv (and the kinetic figures)."""
    from .kinetics import write_kinetics, write_kinetics_figures

    files = write_kinetics(kinetics, folder, figures=False)
    if figures != "none":
        write_kinetics_figures(kinetics, folder / "figures")
    return {_KINETIC_KEYS[name]: path for name, path in files.items()}


def write_outputs(
    result: PipelineResult,
    out_dir: str | Path,
    *,
    figures: str = "summary",
    max_frame_figures: int = 3,
    extra: Callable[[Path], dict[str, str | Path] | None] | None = None,
) -> dict[str, str]:
    """Write a run's outputs into a folder, as a whole.

    Files: ``cleaned.tif`` (float32 nm), ``labels.tif`` (uint8), ``probabilities.tif``
    (float32, frames x classes), ``table.csv``, ``summary.json`` and ``figures/*.png``.
    The TIFFs carry the pixel size (nm) and the median frame interval (s). The folder is
    filled under a temporary name and then replaces ``out_dir`` at once: an interrupted
    write leaves the older folder (or none), never a mixed or half-written one.

    Parameters
    ----------
    result : PipelineResult
        What :func:`napari_calcite_afm.pipeline.run_pipeline` returned; its ``files``
        and ``summary["files"]`` are filled in.
    out_dir : str or Path
        Output folder: new, empty, or an older output folder (see
        :func:`check_output_folder`), which is replaced.
    figures, max_frame_figures
        As in :func:`write_figures`.
    extra : callable, optional
        Called with the temporary folder before ``summary.json`` is written; it may
        write more files there (names in :data:`RUN_OUTPUT_FILES`) and returns
        ``{name: path}`` of them, or None.

    Returns
    -------
    dict
        ``{name: path}`` of the files written (also stored in ``result.files``).

    Raises
    ------
    AFMFileError
        When ``out_dir`` is a file or a folder holding other files, or cannot be
        written.

    Examples
    --------
    >>> import tempfile
    >>> from napari_calcite_afm.pipeline import run_pipeline
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(2, 64, seed=3)
    >>> res = run_pipeline(s.raw, pixel_size_nm=s.pixel_size_nm, frame_interval_s=300)
    >>> sorted(write_outputs(res, tempfile.mkdtemp(), figures="none"))
    ... # doctest: +NORMALIZE_WHITESPACE
    ['cleaned', 'drift', 'labels', 'pits', 'probabilities', 'rate_table', 'rates',
     'summary', 'table', 'tracks']
    """
    out = check_output_folder(out_dir, what="the output folder")
    # an absolute name: "." or "a/.." have no name to put a temporary folder beside
    with atomic_directory(os.path.abspath(out), what="the output folder") as tmp:
        written: dict[str, str | Path] = dict(
            _write_stacks(result, tmp, _frame_interval(result.frame_times_s))
        )
        written["table"] = write_table_csv(
            tmp / "table.csv",
            result.table,
            table_columns(
                result.n_classes,
                _increment_model(result.table),
                uncertainty=bool(result.table) and "uncertainty" in result.table[0],
            )
            + _rate_columns(result.table),
        )
        figs = write_figures(
            result.fits,
            result.table,
            tmp / "figures",
            frame_times_s=result.frame_times_s,
            figures=figures,
            max_frame_figures=max_frame_figures,
        )
        if getattr(result, "kinetics", None) is not None:
            written.update(_write_kinetics(result.kinetics, tmp, figures))
        if figs or (tmp / "figures").is_dir():
            written["figures"] = tmp / "figures"
        if extra is not None:
            written.update(extra(tmp) or {})
        files = {name: str(out / Path(p).relative_to(tmp)) for name, p in written.items()}
        files["summary"] = str(out / "summary.json")
        result.summary["files"] = files
        write_json(tmp / "summary.json", result.summary)
    result.files = files
    return files
