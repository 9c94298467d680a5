"""TopoStats files (``.topostats``, HDF5) through AFMReader.

AFMReader's ``topostats.load_topostats`` returns a dict; every 2-D numeric array in it
is a channel (``image``, ``image_original``...), heights in nm, and
``pixel_to_nm_scaling`` is the pixel size in nm. The default channel is ``image``; the
scalar entries go to ``metadata["topostats"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AFMFileError
from ._common import Raw, _afmreader, _jsonable, _pick_channel, _short


def _read_topostats(path: Path, channel: str | None) -> Raw:
    """Read one image of a ``.topostats`` file (heights and pixel size in nm)."""
    topostats = _afmreader("topostats")
    try:
        data = topostats.load_topostats(path)
    except Exception as exc:
        raise AFMFileError(path, f"corrupt or truncated .topostats file ({_short(exc)})") from exc
    channels = [
        k
        for k, v in data.items()
        if isinstance(v, np.ndarray) and v.ndim == 2 and np.issubdtype(v.dtype, np.number)
    ]
    name = _pick_channel(path, channel, channels, ("image", "image_original"))
    px = data.get("pixel_to_nm_scaling")
    meta = {
        "channels": channels,
        "z_unit": "nm",
        "topostats": {
            k: _jsonable(v) for k, v in data.items() if not isinstance(v, (dict, np.ndarray))
        },
    }
    return np.asarray(data[name]), (float(px) if px else None), name, None, meta
