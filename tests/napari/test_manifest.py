"""The plugin as napari sees it: the manifest (napari.yaml), its widgets and packaging."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PLUGIN = "napari-calcite-afm"
ROOT = Path(__file__).resolve().parents[2]
WIDGETS = [
    "Clean (levelling & drift)",
    "Labels",
    "Train",
    "Segment",
    "Statistics",
    "Segment and fit (one click)",
    "Kinetics",
]


# ----------------------------------------------------------------------------- manifest


def test_manifest_validates_and_imports():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "napari.yaml")
    assert manifest.name == PLUGIN
    manifest.validate_imports()  # every python_name resolves
    assert [w.display_name for w in manifest.contributions.widgets] == WIDGETS
    commands = {c.id: c for c in manifest.contributions.commands}
    for widget in manifest.contributions.widgets:
        assert widget.command in commands
    assert {r.command for r in manifest.contributions.readers} == {f"{PLUGIN}.get_reader"}
    assert len(manifest.contributions.writers) == 3
    assert manifest.contributions.sample_data[0].key == "calcite_dissolution"


def test_package_manifest_is_the_top_level_one():
    package_yaml = ROOT / "src" / "napari_calcite_afm" / "napari.yaml"
    assert package_yaml.read_text() == (ROOT / "napari.yaml").read_text()


@pytest.mark.gui
def test_widgets_open_through_the_plugin_menu(make_napari_viewer, isolated_widget_state):
    """Every widget in napari.yaml instantiates through napari (PublicOnlyProxy viewer)."""
    viewer = make_napari_viewer()
    for name in WIDGETS:
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert widget is not None, name


# ----------------------------------------------------------------------------- packaging


def _copy_source(dest: Path) -> Path:
    """The files a wheel is built from (keeps the package's relative symlinks)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_version.py")
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "napari.yaml", "LICENSE", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    for name in ("src", "sample_data"):
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=ignore)
    return dest


def _see_this_environment(python: Path) -> None:
    """Let a fresh venv import what the running environment has (napari, npe2...).

    ``--system-site-packages`` exposes the *base* interpreter's packages; when the tests
    run inside a virtual environment, its site-packages are added with a ``.pth`` file
    of plain paths (so its own ``.pth`` files, such as an editable install of this
    project, are not executed: the wheel's copy must be the one imported).
    """
    import site

    if sys.prefix == sys.base_prefix:
        return
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    paths = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(target) / "_parent_environment.pth").write_text("\n".join(paths) + "\n")


_CHECK = r"""
import json, pathlib, sys
from importlib import resources
import npe2
import napari_calcite_afm
pm = npe2.PluginManager()
pm.discover()
manifest = pm.get_manifest("napari-calcite-afm")
pkg = resources.files("napari_calcite_afm")
print(json.dumps({
    "file": napari_calcite_afm.__file__,
    "widgets": [w.display_name for w in manifest.contributions.widgets],
    "samples": sorted(p.name for p in (pkg / "sample_data").iterdir()),
    "models": sorted(p.name for p in (pkg / "models").iterdir() if p.name.endswith(".pt")),
}))
"""


@pytest.mark.slow
def test_wheel_installs_the_plugin_with_its_data(tmp_path):
    """Build a wheel, install it in a fresh venv (system site packages for napari), and
    check that napari's plugin manager sees the plugin, its widgets, data and models."""
    src = _copy_source(tmp_path / "src")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")

    names = zipfile.ZipFile(wheel).namelist()
    yaml_info = zipfile.ZipFile(wheel).getinfo("napari_calcite_afm/napari.yaml")
    assert yaml_info.file_size > 100  # the symlink's target, not a link
    for sample in ("calcite_series.tif", "calcite_labels.tif"):
        assert f"napari_calcite_afm/sample_data/{sample}" in names, sample
    assert "napari_calcite_afm/models/default.pt" in names
    assert "napari_calcite_afm/_napari/widgets/train.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    _see_this_environment(python)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    check = subprocess.run(
        [str(python), "-c", _CHECK],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    info = json.loads(check.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).is_relative_to(venv), info["file"]  # the wheel, not the repo
    assert info["widgets"] == WIDGETS
    assert info["samples"] == ["calcite_labels.tif", "calcite_series.tif"]
    assert "default.pt" in info["models"]

    listing = subprocess.run(
        [str(python), "-m", "npe2", "list", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert PLUGIN in listing.stdout
