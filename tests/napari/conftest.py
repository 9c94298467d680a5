"""Fixtures of the napari layer's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated_widget_state(tmp_path, monkeypatch):
    """Widget autosaves and checkpoints go to a temporary cache; no trained model is shared."""
    from napari_calcite_afm._napari.widgets import _state

    monkeypatch.setenv("NAPARI_CALCITE_AFM_CACHE", str(tmp_path / "cache"))
    _state.clear()
    yield
    _state.clear()
