"""The shared helpers: atomic files and folders, JSON, lags, stop flags."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from napari_calcite_afm._util import (
    atomic_directory,
    atomic_write,
    json_safe,
    parse_lags,
    stop_requested,
)
from napari_calcite_afm.errors import AFMFileError, CalciteAFMError


def test_atomic_write_keeps_the_old_file_when_the_block_fails(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(out, "w") as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_two_writers_do_not_share_a_temporary_file(tmp_path):
    out = tmp_path / "a.txt"
    with atomic_write(out, "w") as one, atomic_write(out, "w") as two:
        assert one.name != two.name
        one.write("one")
        two.write("two")
    assert out.read_text() == "one"  # the outer block finishes last


def test_atomic_directory_replaces_a_stale_folder_as_a_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale_figure.png").write_text("old")
    with atomic_directory(out) as tmp:
        (tmp / "table.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["table.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_directory_keeps_the_old_folder_when_the_block_fails(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "table.csv").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_directory(out) as tmp:
        (tmp / "table.csv").write_text("half")
        raise KeyboardInterrupt
    assert (out / "table.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_atomic_directory_refuses_a_file(tmp_path):
    f = tmp_path / "x"
    f.write_text("data")
    with pytest.raises(AFMFileError, match="not a folder"), atomic_directory(f):
        pass
    assert f.read_text() == "data"


def test_json_safe_gives_strict_json():
    data = {"a": np.float32(0.5), "b": [np.nan, np.inf], "c": np.arange(3), 4: b"x\x00"}
    text = json.dumps(json_safe(data), allow_nan=False)
    assert json.loads(text) == {"a": 0.5, "b": [None, None], "c": [0, 1, 2], "4": "x"}
    assert json_safe(float("nan"), finite=False) != json_safe(float("nan"))


@pytest.mark.parametrize("text", ["", "a", "1.5", "0", "-2", "1,,x"])
def test_parse_lags_refuses_bad_text_naming_the_option(text):
    with pytest.raises(CalciteAFMError, match="--dilations"):
        parse_lags(text, name="--dilations")


def test_stop_requested_reads_events_and_callables():
    event = threading.Event()
    assert not stop_requested(event) and not stop_requested(None)
    event.set()
    assert stop_requested(event) and stop_requested(lambda: True)
