"""The package keeps the layout DEVELOPERS.md describes.

Modules stay under 600 lines and functions under 100 lines of code
(``scripts/check_layout.py`` prints the breaches), the core never imports Qt or napari,
and every core package has a test folder of the same name.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_calcite_afm"
CORE_PACKAGES = ["io", "level", "synthetic", "segmentation", "stats", "batch", "kinetics"]


def _checker():
    spec = importlib.util.spec_from_file_location("check_layout", ROOT / "scripts/check_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modules_and_functions_stay_small():
    assert _checker().breaches(PACKAGE) == []


def test_the_checker_finds_a_long_function(tmp_path):
    """The check itself can fail: a 101-line function and a 601-line module are caught."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(100))
    (pkg / "long.py").write_text(f'def f():\n    """Doc."""\n{body}    return 0\n')
    (pkg / "big.py").write_text("# comment\n" * 601)
    found = _checker().breaches(pkg)
    assert any("long.py:1 f: 102 lines" in line for line in found), found
    assert any("big.py: 601 lines" in line for line in found), found


@pytest.mark.parametrize("name", CORE_PACKAGES)
def test_core_packages_are_packages_with_mirrored_tests(name):
    assert (PACKAGE / name / "__init__.py").is_file()
    assert any((ROOT / "tests" / name).glob("test_*.py"))


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_core_imports_no_qt_or_napari():
    gui = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"}
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(_imported_roots(p) & gui)
        for p in PACKAGE.rglob("*.py")
        if "_napari" not in p.relative_to(PACKAGE).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}
