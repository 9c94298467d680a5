"""Make the sample data shipped with napari-calcite-afm.

Writes, next to this script:

- ``calcite_series.tif``: a synthetic in-situ AFM movie of calcite {10-14} dissolving in
  water, 10 frames of 256 x 256 pixels (11.7 nm per pixel, 3 µm wide), one frame every
  300 s, float32 heights in nm *with* the measurement artifacts (tilt, bow, scan-line
  offsets, scars, noise, drift);
- ``calcite_labels.tif``: its ground truth, uint8 ``(frames, rows, cols)``,
  1 multilayer pit, 2 terrace, 3 monolayer pit, in the drifted frame of the raw movie
  (pixel by pixel with ``calcite_series.tif``).

Both are ImageJ hyperstacks with the layout of :func:`napari_calcite_afm.io.write_tiff`
(pixel size in the ImageJ resolution with unit ``nm``, ``finterval`` 300 s, the settings
as JSON in the ``Info`` property), but zlib-compressed so that the two files stay small
(``write_tiff`` writes uncompressed TIFF, which would be 3.3 MB here). The heights are
rounded to multiples of 2**-10 nm (< 0.001 nm, far below the 0.03-0.08 nm noise) before
compression, which roughly halves the file.

Run from anywhere::

    python sample_data/make_sample_data.py

The output is deterministic (fixed seed); the script reads both files back with
:func:`napari_calcite_afm.io.read_stack` and :func:`~napari_calcite_afm.io.read_labels`
and checks them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tifffile

from napari_calcite_afm.synthetic import make_series

HERE = Path(__file__).resolve().parent
IMAGE = HERE / "calcite_series.tif"
LABELS = HERE / "calcite_labels.tif"

SETTINGS = dict(
    n_frames=10,
    size=256,
    pixel_size_nm=11.7,
    frame_interval_s=300.0,
    seed=8,
    n_multilayer=2,  # two dislocation pits that meet during the movie
    monolayer_density_per_um2=2.0,
)
QUANTUM_NM = 2.0**-10


def _write(path: Path, data: np.ndarray, pixel_size_nm: float, frame_interval_s: float, meta):
    """ImageJ TIFF laid out as ``io.write_tiff`` writes it, zlib-compressed."""
    ij = {"axes": "TYX", "unit": "nm", "finterval": float(frame_interval_s)}
    saved = {"pixel_size_nm": float(pixel_size_nm), "frame_interval_s": float(frame_interval_s)}
    if data.dtype == np.float32:
        ij["vunit"] = "nm"
        saved["z_unit"] = "nm"
    saved["metadata"] = meta
    ij["Info"] = json.dumps({"napari_calcite_afm": saved}, default=str)
    tmp = path.with_name(f".{path.name}.tmp")
    tifffile.imwrite(
        tmp,
        data,
        imagej=True,
        resolution=(1.0 / pixel_size_nm, 1.0 / pixel_size_nm),
        metadata=ij,
        compression="zlib",
    )
    tmp.replace(path)


def main() -> int:
    series = make_series(**SETTINGS)
    heights = (np.round(series.raw / QUANTUM_NM) * QUANTUM_NM).astype(np.float32)
    labels = series.labels_raw.astype(np.uint8)
    px, dt = series.pixel_size_nm, series.frame_interval_s
    meta = {
        "description": "synthetic calcite {10-14} dissolution movie (napari_calcite_afm.synthetic)",
        "generator": "napari_calcite_afm.synthetic.make_series",
        "settings": SETTINGS,
        "drift_px": series.drift_px.tolist(),
        "height_quantum_nm": QUANTUM_NM,
    }
    _write(IMAGE, heights, px, dt, {**meta, "content": "raw heights (nm) with artifacts"})
    _write(
        LABELS,
        labels,
        px,
        dt,
        {**meta, "content": "labels: 1 multilayer pit, 2 terrace, 3 monolayer pit (raw frame)"},
    )

    # read back with the project's reader
    from napari_calcite_afm.io import read_labels, read_stack

    stack = read_stack(IMAGE)
    back = read_labels(LABELS, shape=stack.heights.shape)
    assert stack.heights.shape == heights.shape, stack.heights.shape
    assert np.array_equal(np.asarray(stack.heights, np.float32), heights)
    assert abs(stack.pixel_size_nm - px) < 1e-6, stack.pixel_size_nm
    assert stack.frame_interval_s is not None and abs(stack.frame_interval_s - dt) < 1e-6
    assert np.array_equal(back, labels)

    total = IMAGE.stat().st_size + LABELS.stat().st_size
    fractions = [float((labels == v).mean()) for v in (1, 2, 3)]
    print(f"wrote {IMAGE.name}: {heights.shape} float32 nm, {IMAGE.stat().st_size / 1e6:.2f} MB")
    print(f"wrote {LABELS.name}: {labels.shape} uint8, {LABELS.stat().st_size / 1e6:.3f} MB")
    print(f"total {total / 1e6:.2f} MB; label fractions (1, 2, 3): {np.round(fractions, 3)}")
    if total >= 3e6:
        print("error: the sample files exceed 3 MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
