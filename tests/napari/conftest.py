"""Fixtures of the napari layer's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _real_data() -> Path | None:
    here = Path(__file__).resolve().parents[3] / "shared" / "data" / "afm-real"
    if here.is_dir():
        return here
    env = os.environ.get("CALCITE_AFM_REAL_DATA")
    return Path(env) if env and Path(env).is_dir() else None


@pytest.fixture
def real_dir() -> Path:
    """The real instrument files (``shared/data/afm-real``); skipped where absent."""
    folder = _real_data()
    if folder is None:
        pytest.skip("shared/data/afm-real not available")
    return folder


@pytest.fixture
def isolated_widget_state(tmp_path, monkeypatch):
    """Widget autosaves and checkpoints go to a temporary cache; no trained model is shared."""
    from napari_calcite_afm._napari.widgets import _state

    monkeypatch.setenv("NAPARI_CALCITE_AFM_CACHE", str(tmp_path / "cache"))
    _state.clear()
    yield
    _state.clear()
