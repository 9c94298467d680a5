"""``calcite-afm demo``: the whole chain on the embedded sample data.

Reads the sample movie (synthetic calcite, 10 frames of 256 x 256 pixels, raw with
artifacts), cleans it (levelling and drift registration), segments it with the shipped
model, fits the multimodal Gaussian model to every frame, writes the table, figures and
stacks, and scores the segmentation against the sample's ground truth. The output
folder is written as a whole (:func:`napari_calcite_afm.outputs.write_outputs`): an
older demo or run folder is replaced once everything is ready.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._util import ProgressFn
from .data import load_sample
from .level import shift_stack
from .outputs import check_output_folder, write_json, write_outputs
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
        Output folder: new, empty, or an older output folder (replaced as a whole; a
        folder holding other files is refused before any work).
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
    t0 = time.perf_counter()
    out = check_output_folder(Path(out_dir))
    stack, truth = load_sample()
    config = PipelineConfig()
    result = run_pipeline(stack, model="default", config=config, progress=progress)
    # the ground truth pairs with the raw frames: move it like the registration moved them
    truth2 = np.where(truth == 3, 2, truth).astype(np.uint8)
    if result.shifts_px is not None:
        moved = shift_stack(truth2.astype(np.float32), result.shifts_px)
        truth2 = np.where(np.isfinite(moved), np.rint(moved), 0).astype(np.uint8)
    scored = (result.labels > 0) & (truth2 > 0)
    metrics = segmentation_metrics(
        np.where(scored, truth2, 0), np.where(scored, result.labels, 0), result.n_classes
    )

    def score(folder: Path) -> dict[str, Path]:
        result.summary["timings_s"]["with_outputs_s"] = time.perf_counter() - t0
        return {"score": write_json(folder / "segmentation_score.json", metrics)}

    if progress is not None:
        n = result.labels.shape[0]
        progress({"stage": "write", "frame": n - 1, "n_frames": n})
    return write_outputs(
        result,
        out,
        figures=config.figures,
        max_frame_figures=config.max_frame_figures,
        extra=score,
    )
