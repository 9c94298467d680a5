"""napari writers: label and image layers to ImageJ TIFF with the pixel size in nm."""

from __future__ import annotations

from typing import Any

import numpy as np

from .io import write_tiff

__all__ = ["write_labels", "write_image"]


def _pixel_size(meta: dict[str, Any]) -> float:
    if meta.get("pixel_size_nm"):
        return float(meta["pixel_size_nm"])
    scale = meta.get("scale")
    if scale is not None and len(scale) >= 2:
        return float(scale[-1])
    return 1.0


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer as a uint8 TIFF (0 unlabelled, 1-3 classes)."""
    labels = np.asarray(data)
    if labels.max(initial=0) > 255 or labels.min(initial=0) < 0:
        raise ValueError(f"{path}: label values must lie in 0..255 to be saved as uint8")
    md = meta.get("metadata") or {}
    px = float(md.get("pixel_size_nm") or _pixel_size(meta))
    out = write_tiff(path, labels.astype(np.uint8), px)
    return [str(out)]


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer as a float32 TIFF of heights in nm."""
    md = meta.get("metadata") or {}
    px = float(md.get("pixel_size_nm") or _pixel_size(meta))
    out = write_tiff(path, np.asarray(data, dtype=np.float32), px)
    return [str(out)]
