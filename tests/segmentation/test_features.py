"""Tests of segmentation.features: the fixed multiscale first layer of the U-Net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.segmentation import (
    MultiscaleFeatures,
    build_network,
    load_model,
    predict_frame,
)


def test_multiscale_features_values_and_symmetry():
    feats = MultiscaleFeatures()
    # x, G1 x, 4 smoothed-minus-height, 1 roughness, 4 slopes, 2 x 2 curvatures
    assert feats.n_channels == 15 and feats.halo == 49
    assert not list(feats.parameters()) and not feats.state_dict()  # nothing to train or store
    # a constant image: smoothed minus height, roughness, slope and curvature all vanish
    const = feats(torch.full((1, 1, 20, 30), 2.5))
    assert const.shape == (1, 15, 20, 30)
    torch.testing.assert_close(const[:, :2], torch.full((1, 2, 20, 30), 2.5))
    assert const[:, 2:6].abs().max() < 1e-5 and const[:, 6:].abs().max() < 0.05
    # a pit 3 units deep and 16 px wide
    pit = torch.zeros(1, 1, 64, 64)
    pit[..., 24:40, 24:40] = -3.0
    f = feats(pit)[0]
    # the surroundings stand above the pit's floor at the larger scales, above its edge
    # at 2 px; far away only the 16 px scale still sees the pit (as a lower surrounding)
    assert f[3:6, 32, 32].min() > 0.1 and f[2:5, 5, 5].abs().max() < 1e-3 and f[5, 5, 5] < 0
    assert f[2, 32, 24] > 1.0 > f[2, 32, 32] >= 0
    # the wall is steep, the floor flat; the floor's edge is concave (both curvatures > 0)
    assert f[7, 32, 24] > 1.0 > f[7, 32, 32] and f[8:11, 32, 24].min() > 1.0
    assert f[11, 32, 25] > 0.1 and f[12, 32, 25] > -0.1 and f[11:13, 5, 5].abs().max() < 1e-3
    # isotropic: flips and 90 degree rotations commute with the features (training
    # augments the precomputed features)
    x = torch.randn(2, 1, 40, 50)
    out = feats(x)
    tol = {"atol": 1e-3, "rtol": 1e-3}  # float rounding, amplified by the s**2 gains
    rotated = feats(torch.rot90(x, 1, (2, 3)))
    torch.testing.assert_close(rotated, torch.rot90(out, 1, (2, 3)), **tol)
    torch.testing.assert_close(feats(torch.flip(x, (3,))), torch.flip(out, (3,)), **tol)
    # the wide scales go through an FFT: the same values as direct convolutions
    for shape in [(1, 1, 5, 7), (2, 1, 37, 130)]:
        img = torch.randn(*shape)
        for s, fast in zip(feats._scales, feats.smooth_many(img, feats._scales)):
            torch.testing.assert_close(fast, feats.smooth(img, s), atol=2e-6, rtol=1e-5)
    assert MultiscaleFeatures(heights=(2,), roughness=(), slopes=(), curvatures=()).n_channels == 3
    with pytest.raises(CalciteAFMError, match="positive"):
        MultiscaleFeatures(heights=(0, 2))


@pytest.mark.parametrize("shape", [(37, 53), (5, 7)])
def test_multiscale_unet_fused_round_trip_and_old_files(seg, shape, tmp_path):
    model = seg.random_model(2, width=4, dilations=(1, 2), unet=True, multiscale=True, seed=2)
    plain = seg.random_model(2, width=4, dilations=(1, 2), unet=True, seed=2)
    assert model.halo == plain.halo + 49 and model.architecture()["multiscale"] is True
    x = torch.randn(1, 1, *shape)
    with torch.no_grad():
        torch.testing.assert_close(
            model.inference_module("cpu")(x), model.net(x), atol=1e-4, rtol=1e-4
        )
        torch.testing.assert_close(
            model.net.forward_features(model.net.features_of(x)), model.net(x)
        )
    back = load_model(model.save(tmp_path / "ms.pt"))
    assert back.net.multiscale and back.architecture() == model.architecture()
    frame = np.random.default_rng(3).normal(0, 1, shape).astype(np.float32)
    np.testing.assert_array_equal(
        predict_frame(back, frame, levelled=True)[1], predict_frame(model, frame, levelled=True)[1]
    )
    # files written before the option existed hold no "multiscale" key: bare heights
    path = seg.set_architecture_key(plain.save(tmp_path / "old.pt"), "multiscale")
    assert load_model(path).net.multiscale is False
    with pytest.raises(CalciteAFMError, match="U-Net only"):
        build_network("dilated", multiscale=True)
