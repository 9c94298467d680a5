"""The names importable from napari_calcite_afm.level before it became a package still are."""

from __future__ import annotations

import importlib

import pytest

from napari_calcite_afm import errors, level

OLD_PUBLIC = [
    "ROW_METHODS",
    "Cancelled",
    "LevelError",
    "LevelSettings",
    "Registration",
    "align_rows",
    "detect_scars",
    "level_frame",
    "level_stack",
    "polynomial_background",
    "register_stack",
    "remove_background",
    "remove_scars",
    "row_offsets",
    "shift_stack",
    "zero_mean",
]


#: Added since: the scan lines that failed as a whole (issue 15).
NEW_PUBLIC = ["BadLines", "find_bad_lines"]


def test_public_names_reexported():
    assert sorted(level.__all__) == sorted(OLD_PUBLIC + NEW_PUBLIC)
    for name in OLD_PUBLIC + NEW_PUBLIC:
        assert getattr(level, name) is not None, name


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("settings", ["ROW_METHODS", "LevelSettings"]),
        ("background", ["polynomial_background", "remove_background", "_x_background"]),
        ("rows", ["row_offsets", "align_rows", "_row_depressions"]),
        ("scars", ["detect_scars", "remove_scars"]),
        ("frame", ["level_frame", "level_stack", "zero_mean"]),
        ("drift", ["Registration", "register_stack", "shift_stack"]),
        ("lines", ["BadLines", "find_bad_lines"]),
    ],
)
def test_names_come_from_their_module(module, names):
    mod = importlib.import_module(f"napari_calcite_afm.level.{module}")
    for name in names:
        assert getattr(level, name) is getattr(mod, name), name


def test_errors_are_the_shared_classes():
    assert level.LevelError is errors.LevelError
    assert level.Cancelled is errors.Cancelled
    assert issubclass(level.LevelError, errors.CalciteAFMError)
