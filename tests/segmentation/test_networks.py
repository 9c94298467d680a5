"""Tests of segmentation.networks: the dilated CNN, the U-Net, fused inference copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_calcite_afm.errors import AFMFileError, CalciteAFMError
from napari_calcite_afm.segmentation import (
    DilatedNet,
    UNet,
    build_network,
    load_model,
    predict_frame,
)


def test_dilations_option_and_receptive_field():
    net = DilatedNet(2, 8, (1, 2, 4, 8, 16))
    assert net.receptive_field == 63 and net.halo == 31
    assert DilatedNet().receptive_field == 15
    assert net(torch.zeros(1, 1, 20, 17)).shape == (1, 2, 20, 17)
    with pytest.raises(CalciteAFMError):
        DilatedNet(2, 8, (0, 1))


def test_fused_inference_matches_eval_module(seg):
    model = seg.random_model()
    x = torch.randn(1, 1, 40, 33)
    with torch.no_grad():
        ref = model.net.eval()(x)
        fused = model.inference_module("cpu")(x)
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (9, 130)])
def test_unet_any_size_fused_and_round_trip(seg, shape, tmp_path):
    model = seg.random_model(3, width=4, dilations=(1, 2), unet=True, seed=4)
    assert model.halo == 6 * 7 + 8 * 3 and model.receptive_field == 2 * model.halo + 1
    x = torch.randn(2, 1, *shape)
    with torch.no_grad():
        ref = model.net.eval()(x)
        fused = model.inference_module("cpu")(x)
    assert ref.shape == (2, 3, *shape)
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)
    back = load_model(model.save(tmp_path / "u.pt"))
    assert isinstance(back.net, UNet) and back.architecture() == model.architecture()
    assert back.architecture()["levels"] == 3
    frame = np.random.default_rng(1).normal(0, 1, shape).astype(np.float32)
    np.testing.assert_array_equal(
        predict_frame(back, frame, levelled=True)[0], predict_frame(model, frame, levelled=True)[0]
    )


@pytest.mark.parametrize("shape", [(37, 53), (5, 7), (64, 64)])
def test_unet_add_decoder_any_size_fused_round_trip_and_file_version(seg, shape, tmp_path):
    model = seg.random_model(3, width=4, dilations=(1, 2), unet=True, seed=6, decoder="add")
    classic = seg.random_model(3, width=4, dilations=(1, 2), unet=True, seed=6)
    n_params = [sum(p.numel() for p in m.net.parameters()) for m in (model, classic)]
    assert n_params[0] < 0.8 * n_params[1]  # the cheaper decoder
    assert model.architecture()["decoder"] == "add"
    assert classic.architecture()["decoder"] == "concat"
    x = torch.randn(2, 1, *shape)
    with torch.no_grad():
        ref = model.net(x)
        fused = model.inference_module("cpu")(x)
    assert ref.shape == (2, 3, *shape)
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)
    path = model.save(tmp_path / "add.pt")
    # version 1 readers would build the classic decoder: the file says it needs 2
    assert torch.load(path, weights_only=True)["format_version"] == 2
    assert torch.load(classic.save(tmp_path / "cat.pt"), weights_only=True)["format_version"] == 1
    back = load_model(path)
    assert back.net.decoder_kind == "add" and back.architecture() == model.architecture()
    frame = np.random.default_rng(2).normal(0, 1, shape).astype(np.float32)
    np.testing.assert_array_equal(
        predict_frame(back, frame, levelled=True)[1], predict_frame(model, frame, levelled=True)[1]
    )
    # files written before the option hold no "decoder" key: the classic decoder
    old = seg.set_architecture_key(classic.save(tmp_path / "old.pt"), "decoder")
    assert load_model(old).net.decoder_kind == "concat"
    # a file that names an unknown decoder is refused with the file's name
    seg.set_architecture_key(old, "decoder", "sum")
    with pytest.raises(AFMFileError, match=r"old\.pt.*decoder"):
        load_model(old)
    with pytest.raises(CalciteAFMError, match="decoder"):
        UNet(decoder="sum")


def test_network_arguments_checked():
    with pytest.raises(CalciteAFMError, match="levels"):
        UNet(2, 8, (1, 2), levels=0)
    with pytest.raises(CalciteAFMError, match="dilations"):
        UNet(2, 8, (0,))
    with pytest.raises(CalciteAFMError, match="architecture"):
        build_network("resnet")
    assert isinstance(build_network("dilated", 2, 8, (1, 2)), DilatedNet)
