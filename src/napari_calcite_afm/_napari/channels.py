"""The channel chosen for each AFM file, remembered between napari sessions.

The Clean widget's channel list writes the choice here; the reader opens the file with
it the next time. The choices live in ``<cache>/channels.json`` (see
:func:`~napari_calcite_afm._napari.widgets._autosave.cache_dir`), keyed by the file's
absolute path. No Qt and no napari here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._util import atomic_write
from ..errors import CalciteAFMError
from .widgets._autosave import cache_dir

__all__ = ["channels_file", "remember_channel", "remembered_channel"]

#: At most this many files are remembered (the oldest choices are dropped).
MAX_FILES = 500


def channels_file() -> Path:
    """The JSON file of the remembered channels (``<cache>/channels.json``)."""
    return cache_dir() / "channels.json"


def _key(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().resolve())


def _load() -> dict[str, str]:
    try:
        data = json.loads(channels_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remembered_channel(path: str | os.PathLike) -> str | None:
    """The channel last chosen for ``path``, or None.

    Examples
    --------
    >>> import os, tempfile
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"NAPARI_CALCITE_AFM_CACHE": tempfile.mkdtemp()}):
    ...     remember_channel("/data/scan.spm", "Amplitude")
    ...     remembered_channel("/data/scan.spm"), remembered_channel("/data/other.spm")
    ('Amplitude', None)
    """
    return _load().get(_key(path))


def remember_channel(path: str | os.PathLike, channel: str | None) -> None:
    """Remember ``channel`` for ``path`` (None forgets it); never raises on a full disk."""
    choices = _load()
    key = _key(path)
    choices.pop(key, None)
    if channel is not None:
        choices[key] = str(channel)  # re-inserted last: the newest choice
    while len(choices) > MAX_FILES:
        choices.pop(next(iter(choices)))
    try:
        with atomic_write(channels_file(), "w", what="the remembered channels") as fh:
            json.dump(choices, fh, indent=1)
    except (OSError, CalciteAFMError):
        pass
