"""Training frames by generator name: one call for the scripts and benchmarks.

``"standard"`` and ``"wide"`` are the two varieties of :func:`~.generators.make_frames`,
``"cellular"`` the lattice generator (:func:`~.cellular.make_cellular_frames`), and
``"mix"`` alternates wide and cellular frames (even positions wide, odd cellular), and
``"all"`` takes the three in turn (standard, wide, cellular). Every frame has its own
seed in ``[seed0, seed0 + n)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import CalciteAFMError
from .cellular import make_cellular_frames
from .generators import make_frames

__all__ = ["GENERATORS", "TRAINING_GENERATORS", "make_training_frames"]

#: The generators of synthetic movies (``calcite-afm synth --generator``).
GENERATORS = ("standard", "wide", "cellular")
#: Training sets that interleave generators: frame ``i`` comes from ``parts[i % len(parts)]``.
MIXES = {"mix": ("wide", "cellular"), "all": ("standard", "wide", "cellular")}
#: The generators of training frames: those, and the interleaved :data:`MIXES`.
TRAINING_GENERATORS = (*GENERATORS, *MIXES)


def make_training_frames(
    generator: str,
    n: int,
    size: int = 512,
    *,
    seed0: int = 0,
    jobs: int = 1,
    return_pixel_size: bool = False,
    max_pit_fraction: float | None = None,
    cellular_options: dict | None = None,
) -> tuple[np.ndarray, ...]:
    """``n`` independent training frames of a generator, seeds ``seed0`` to ``seed0 + n - 1``.

    Frame ``i`` has seed ``seed0 + i``, except with the :data:`MIXES`: frame ``i`` comes
    from part ``i % k`` of the ``k`` parts, and each part's frames take the next block of
    seeds in turn (with ``"mix"``: the ``m = ceil(n / 2)`` wide frames, even positions,
    have seeds ``seed0 .. seed0 + m - 1`` and the cellular ones, odd positions, the next).

    Parameters
    ----------
    generator : str
        One of :data:`TRAINING_GENERATORS`.
    n : int
        Number of frames.
    size : int
        Frame size, pixels.
    seed0 : int
        Seed of the first frame.
    jobs : int
        Processes generating the frames (any number gives the same frames).
    return_pixel_size : bool
        Also return each frame's pixel size, nm.
    max_pit_fraction : float, optional
        Drop the frames whose multilayer-pit share of the pixels exceeds this (fewer
        than ``n`` frames come back). At a few nm per pixel a wide frame can lie wholly
        inside one pit: its floor and walls look like stepped terrace and nothing in
        the frame says otherwise, so its labels teach the network a contradiction
        (the shipped models' training sets drop frames over 0.8).
    cellular_options : dict, optional
        Settings of the cellular frames (:class:`~.cellular_params.CellularParams`
        fields), e.g. ``{"pit_labels": "footprint"}``.

    Returns
    -------
    raw : numpy.ndarray
        float32 ``(n, size, size)`` heights with artifacts, nm.
    labels : numpy.ndarray
        uint8 ``(n, size, size)``: 1 multilayer pit, 2 terrace, 3 monolayer pit.
    pixel_size_nm : numpy.ndarray
        Only with ``return_pixel_size``: float ``(n,)``.

    Examples
    --------
    >>> raw, labels, px = make_training_frames("mix", 2, 32, seed0=3, return_pixel_size=True)
    >>> raw.shape, labels.dtype, bool(np.all((px >= 2) & (px <= 20)))
    ((2, 32, 32), dtype('uint8'), True)
    """
    if generator not in TRAINING_GENERATORS:
        raise CalciteAFMError(
            f"unknown generator {generator!r}: choose one of {', '.join(TRAINING_GENERATORS)}"
        )
    n = int(n)
    if generator in MIXES:
        parts = MIXES[generator]
        raw = np.empty((n, size, size), np.float32)
        labels = np.empty((n, size, size), np.uint8)
        px = np.empty(n)
        seed = int(seed0)
        for start, part in enumerate(parts):
            count = len(range(start, n, len(parts)))
            if count:
                step = slice(start, None, len(parts))
                raw[step], labels[step], px[step] = _frames(
                    part, seed, count, size, jobs, cellular_options
                )
            seed += count
    else:
        raw, labels, px = _frames(generator, int(seed0), n, size, jobs, cellular_options)
    if max_pit_fraction is not None:
        keep = (labels == 1).mean(axis=(1, 2)) <= float(max_pit_fraction)
        raw, labels, px = raw[keep], labels[keep], px[keep]
    return (raw, labels, px) if return_pixel_size else (raw, labels)


def _frames(generator: str, seed0: int, n: int, size: int, jobs: int, cellular=None):
    """``n`` frames of one generator, seeds from ``seed0``: ``(raw, labels, pixel sizes)``."""
    if generator == "cellular":
        return make_cellular_frames(
            n, size, seed0=seed0, jobs=jobs, return_pixel_size=True, **(cellular or {})
        )
    return make_frames(n, size, seed0=seed0, jobs=jobs, variety=generator, return_pixel_size=True)
