"""Every public function of the core packages shows how it is used.

The examples themselves run through ``--doctest-modules`` (pyproject.toml), over every
module of the package; this checks that they exist, so that a new public function cannot
arrive without one.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

CORE = [
    "io",
    "kinetics",
    "level",
    "synthetic",
    "segmentation",
    "stats",
    "batch",
    "labels",
    "pipeline",
    "outputs",
    "summary",
    "timeseries",
    "plotting",
    "colormap",
    "surface",
]
#: Functions whose example would need a whole movie run: their tests show their use.
WITHOUT_EXAMPLE = {"summary.run_summary"}


def _public_functions():
    for name in CORE:
        module = importlib.import_module(f"napari_calcite_afm.{name}")
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) and f"{name}.{attr}" not in WITHOUT_EXAMPLE:
                yield f"{name}.{attr}", obj


@pytest.mark.parametrize(("name", "func"), list(_public_functions()), ids=lambda v: str(v))
def test_public_functions_have_examples(name, func):
    doc = inspect.getdoc(func) or ""
    assert ">>>" in doc, f"{name} has no example in its docstring"


def test_the_list_reaches_the_packages():
    """A renamed package would leave the list above silently empty."""
    assert len(list(_public_functions())) > 50
