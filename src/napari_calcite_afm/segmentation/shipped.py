"""The segmentation models shipped with the package (``models/default.pt``, ``default3.pt``).

They were trained on synthetic calcite frames by ``scripts/train_default_model.py`` (its
docstring gives the data, seeds and accuracy): a two-class model (multilayer pit /
terrace) and a three-class one (also monolayer pits).

Examples
--------
>>> model = load_default_model()  # the shipped two-class model
>>> model.n_classes, model.transform
(2, 'asinh')
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import AFMFileError
from .model import SegmentationModel, _check_n_classes, load_model

__all__ = ["DEFAULT_MODEL_FILES", "default_model_path", "load_default_model", "resolve_model"]

#: Shipped models by number of classes (files in the package's ``models`` folder).
DEFAULT_MODEL_FILES: dict[int, str] = {2: "default.pt", 3: "default3.pt"}


def default_model_path(n_classes: int = 2) -> Path:
    """Path of the shipped default model.

    Parameters
    ----------
    n_classes : int
        2 (``models/default.pt``) or 3 (``models/default3.pt``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> default_model_path(3).name
    'default3.pt'
    """
    _check_n_classes(n_classes)
    ref = resources.files("napari_calcite_afm") / "models" / DEFAULT_MODEL_FILES[n_classes]
    return Path(str(ref))


def load_default_model(n_classes: int = 2, *, device: str | None = None) -> SegmentationModel:
    """Load the model shipped with the package.

    It was trained on synthetic calcite frames by ``scripts/train_default_model.py``
    (see its docstring for the data, seeds and accuracy).

    Parameters
    ----------
    n_classes : int
        2 (multilayer pit / terrace) or 3 (also monolayer pits).
    device : str or None
        See :func:`load_model`.

    Returns
    -------
    SegmentationModel

    Examples
    --------
    >>> load_default_model(3).class_names[3]
    'monolayer pit'
    """
    path = default_model_path(n_classes)
    if not path.is_file():
        raise AFMFileError(path, f"no shipped {n_classes}-class default model in this install")
    return load_model(path, device=device)


def resolve_model(model) -> SegmentationModel:
    """A :class:`SegmentationModel` from a name, a path or a model.

    ``"default"`` (or None) is the shipped two-class model, ``"default3"`` the shipped
    three-class one; anything else is read with :func:`load_model`.

    Examples
    --------
    >>> resolve_model("default").n_classes, resolve_model("default3").n_classes
    (2, 3)
    """
    if isinstance(model, SegmentationModel):
        return model
    if model is None or (isinstance(model, str) and model in ("default", "default2")):
        return load_default_model(2)
    if isinstance(model, str) and model == "default3":
        return load_default_model(3)
    return load_model(model)
