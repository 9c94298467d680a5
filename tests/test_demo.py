"""``calcite-afm demo``: the whole chain on the embedded sample data, scored."""

from __future__ import annotations

import json

from napari_calcite_afm.cli import main


def test_demo_runs_on_sample(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "table" in out and (tmp_path / "table.csv").exists()
    score = json.loads((tmp_path / "segmentation_score.json").read_text())
    assert score["pixel_accuracy"] > 0.9
