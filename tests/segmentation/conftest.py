"""Shared data of the segmentation tests: toy frames, random models, a trained model.

Small frames (32-96 px) and few iterations keep the tests fast on a 2-core CPU.
Synthetic seeds used here (0-99 and 424242) are never used to train the shipped default
model (seeds from 7_000_000) nor by the benchmark (seeds from 9_000_000).

With ``--import-mode=importlib`` a test module cannot import this file: the tests get
the helpers through the :func:`seg` fixture (``seg.FAST``, ``seg.toy_frames(n)``,
``seg.random_model(...)`` ...), and the toy frames and their trained model through the
:func:`toy` and :func:`trained` fixtures.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_calcite_afm.segmentation import (
    DilatedNet,
    SegmentationModel,
    TrainConfig,
    UNet,
    train_model,
)

#: A short training on the toy frames (heights in nm, patches in pixels).
FAST = {
    "iterations": 40,
    "batch_size": 8,
    "patch_size": 40,
    "width": 8,
    "dilations": (1, 2, 4),
    "eval_every": 20,
    "lr": 1e-2,
    "threads": 2,
    "device": "cpu",
}


def toy_frames(n: int, size: int = 64, seed: int = 0):
    """Raw frames (nm) with tilt, noise and deep rectangular pits; labels 1 pit, 2 terrace."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images, labels = [], []
    for _ in range(n):
        lab = np.full((size, size), 2, np.uint8)
        z = rng.normal(0, 0.05, (size, size)).astype(np.float32)
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(size // 8, size // 3, 2)
            r, c = rng.integers(0, size - h), rng.integers(0, size - w)
            lab[r : r + h, c : c + w] = 1
        z[lab == 1] -= rng.uniform(3.0, 8.0)
        z += 0.05 * xx + 0.02 * yy + rng.normal(0, 5)
        images.append(z)
        labels.append(lab)
    return images, labels


def random_model(
    n_classes=2, width=8, dilations=(1, 2, 4), seed=0, unet=False, multiscale=False,
    decoder="concat",
) -> SegmentationModel:  # fmt: skip
    """An untrained model with non-trivial batch-norm statistics (eval mode)."""
    torch.manual_seed(seed)
    if unet:
        net = UNet(n_classes, width, dilations, multiscale=multiscale, decoder=decoder)
    else:
        net = DilatedNet(n_classes, width, dilations)
    # non-trivial batch-norm statistics, so that eval mode differs from identity
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    return SegmentationModel(net, center_nm=0.1, scale_nm=2.0, transform="asinh")


def set_architecture_key(path, key, value=None):
    """Rewrite a saved model's architecture ``key`` (None: delete it, as older files lack it)."""
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["metadata"])
    if value is None:
        del meta["architecture"][key]
    else:
        meta["architecture"][key] = value
    payload["metadata"] = json.dumps(meta)
    torch.save(payload, path)
    return path


def scribbles(labels: np.ndarray, rng: np.random.Generator, fraction: float = 0.03):
    """Thin random line strokes inside the class regions (about ``fraction`` of pixels)."""
    out = np.zeros_like(labels)
    rows, cols = labels.shape
    target = fraction * labels.size
    while (out > 0).sum() < target:
        r, c = rng.integers(0, rows), rng.integers(0, cols)
        if rng.random() < 0.5:
            seg = (r, slice(c, min(cols, c + 12)))
        else:
            seg = (slice(r, min(rows, r + 12)), c)
        vals = labels[seg]
        if (vals == vals.flat[0]).all():
            out[seg] = vals
    return out


@pytest.fixture(scope="session")
def seg() -> SimpleNamespace:
    """The helpers above, as attributes."""
    return SimpleNamespace(
        FAST=FAST,
        toy_frames=toy_frames,
        random_model=random_model,
        set_architecture_key=set_architecture_key,
        scribbles=scribbles,
    )


@pytest.fixture(scope="session")
def toy():
    """Eight 64 x 64 px toy frames (nm) and their labels."""
    return toy_frames(8, 64, seed=1)


@pytest.fixture(scope="session")
def trained(toy):
    """The result of :data:`FAST` training on the toy frames (seed 3)."""
    images, labels = toy
    return train_model(images, labels, TrainConfig(**FAST, seed=3))
