"""Where the widgets keep files the user must not lose: label autosaves and checkpoints.

No Qt here. :func:`cache_dir` is the user cache folder (``NAPARI_CALCITE_AFM_CACHE``
overrides it): the Train widget checkpoints there, and the Labels widget autosaves
there when the image has no writable folder of its own (:func:`autosave_path_for`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..layers import source_path_of

__all__ = ["autosave_path_for", "cache_dir"]

#: The package folder (``napari_calcite_afm/``): its sample data are read-only.
_PACKAGE = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """The user cache folder (``NAPARI_CALCITE_AFM_CACHE`` overrides it).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"NAPARI_CALCITE_AFM_CACHE": "/tmp/calcite"}):
    ...     print(cache_dir().as_posix())
    /tmp/calcite
    """
    env = os.environ.get("NAPARI_CALCITE_AFM_CACHE")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("napari-calcite-afm"))
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "napari-calcite-afm"


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK)


def _inside_package(path: Path) -> bool:
    try:
        path.resolve().relative_to(_PACKAGE)
        return True
    except ValueError:
        return False


def autosave_path_for(image_layer) -> Path:
    """Where the labels painted on ``image_layer`` are autosaved.

    ``<image stem>.labels.autosave.tif`` in the image's folder when the image came from a
    file in a writable folder (not the package's own sample data); otherwise
    ``<cache>/autosave/<layer name>.labels.autosave.tif``.

    Examples
    --------
    >>> import os, tempfile, pathlib
    >>> from types import SimpleNamespace
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> layer = SimpleNamespace(name="movie", metadata={"source": str(folder / "movie.tif")})
    >>> autosave_path_for(layer) == folder / "movie.labels.autosave.tif"
    True
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"NAPARI_CALCITE_AFM_CACHE": str(folder / "cache")}):
    ...     path = autosave_path_for(SimpleNamespace(name="my data", metadata={}))
    >>> path.relative_to(folder).as_posix()
    'cache/autosave/my_data.labels.autosave.tif'
    """
    source = source_path_of(image_layer)
    if source is not None:
        folder = source if source.is_dir() else source.parent
        stem = source.name if source.is_dir() else source.stem
        if _writable(folder) and not _inside_package(folder):
            return folder / f"{stem}.labels.autosave.tif"
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    else:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_layer.name) or "image"
    return cache_dir() / "autosave" / f"{safe}.labels.autosave.tif"
