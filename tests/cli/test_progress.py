"""Progress of the commands: a bar per stage on a terminal, one line per report in a log."""

from __future__ import annotations

import io

from napari_calcite_afm.cli._common import _progress_printer


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _reports(report) -> None:
    for k in range(50):
        report({"stage": "level", "frame": k, "n_frames": 50})
    for k in range(50):
        report({"stage": "fit", "frame": k, "n_frames": 50})


def test_a_terminal_gets_one_updating_bar_per_stage():
    term = _Terminal()
    _reports(_progress_printer("run", stream=term))
    text = term.getvalue()
    lines = text.split("\n")
    assert len([line for line in lines if line]) == 2  # one finished line per stage
    assert text.count("\r") == 100  # every report rewrites the line in place
    assert lines[0].endswith("run  frame 50/50  level\x1b[K")
    assert "[" + "#" * 24 + "]" in lines[1]


def test_a_stage_that_stops_early_still_ends_its_line():
    term = _Terminal()
    report = _progress_printer("run", stream=term)
    report({"stage": "level", "frame": 3, "n_frames": 50})
    report({"stage": "segment", "frame": 0, "n_frames": 50})
    assert term.getvalue().count("\n") == 1
    assert "level" in term.getvalue().split("\n")[0]


def test_a_log_gets_one_line_per_report():
    log = io.StringIO()
    _reports(_progress_printer("run", stream=log))
    lines = log.getvalue().splitlines()
    assert len(lines) == 100 and "\r" not in log.getvalue()
    assert lines[-1] == "run  frame 50/50  fit"


def test_quiet_prints_nothing():
    assert _progress_printer("run", quiet=True) is None
