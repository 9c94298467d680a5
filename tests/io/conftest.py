"""Fixtures of the io tests: the real instrument files and AFMReader as a reference.

The files live in ``shared/data/afm-real`` beside the repository (or where
``CALCITE_AFM_REAL_DATA`` points), the corrupted regression inputs in
``shared/data/bad-inputs`` (or ``CALCITE_AFM_BAD_INPUTS``); tests that use them are
skipped where they are absent.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path

import pytest

from napari_calcite_afm.io import AFMStack, read_stack
from napari_calcite_afm.io.nanosurf_ntmdt import converter_available


def _find_data(folder: str, env_name: str) -> Path | None:
    here = Path(__file__).resolve().parents[3] / "shared" / "data" / folder
    if here.is_dir():
        return here
    env = os.environ.get(env_name)
    if env and Path(env).is_dir():
        return Path(env)
    return None


#: The optional reader of .nid and .mdt files is installed (tests of real reads skip
#: without it; the tests of its absence simulate it).
GWYDDION = converter_available()
REAL = _find_data("afm-real", "CALCITE_AFM_REAL_DATA")
#: Corrupted copies of real files that once made the readers hang, crash or run away
#: with memory (``shared/data/bad-inputs``, with a README of what each must do).
BAD = _find_data("bad-inputs", "CALCITE_AFM_BAD_INPUTS")


@pytest.fixture
def real_dir() -> Path:
    """The folder of real instrument files (the test is skipped where it is absent)."""
    if REAL is None:
        pytest.skip("shared/data/afm-real not available")
    return REAL


@pytest.fixture
def bad_dir() -> Path:
    """The folder of corrupted regression inputs (skipped where it is absent)."""
    if BAD is None:
        pytest.skip("shared/data/bad-inputs not available")
    return BAD


@pytest.fixture
def gwyddion() -> None:
    """Skip the test where the optional gwyddion extra is not installed."""
    if not GWYDDION:
        pytest.skip("the optional gwyddion extra (gwyddionpy and its converter) is missing")


@pytest.fixture
def real(real_dir):
    """``real(name)``: the path of one real instrument file."""

    def path(name: str) -> Path:
        return real_dir / name

    return path


@pytest.fixture
def afmreader():
    """``afmreader(module)``: an AFMReader module with its loguru output silenced (the
    reference reader)."""

    def load(module: str):
        from loguru import logger

        mod = importlib.import_module(f"AFMReader.{module}")
        logger.disable("AFMReader")
        return mod

    return load


@pytest.fixture
def read_quiet():
    """``read_quiet(path, ...)``: :func:`read_stack` with its UserWarnings hidden."""

    def read(path, *args, **kwargs) -> AFMStack:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return read_stack(path, *args, **kwargs)

    return read
