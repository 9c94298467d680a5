"""``calcite-afm demo``: the whole chain on the embedded sample data.

Reads the sample movie (synthetic calcite, 10 frames of 256 x 256 pixels, raw with
artifacts), cleans it (levelling and drift registration), segments it with the shipped
model, fits the multimodal Gaussian model to every frame, writes the table, figures and
stacks, and scores the segmentation against the sample's ground truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import ProgressFn
from .data import load_sample
from .level import shift_stack
from .outputs import write_json
from .pipeline import PipelineConfig, run_pipeline
from .segmentation import segmentation_metrics

__all__ = ["run_demo"]


def run_demo(
    out_dir: str | Path = "calcite-afm-demo", progress: ProgressFn | None = None
) -> dict[str, str]:
    """Run the main job on the sample data and write its outputs.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    progress : callable, optional
        Progress callback, as in :func:`napari_calcite_afm.pipeline.run_pipeline`.

    Returns
    -------
    dict
        ``{name: path}`` of the outputs, ``"score"`` included (a JSON file with the pixel
        accuracy, mean class accuracy and IoU of the segmentation against the ground
        truth).

    Examples
    --------
    A run takes about 10 s (10 frames of 256 x 256 pixels):

    >>> import tempfile
    >>> files = run_demo(tempfile.mkdtemp())  # doctest: +SKIP
    >>> sorted(files)  # doctest: +SKIP
    ['cleaned', 'figures', 'labels', 'probabilities', 'score', 'summary', 'table']
    """
    out = Path(out_dir)
    stack, truth = load_sample()
    result = run_pipeline(
        stack, model="default", config=PipelineConfig(), out_dir=out, progress=progress
    )
    files = dict(result.files)
    # the ground truth pairs with the raw frames: move it like the registration moved them
    truth2 = np.where(truth == 3, 2, truth).astype(np.uint8)
    if result.shifts_px is not None:
        moved = shift_stack(truth2.astype(np.float32), result.shifts_px)
        truth2 = np.where(np.isfinite(moved), np.rint(moved), 0).astype(np.uint8)
    scored = (result.labels > 0) & (truth2 > 0)
    metrics = segmentation_metrics(
        np.where(scored, truth2, 0), np.where(scored, result.labels, 0), result.n_classes
    )
    score_path = out / "segmentation_score.json"
    write_json(score_path, metrics)
    files["score"] = str(score_path)
    return files
