"""The examples in the core modules' docstrings run and give what they show.

The public functions carry numpydoc examples (``>>>``); this runs them, so a changed
behaviour or signature cannot leave a stale example behind. The napari widgets (Qt) are
left out: their behaviour is tested in test_widgets*.py.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

CORE = [
    "colormap",
    "demo",
    "io",
    "level",
    "model",
    "pipeline",
    "plotting",
    "predict",
    "stats",
    "surface",
    "synthetic",
    "train",
]


@pytest.mark.parametrize("name", CORE)
def test_docstring_examples(name):
    module = importlib.import_module(f"napari_calcite_afm.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_the_core_modules_hold_examples():
    """The list above is not empty of examples (a renamed module would pass silently)."""
    finder = doctest.DocTestFinder()
    counts = {
        name: sum(len(t.examples) for t in finder.find(importlib.import_module(
            f"napari_calcite_afm.{name}")))
        for name in ("model", "train", "level", "synthetic", "stats", "predict")
    }  # fmt: skip
    assert all(n > 0 for n in counts.values()), counts
