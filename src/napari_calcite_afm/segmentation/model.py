"""A trained segmentation network with its input normalisation, and its model files.

:class:`SegmentationModel` bundles a network (:class:`~.networks.UNet` or
:class:`~.networks.DilatedNet`) with the "image input" layer of the study's network:
raw heights in nm are levelled with the model's
:class:`~napari_calcite_afm.level.LevelSettings` (by default
:data:`MODEL_LEVEL_DEFAULTS`: the package's levelling without the final zero mean, so
that terraces sit at 0 nm whatever the pit area), then scaled with two numbers fixed
**in nm** and measured once over the training set::

    x = (z_levelled - center_nm) / scale_nm            # transform "linear"
    x = asinh((z_levelled - center_nm) / scale_nm)     # transform "asinh" (default)

never with each frame's own spread (a frame with one deep pit must not look like a frame
of shallow ones). ``asinh`` keeps monolayer steps visible next to pits tens of nm deep.
Pixels the instrument did not record (NaN) are filled with the nearest recorded height
before the network; the predictions mark them as label 0 and probability NaN. Network
output channel ``k`` is label ``k + 1`` (1 multilayer pit, 2 terrace, 3 monolayer pit).

Model files (``.pt``) hold a plain dictionary that ``torch.load(path, weights_only=True)``
reads without running any pickled code: the network's ``state_dict`` and a JSON string
with the metadata (format name and version, architecture, level settings,
normalisation, class names and colours, training history and configuration, package
version). :meth:`SegmentationModel.save` writes them atomically, :func:`load_model`
reads them; a file that is not such a model raises
:class:`~napari_calcite_afm.errors.AFMFileError`.

Examples
--------
>>> from napari_calcite_afm.segmentation import DilatedNet
>>> model = SegmentationModel(DilatedNet(n_classes=2, width=8), center_nm=0.0, scale_nm=0.5)
>>> x, nan_mask = model.prepare(np.full((32, 48), 0.25), levelled=True)  # heights in nm
>>> float(x[0, 0]), nan_mask is None  # (0.25 - 0) / 0.5, linear transform
(0.5, True)
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._util import atomic_write
from ..errors import AFMFileError, CalciteAFMError
from ..labels import LABEL_COLORS, LABEL_NAMES
from ..level import LevelSettings, level_frame
from .networks import ARCHITECTURES, UNet, build_network, resolve_device

__all__ = [
    "INPUT_TRANSFORMS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "MODEL_LEVEL_DEFAULTS",
    "SegmentationModel",
    "class_names",
    "fill_nan_nearest",
    "load_model",
]

#: Name stored in every model file (``"format"`` key).
MODEL_FORMAT = "napari-calcite-afm/segmentation-model"
#: Version of the model file layout; files with a larger number are refused. A file is
#: written with the lowest version that can read it: 2 only for a U-Net with
#: ``decoder="add"``, which readers of version 1 would build as the wrong network.
MODEL_FORMAT_VERSION = 2
#: Levelling used by segmentation models unless told otherwise: the package defaults but
#: without the final zero mean, so that the terraces (the inliers of the robust background
#: fit) sit at 0 nm in every frame instead of shifting with the area of the pits.
MODEL_LEVEL_DEFAULTS: dict[str, Any] = {"zero_mean": False}
#: Input transforms: ``"linear"`` ``x = (z - center_nm) / scale_nm``; ``"asinh"``
#: ``x = asinh((z - center_nm) / scale_nm)``, linear for small heights (monolayer steps)
#: and logarithmic for deep pits, so one deep pit does not dominate the input's range.
INPUT_TRANSFORMS = ("linear", "asinh")


def class_names(n_classes: int) -> dict[int, str]:
    """Names of the labels a model with ``n_classes`` classes predicts.

    Parameters
    ----------
    n_classes : int
        2 (multilayer pit / terrace) or 3 (multilayer pit / terrace / monolayer pit).

    Returns
    -------
    dict of int to str
        Label value (1..n_classes) to name. With two classes, label 2 "terrace" also
        holds the monolayer pits.

    Examples
    --------
    >>> class_names(3)
    {1: 'multilayer pit (A)', 2: 'terrace (B)', 3: 'monolayer pit'}
    """
    _check_n_classes(n_classes)
    names = {k: LABEL_NAMES[k] for k in range(1, n_classes + 1)}
    if n_classes == 2:
        names[2] = LABEL_NAMES[2] + " incl. monolayer pits"
    return names


def _check_n_classes(n_classes: int) -> None:
    if n_classes not in (2, 3):
        raise CalciteAFMError(f"n_classes must be 2 or 3, got {n_classes!r}")


def fill_nan_nearest(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Fill NaN pixels with the value of the nearest recorded pixel.

    Parameters
    ----------
    image : numpy.ndarray
        2D float array; NaN marks unrecorded pixels.

    Returns
    -------
    filled : numpy.ndarray
        float32 copy without NaN (all zeros when nothing is recorded).
    nan_mask : numpy.ndarray or None
        Boolean mask of the filled pixels, or None when there were none.

    Examples
    --------
    >>> filled, mask = fill_nan_nearest(np.array([[1.0, np.nan, np.nan, 4.0]]))  # nm
    >>> filled, mask
    (array([[1., 1., 4., 4.]], dtype=float32), array([[False,  True,  True, False]]))
    """
    image = np.asarray(image, dtype=np.float32)
    bad = ~np.isfinite(image)
    if not bad.any():
        return image, None
    if bad.all():
        return np.zeros_like(image), bad
    from scipy.ndimage import distance_transform_edt

    idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
    return image[tuple(idx)].astype(np.float32, copy=False), bad


class SegmentationModel:
    """A trained segmentation network with everything needed to apply it.

    Bundles the network (:class:`UNet` or :class:`DilatedNet`), the input normalisation
    (levelling settings and the fixed nm scaling), class names and colours, and the
    training record. Save it with
    :meth:`save`, read it back with :func:`load_model`; segment with
    :func:`~napari_calcite_afm.segmentation.inference.predict_frame` / ``predict_stack``.

    Parameters
    ----------
    net : UNet or DilatedNet
        The network (its ``n_classes``, ``width`` and ``dilations`` are the model's).
    level : LevelSettings, dict or None
        How raw heights are levelled before the network (None:
        ``LevelSettings(**MODEL_LEVEL_DEFAULTS)``, i.e. no final zero mean).
        Training and inference use the same settings.
    center_nm, scale_nm : float
        Input normalisation ``(z_levelled - center_nm) / scale_nm``, in nm, measured
        once over the training set.
    transform : {"linear", "asinh"}
        Applied after the scaling (see the module docstring).
    history : list of dict, optional
        Training record (one entry per evaluation).
    train_config : dict, optional
        The :class:`~napari_calcite_afm.segmentation.config.TrainConfig` used, as a dict.
    info : dict, optional
        Free JSON-serialisable notes (training data description, metrics...).

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import DilatedNet
    >>> model = SegmentationModel(DilatedNet(width=8), center_nm=0.0, scale_nm=0.3,
    ...                           transform="asinh")
    >>> model.n_classes, model.halo, model.class_names[1]
    (2, 7, 'multilayer pit (A)')
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        level: LevelSettings | dict | None = None,
        center_nm: float = 0.0,
        scale_nm: float = 1.0,
        transform: str = "linear",
        history: list[dict] | None = None,
        train_config: dict | None = None,
        info: dict | None = None,
    ) -> None:
        _check_n_classes(net.n_classes)
        if not (np.isfinite(scale_nm) and scale_nm > 0):
            raise CalciteAFMError(f"scale_nm must be a positive number, got {scale_nm!r}")
        if not np.isfinite(center_nm):
            raise CalciteAFMError(f"center_nm must be finite, got {center_nm!r}")
        if transform not in INPUT_TRANSFORMS:
            raise CalciteAFMError(
                f"transform must be one of {', '.join(INPUT_TRANSFORMS)}, got {transform!r}"
            )
        self.net = net
        if level is None:
            level = LevelSettings(**MODEL_LEVEL_DEFAULTS)
        elif isinstance(level, dict):
            level = LevelSettings.from_dict(level)
        self.level_settings: LevelSettings = level
        self.center_nm = float(center_nm)
        self.scale_nm = float(scale_nm)
        self.transform = str(transform)
        self.history: list[dict] = list(history or [])
        self.train_config: dict = dict(train_config or {})
        self.info: dict = dict(info or {})
        self.package_version = _package_version()
        self.source: str | None = None  # file it was loaded from
        self._fused_cache: tuple[Any, nn.Module] | None = None

    # -- architecture -------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes (labels 1..n_classes)."""
        return self.net.n_classes

    @property
    def width(self) -> int:
        """Filters per convolution."""
        return self.net.width

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilations of the 3x3 convolutions."""
        return self.net.dilations

    @property
    def receptive_field(self) -> int:
        """Receptive field of the network, in pixels."""
        return self.net.receptive_field

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels: the tile overlap that makes tiling exact."""
        return self.net.halo

    @property
    def class_names(self) -> dict[int, str]:
        """Label value to class name."""
        return class_names(self.n_classes)

    @property
    def class_colors(self) -> dict[int, tuple[float, float, float, float]]:
        """Label value to RGBA colour (0..1), as in :mod:`~napari_calcite_afm.colormap`."""
        return {k: LABEL_COLORS[k] for k in range(1, self.n_classes + 1)}

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters of the network."""
        return sum(p.numel() for p in self.net.parameters())

    def __repr__(self) -> str:
        return (
            f"SegmentationModel(n_classes={self.n_classes}, width={self.width}, "
            f"dilations={self.dilations}, center_nm={self.center_nm:.4g}, "
            f"scale_nm={self.scale_nm:.4g}, transform={self.transform!r}, "
            f"source={self.source!r})"
        )

    # -- input normalisation --------------------------------------------------------
    def level(self, frame: np.ndarray) -> np.ndarray:
        """Level one raw frame with the model's settings.

        Parameters
        ----------
        frame : numpy.ndarray
            2D raw heights in nm (NaN = not recorded).

        Returns
        -------
        numpy.ndarray
            float32 levelled heights in nm, NaN kept.
        """
        return np.asarray(level_frame(frame, self.level_settings), dtype=np.float32)

    def normalise(self, levelled: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Scale levelled heights to the network's input and fill NaN pixels.

        Parameters
        ----------
        levelled : numpy.ndarray
            2D levelled heights in nm.

        Returns
        -------
        x : numpy.ndarray
            float32 ``(levelled - center_nm) / scale_nm`` with NaN pixels filled with the
            nearest recorded value.
        nan_mask : numpy.ndarray or None
            Pixels that were NaN, or None when there were none.
        """
        filled, nan_mask = fill_nan_nearest(levelled)
        x = (filled - np.float32(self.center_nm)) / np.float32(self.scale_nm)
        if self.transform == "asinh":
            x = np.arcsinh(x)
        return x.astype(np.float32, copy=False), nan_mask

    def prepare(
        self, frame: np.ndarray, *, levelled: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw frame (nm) to network input: level, scale, fill NaN.

        Parameters
        ----------
        frame : numpy.ndarray
            2D heights in nm.
        levelled : bool
            True when ``frame`` was already levelled with :attr:`level_settings` (the
            levelling step is then skipped).

        Returns
        -------
        x, nan_mask
            See :meth:`normalise`.
        """
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise CalciteAFMError(f"expected a 2D frame (rows, cols), got shape {frame.shape}")
        z = np.asarray(frame, dtype=np.float32) if levelled else self.level(frame)
        return self.normalise(z)

    # -- devices / inference ----------------------------------------------------------
    def inference_module(self, device: torch.device | str | None = None) -> nn.Module:
        """The network for inference on ``device`` (batch norms folded, channels-last).

        Cached, and rebuilt automatically after the network's weights change.

        Parameters
        ----------
        device : torch.device, str or None
            None: ``"auto"`` (GPU if present).

        Returns
        -------
        torch.nn.Module
            In eval mode, without gradients.
        """
        dev = resolve_device(device)
        tensors = [*self.net.parameters(), *self.net.buffers()]
        key = (str(dev), tuple(t._version for t in tensors), tuple(id(t) for t in tensors))
        if self._fused_cache is not None and self._fused_cache[0] == key:
            return self._fused_cache[1]
        was_training = self.net.training
        self.net.eval()
        module = self.net.fused()
        self.net.train(was_training)
        module = module.to(dev)
        if dev.type == "cpu":
            module = module.to(memory_format=torch.channels_last)
        self._fused_cache = (key, module)
        return module

    # -- persistence -----------------------------------------------------------------
    def architecture(self) -> dict:
        """The network's class name and arguments (JSON-serialisable)."""
        arch = {
            "name": type(self.net).__name__,
            "n_classes": self.n_classes,
            "width": self.width,
            "dilations": list(self.dilations),
            "receptive_field_px": self.receptive_field,
        }
        if isinstance(self.net, UNet):
            arch["levels"] = self.net.levels
            arch["multiscale"] = self.net.multiscale
            arch["decoder"] = self.net.decoder_kind
        return arch

    def format_version(self) -> int:
        """The lowest model-file version that can read this model (1 or 2)."""
        return 2 if getattr(self.net, "decoder_kind", "concat") != "concat" else 1

    def metadata(self) -> dict:
        """JSON-serialisable description of the model (everything except the weights)."""
        return {
            "format": MODEL_FORMAT,
            "format_version": self.format_version(),
            "package_version": self.package_version,
            "architecture": self.architecture(),
            "class_names": {str(k): v for k, v in self.class_names.items()},
            "class_colors": {str(k): list(v) for k, v in self.class_colors.items()},
            "label_mapping": "network output k is label k + 1; label 0 = unlabelled / NaN",
            "level": self.level_settings.to_dict(),
            "normalisation": {
                "center_nm": self.center_nm,
                "scale_nm": self.scale_nm,
                "transform": self.transform,
            },
            "history": self.history,
            "train_config": self.train_config,
            "info": self.info,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to a ``.pt`` file, atomically.

        The file is first written next to ``path`` under a temporary name and then
        renamed over it, so a crash never leaves a half-written model.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file (its folder is created if needed).

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        try:
            meta = json.dumps(self.metadata(), allow_nan=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise CalciteAFMError(f"model metadata is not JSON-serialisable: {exc}") from None
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        payload = {
            "format": MODEL_FORMAT,
            "format_version": self.format_version(),
            "metadata": meta,
            "state_dict": state,
        }
        with atomic_write(path, "wb", what="the model") as fh:
            torch.save(payload, fh)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> SegmentationModel:
        """Read a model written by :meth:`save` (see :func:`load_model`)."""
        return load_model(path, device=device)

    def copy(self) -> SegmentationModel:
        """A deep copy (independent weights)."""
        other = SegmentationModel(
            copy.deepcopy(self.net),
            level=self.level_settings.to_dict(),
            center_nm=self.center_nm,
            scale_nm=self.scale_nm,
            transform=self.transform,
            history=copy.deepcopy(self.history),
            train_config=copy.deepcopy(self.train_config),
            info=copy.deepcopy(self.info),
        )
        other.source = self.source
        return other


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _package_version() -> str:
    from .. import __version__

    return str(__version__)


def load_model(path: str | os.PathLike, *, device: str | None = None) -> SegmentationModel:
    """Read a segmentation model file.

    Always uses ``torch.load(..., weights_only=True)``: no pickled code is run.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pt`` file written by :meth:`SegmentationModel.save`.
    device : str or None
        Where to put the network (None: the CPU; ``"auto"``: GPU if present).

    Returns
    -------
    SegmentationModel
        In eval mode.

    Raises
    ------
    napari_calcite_afm.errors.AFMFileError
        The file is missing, unreadable, truncated, not a PyTorch file, a PyTorch file
        that is not a napari-calcite-afm model, from a newer format version, or its
        weights do not match its architecture.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from napari_calcite_afm.segmentation import DilatedNet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
    >>> _ = SegmentationModel(DilatedNet(width=8), center_nm=0.0, scale_nm=0.3).save(path)
    >>> load_model(path).architecture()["name"]
    'DilatedNet'
    """
    path = Path(path)
    if not path.is_file():
        raise AFMFileError(path, "model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AFMFileError(
            path, f"not a readable segmentation model (corrupt, truncated or foreign file: {msg})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise AFMFileError(path, "a PyTorch file, but not a napari-calcite-afm segmentation model")
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise AFMFileError(path, f"invalid model format version {version!r}")
    if version > MODEL_FORMAT_VERSION:
        raise AFMFileError(
            path,
            f"model format version {version} is newer than this napari-calcite-afm "
            f"supports ({MODEL_FORMAT_VERSION}); update the package",
        )
    try:
        meta = json.loads(payload["metadata"])
        arch = meta["architecture"]
        name = str(arch.get("name", "DilatedNet"))
        if name not in ARCHITECTURES:
            raise AFMFileError(
                path, f"unknown network architecture {name!r} (a newer napari-calcite-afm?)"
            )
        net = build_network(
            name,
            n_classes=int(arch["n_classes"]),
            width=int(arch["width"]),
            dilations=tuple(int(d) for d in arch["dilations"]),
            levels=int(arch.get("levels", 3)),
            multiscale=bool(arch.get("multiscale", False)),
            decoder=str(arch.get("decoder", "concat")),
        )
        norm = meta["normalisation"]
        state = payload["state_dict"]
        if not isinstance(state, dict):
            raise TypeError("state_dict is not a dictionary")
        net.load_state_dict(state, strict=True)
        model = SegmentationModel(
            net,
            level=meta.get("level"),
            center_nm=float(norm["center_nm"]),
            scale_nm=float(norm["scale_nm"]),
            transform=str(norm.get("transform", "linear")),
            history=meta.get("history") or [],
            train_config=meta.get("train_config") or {},
            info=meta.get("info") or {},
        )
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"damaged model metadata or weights: {exc}") from None
    model.package_version = str(meta.get("package_version", "unknown"))
    model.source = str(path)
    net.eval()
    if device is not None:
        net.to(resolve_device(device))
    return model
