"""The summary of a segment-and-fit run (``summary.json``): :func:`run_summary`.

What was read (file, format, channel, shape, pixel size), the model and its training
scale, the levelling and run settings, the drift, the stage timings, the per-movie means
of the results table and the warnings of the run, each a sentence.
"""

from __future__ import annotations

import math

import numpy as np

from . import __version__
from .outputs import TABLE_COLUMNS, _increment_model
from .segmentation.scale import (
    height_unit_warning,
    model_pixel_size,
    movie_words,
    pixel_size_warning,
)

__all__ = ["run_summary"]

#: GSG columns averaged in the summary of a run fitted with the GSG model.
_GSG_MEANS = ("gsg_alpha_A", "gsg_alpha_B", "ks_height_gsg", "ks_increment_gsg")


def _nanmean(rows: list[dict], key: str) -> float:
    v = np.array([float(r.get(key, np.nan)) for r in rows], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def run_summary(stack, model, settings, config, table, n_classes, shifts, valid, timings) -> dict:
    """The JSON summary of a run (``summary.json``), as a dict.

    Parameters
    ----------
    stack : napari_calcite_afm.io.AFMStack
        The stack that was read (source, format, shape, pixel size in nm).
    model : napari_calcite_afm.model.SegmentationModel
        The segmentation model used.
    settings : napari_calcite_afm.level.LevelSettings
        The levelling applied.
    config : napari_calcite_afm.pipeline.PipelineConfig
        The run's settings.
    table : list of dict
        The results table; the means are taken over the rows of the first lag.
    n_classes : int
        Segmentation classes.
    shifts : numpy.ndarray or None
        ``(frames, 2)`` drift corrections, pixels (rounded to 0.001 px).
    valid : tuple of slice or None
        The region valid in every registered frame (rows, cols), pixels.
    timings : dict
        Seconds per stage (rounded to 1 ms).

    Returns
    -------
    dict
        Keys ``package_version, source, format, channel, shape, pixel_size_nm, n_classes, model
        (with ``training_pixel_size_nm``), levelling, config, drift_shifts_px,
        valid_region, timings_s, means, warnings`` (each a sentence: a channel that is
        not heights in nm, :func:`~napari_calcite_afm.segmentation.scale.height_unit_warning`;
        the model's pixel size against the movie's,
        :func:`~napari_calcite_afm.segmentation.scale.pixel_size_warning`).
    """
    what = movie_words(stack.source)
    first_lag = [r for r in table if r["lag_px"] == config.lags[0]] if config.lags else table
    return {
        "package_version": __version__,
        "source": str(stack.source) if stack.source else None,
        "format": stack.format,
        "channel": stack.channel,
        "shape": list(stack.heights.shape),
        "pixel_size_nm": float(stack.pixel_size_nm),
        "n_classes": n_classes,
        "model": {
            "source": model.source or "in memory",
            "architecture": model.metadata()["architecture"],
            "normalisation": model.metadata()["normalisation"],
            "training_pixel_size_nm": model_pixel_size(model)[0],
        },
        "levelling": settings.to_dict(),
        "config": config.to_dict(),
        "drift_shifts_px": None if shifts is None else np.round(shifts, 3).tolist(),
        "valid_region": None if valid is None else [[s.start, s.stop] for s in valid],
        "warnings": [
            w
            for w in [
                height_unit_warning(stack.metadata.get("z_unit"), stack.channel, what),
                pixel_size_warning(model, stack.pixel_size_nm, what),
            ]
            if w
        ],
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "means": {
            key: _nanmean(first_lag, key)
            for key in (*TABLE_COLUMNS[4:], "em_ks_height")
            + (_GSG_MEANS if _increment_model(table) == "gsg" else ())
        },
    }
