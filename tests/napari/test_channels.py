"""The channel chosen for each file is remembered (a small JSON in the cache folder)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(autouse=True)
def _cache(isolated_widget_state):
    """Every test here writes to a temporary cache."""


def test_remember_forget_and_survive_a_broken_file(tmp_path):
    from napari_calcite_afm._napari.channels import (
        channels_file,
        remember_channel,
        remembered_channel,
    )

    scan = tmp_path / "scan.spm"
    assert remembered_channel(scan) is None
    remember_channel(scan, "Amplitude")
    assert remembered_channel(scan) == "Amplitude"
    assert remembered_channel(str(tmp_path / "." / "scan.spm")) == "Amplitude"  # same file
    assert json.loads(channels_file().read_text()) == {str(scan.resolve()): "Amplitude"}
    remember_channel(scan, None)
    assert remembered_channel(scan) is None
    channels_file().write_text("{not json")
    assert remembered_channel(scan) is None  # a broken file is ignored...
    remember_channel(scan, "Height")  # ...and replaced
    assert remembered_channel(scan) == "Height"


def test_only_the_newest_choices_are_kept(tmp_path, monkeypatch):
    import napari_calcite_afm._napari.channels as channels

    monkeypatch.setattr(channels, "MAX_FILES", 3)
    for i in range(5):
        channels.remember_channel(tmp_path / f"f{i}.spm", f"c{i}")
    kept = [channels.remembered_channel(tmp_path / f"f{i}.spm") for i in range(5)]
    assert kept == [None, None, "c2", "c3", "c4"]


def test_the_reader_falls_back_when_the_channel_is_gone(tmp_path):
    import numpy as np

    from napari_calcite_afm._napari.channels import remember_channel
    from napari_calcite_afm._napari.reader import read_afm

    path = tmp_path / "scan.npz"
    np.savez(path, heights=np.zeros((16, 16)), pixel_size_nm=2.0)
    remember_channel(path, "phase")  # not in this file (any more)
    [(_, kwargs, _)] = read_afm(str(path))
    assert kwargs["metadata"]["channel"] == "heights"
